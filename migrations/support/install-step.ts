import type { Knex } from 'knex';
import { loadSettings } from '../../src/config/settings';
import { activeInstallRun, InstallRun } from '../../src/core/install-run';
import { lineReporter } from '../../src/core/reporter';
import { createToolkit } from '../../src/core/toolkit';
import { engineAround } from '../../src/engines';

/**
 * One install step from a migration. Inside `cellcrypt install` the running install's steps are
 * used (each done once per install). Under `npx knex migrate:latest` nothing is running, so a
 * run is built from the same settings the CLI reads (knexfile.ts loads them too) around the
 * knex the migration was given, and the key-store connection it opened is closed before the
 * migration returns, so the knex CLI can exit. (knex's migrator clones its instance, so a
 * WeakMap keyed by knex would not find the install: an AsyncLocalStorage carries it.)
 */
export async function installStep<T>(knex: Knex, step: (run: InstallRun) => Promise<T>): Promise<T> {
  const current = activeInstallRun();
  if (current) return step(current);
  const settings = loadSettings();
  const engine = engineAround(settings.database, knex);
  const reporter = lineReporter((text) => process.stderr.write(`${text}\n`));
  const tk = createToolkit(settings, engine, { reporter, ownsEngine: false });
  try {
    return await step(new InstallRun(tk));
  } finally {
    await tk.close();
  }
}
