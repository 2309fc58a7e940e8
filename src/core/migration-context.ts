import { AsyncLocalStorage } from 'node:async_hooks';
import { resolve } from 'node:path';
import type { Knex } from 'knex';
import { loadSettings } from '../config/settings';
import { postgresEngine } from '../engines/postgres/engine';
import { wrapKnex } from '../engines/postgres/connect';
import { mssqlEngine } from '../engines/mssql/engine';
import { mssqlTimeouts } from '../engines/mssql/connect';
import { CellcryptError } from '../common/errors';
import { lineReporter } from './reporter';
import { openToolkit, type Toolkit } from './toolkit';

/**
 * Migrations receive only a knex instance; the operations they call need the whole toolkit.
 * `cellcrypt install` runs the migrator inside `runMigrationsWith(tk, ...)`, so every migration
 * sees that toolkit. (A WeakMap keyed by knex does not work: knex's Migrator clones the
 * instance with `withUserParams`, and the clone has a new client.) Under
 * `npx knex migrate:latest` nothing is active, so each migration builds a toolkit from the same
 * settings the CLI reads (knexfile.ts loads them too) around the knex it was given, and closes
 * the key-store connection it opened before returning, so the knex CLI can exit.
 */
export const MIGRATIONS_CONFIG: Knex.MigratorConfig = {
  directory: resolve(__dirname, '../../migrations'),
  tableName: 'cellcrypt_migrations',
  loadExtensions: ['.ts'],
};

const active = new AsyncLocalStorage<Toolkit>();

export function runMigrationsWith<T>(tk: Toolkit, run: () => Promise<T>): Promise<T> {
  return active.run(tk, run);
}

export async function withMigrationToolkit<T>(knex: Knex, work: (tk: Toolkit) => Promise<T>): Promise<T> {
  const current = active.getStore();
  if (current) return work(current);
  const settings = loadSettings();
  const engine =
    settings.database.kind === 'mssql'
      ? mssqlEngine(settings.database, knex, mssqlTimeouts(settings.database))
      : postgresEngine(settings.database, wrapKnex(settings.database, knex));
  const tk = await openToolkit(settings, {
    engine,
    reporter: lineReporter((text) => process.stderr.write(`${text}\n`)),
  });
  try {
    return await work(tk);
  } finally {
    await tk.close();
  }
}

/** What every down migration does: Dynamics data encryption cannot be turned off. */
export function refuseDown(): never {
  throw new CellcryptError(
    'CellcryptEncryptionCannotBeDisabled',
    'data encryption cannot be turned off; this migration has no down step',
    {
      exitCode: 2,
      hint:
        'to use another key run `cellcrypt change-key`; to read ' +
        'cells without the database use `cellcrypt decrypt-offline`',
    },
  );
}
