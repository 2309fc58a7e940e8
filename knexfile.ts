// `npx knex migrate:latest` reads this file; it uses the same settings as the CLI (loadSettings:
// DATABASE_URL or the embedded default, CELLCRYPT_CONFIG_URL, CELLCRYPT_KEYSTORE_SECRET), so it
// and `cellcrypt install` run the same migrations against the same database.
import type { Knex } from 'knex';
import { loadSettings } from './src/config/settings';
import { MIGRATIONS_CONFIG } from './src/core/migration-context';
import { mssqlKnexConfig } from './src/engines/mssql/connect';
import { pgliteKnexConfig, postgresKnexConfig } from './src/engines/postgres/connect';

export default async function knexConfig(): Promise<Knex.Config> {
  const { database } = loadSettings();
  const base =
    database.kind === 'mssql'
      ? mssqlKnexConfig(database)
      : database.kind === 'pglite'
        ? await pgliteKnexConfig(database)
        : postgresKnexConfig(database);
  return { ...base, migrations: MIGRATIONS_CONFIG };
}
