import { CellcryptError } from './common/errors';
import { isMissingEmbedded, type ConnectionTarget } from './config/connection-target';
import type { Settings } from './config/settings';
import { createToolkit, type Toolkit, type ToolkitOptions } from './core/toolkit';
import { openEngine } from './engines';

/**
 * The composition root: opens the org database's engine with the one factory and hands it to
 * core, which never chooses an engine itself. The toolkit closes the engine with itself.
 */
export async function openToolkit(
  settings: Settings,
  options: Omit<ToolkitOptions, 'ownsEngine'> & { readOnly?: boolean } = {},
): Promise<Toolkit> {
  if (options.readOnly) requireEmbeddedDatabase(settings.database, '--database-url / DATABASE_URL');
  const engine = await openEngine(settings.database);
  return createToolkit(settings, engine, { ...options, ownsEngine: true });
}

/** The same, for a command that changes nothing: it creates no embedded database or key store. */
export function openReadOnlyToolkit(settings: Settings, options: Omit<ToolkitOptions, 'ownsEngine'> = {}) {
  return openToolkit(settings, { ...options, readOnly: true });
}

/**
 * A read-only command (status, verify, doctor, migrate status, keys) creates nothing anywhere:
 * opening an embedded database that is not there would create an empty one (and later an empty
 * key store with a new secret), and a mistyped path then looked like an org that needs install.
 */
export function requireEmbeddedDatabase(target: ConnectionTarget, option: string): void {
  if (!isMissingEmbedded(target)) return;
  throw new CellcryptError(
    'CellcryptUsage',
    `there is no database at ${target.display}; nothing was created (a read-only command creates nothing)`,
    {
      exitCode: 2,
      hint: `check ${option}; \`cellcrypt install\` creates the embedded org (\`npm start\` seeds a demo one)`,
    },
  );
}
