import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CellcryptError, refuse } from '../../common/errors';
import type { ConnectionTarget } from '../../config/connection-target';
import { loadSettings, type Settings } from '../../config/settings';
import { silentReporter } from '../../core/reporter';
import type { SelftestEnvironment } from '../../core/selftest/types';
import { createToolkit, type Toolkit } from '../../core/toolkit';
import { openEngine, SCRIPT_RENDERERS } from '../../engines';
import type { Engine, ScriptRenderer, SelftestOps } from '../../engines/engine';

/**
 * The selftest's throw-away org, which is all it ever changes: on PGlite a fresh temporary
 * directory; on a server `CREATE DATABASE cellcrypt_selftest_<random>` (or `--database NAME`,
 * an empty database the DBA made), never the database the URL names. Its key store is always a
 * temporary embedded one: the DBA's real key store is never opened. `close` drops what it
 * created unless kept.
 */
export interface ThrowAwayOrg {
  readonly environment: SelftestEnvironment;
  /** For the report: where it ran (no password). */
  readonly database: { readonly name: string; readonly location: string; readonly created: boolean };
  /** The key store's directory (kept with --keep, with the key-store secret file in it). */
  readonly home: string;
  close(keep: boolean): Promise<{ dropped: boolean; problem?: string }>;
}

export const SELFTEST_PREFIX = 'cellcrypt_selftest_';

/** The org database's URL: the server's URL with the throw-away database's name as its path. */
function withDatabase(target: ConnectionTarget, name: string): string {
  const url = new URL(target.url);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

function orgSettings(databaseUrl: string, home: string): Settings {
  // Nothing from the DBA's environment: no key store, registry or quota of theirs applies here.
  return loadSettings({
    env: {
      DATABASE_URL: databaseUrl,
      CELLCRYPT_CONFIG_URL: `pglite:${join(home, 'config')}`,
      CELLCRYPT_HOME: home,
      CELLCRYPT_CHANGE_QUOTA: '10',
    },
    cwd: home,
  });
}

async function toolkitOn(databaseUrl: string, home: string): Promise<Toolkit> {
  const settings = orgSettings(databaseUrl, home);
  return createToolkit(settings, await openEngine(settings.database), { reporter: silentReporter, ownsEngine: true });
}

function selftestOf(engine: Engine): SelftestOps {
  if (engine.selftest) return engine.selftest;
  throw refuse('CellcryptEngineUnsupported', `the ${engine.kind} engine has no selftest`);
}

export async function openThrowAwayOrg(target: ConnectionTarget, given?: string): Promise<ThrowAwayOrg> {
  const home = mkdtempSync(join(tmpdir(), SELFTEST_PREFIX));
  try {
    if (target.kind === 'pglite') {
      if (given) throw refuse('CellcryptUsage', '--database names a database on a server', 'leave it out on PGlite');
      return await embedded(home);
    }
    return await onServer(target, home, given);
  } catch (error) {
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
}

async function embedded(home: string): Promise<ThrowAwayOrg> {
  const tk = await toolkitOn(`pglite:${join(home, 'org')}`, home);
  return {
    environment: { tk },
    database: { name: join(home, 'org'), location: tk.settings.database.location, created: true },
    home,
    async close(keep) {
      await tk.close();
      if (!keep) rmSync(home, { recursive: true, force: true });
      return { dropped: !keep };
    },
  };
}

async function onServer(target: ConnectionTarget, home: string, given: string | undefined): Promise<ThrowAwayOrg> {
  const admin = await openEngine(target);
  const created: string[] = [];
  const opened: Toolkit[] = [];
  const create = async (name: string) => {
    await createDatabase(selftestOf(admin), name);
    created.push(name);
    return name;
  };
  try {
    const name = given ?? (await create(`${SELFTEST_PREFIX}${randomBytes(6).toString('hex')}`));
    const tk = await toolkitOn(withDatabase(target, name), home);
    opened.push(tk);
    if (given) await requireEmpty(tk, name);
    const renderer = (SCRIPT_RENDERERS as Readonly<Record<string, ScriptRenderer | undefined>>)[target.kind];
    const environment: SelftestEnvironment = {
      tk,
      openSecond: () => openEngine(tk.settings.database),
      ...(renderer && {
        scripts: {
          renderer,
          async open() {
            const scratch = await toolkitOn(withDatabase(target, await create(`${name}_scripts`)), home);
            opened.push(scratch);
            return { tk: scratch, close: () => scratch.close() };
          },
        },
      }),
    };
    return {
      environment,
      database: { name, location: tk.settings.database.location, created: !given },
      home,
      close: (keep) => closeAll(admin, opened, keep ? [] : created, home, keep),
    };
  } catch (error) {
    await closeAll(admin, opened, created, home, false);
    throw error;
  }
}

async function createDatabase(ops: SelftestOps, name: string): Promise<void> {
  try {
    await ops.createDatabase(name);
  } catch (error) {
    // Unreachable servers are the CLI root's to report (CellcryptDatabaseUnavailable).
    if (!/permission|denied/i.test((error as Error).message ?? '')) throw error;
    throw new CellcryptError('CellcryptPermissionDenied', `selftest cannot create its database ${name}`, {
      exitCode: 2,
      cause: error,
      hint: 'grant CREATE DATABASE to this user, or make an empty database and give it with --database NAME',
    });
  }
}

async function requireEmpty(tk: Toolkit, name: string): Promise<void> {
  const objects = await selftestOf(tk.engine).userObjects();
  if (!objects.length) return;
  throw refuse(
    'CellcryptUsage',
    `--database ${name} is not empty (${objects.slice(0, 5).join(', ')}${objects.length > 5 ? ', ...' : ''}); ` +
      'selftest changed nothing',
    'give an empty database made for the selftest, or leave --database out so it creates its own',
  );
}

async function closeAll(
  admin: Engine,
  opened: readonly Toolkit[],
  drop: readonly string[],
  home: string,
  keep: boolean,
): Promise<{ dropped: boolean; problem?: string }> {
  const problems: string[] = [];
  for (const tk of opened) await tk.close().catch((error: Error) => problems.push(error.message));
  for (const name of drop)
    await selftestOf(admin)
      .dropDatabase(name)
      .catch((error: Error) => problems.push(`${name} was not dropped: ${error.message}`));
  await admin.close().catch(() => undefined);
  if (!keep) rmSync(home, { recursive: true, force: true });
  return {
    dropped: drop.length > 0 && problems.length === 0,
    ...(problems.length && { problem: problems.join('; ') }),
  };
}
