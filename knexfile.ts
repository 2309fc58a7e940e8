// `npx knex migrate:latest` reads this file; it uses the same settings as the CLI (loadSettings:
// DATABASE_URL or the embedded default, CELLCRYPT_CONFIG_URL, CELLCRYPT_KEYSTORE_SECRET), so it
// and `cellcrypt install` run the same migrations against the same database.
import type { Knex } from 'knex';
import { loadSettings } from './src/config/settings';
import { MIGRATIONS_CONFIG } from './src/core/install-run';
import { knexConfigFor } from './src/engines';

export default async function knexConfig(): Promise<Knex.Config> {
  return { ...(await knexConfigFor(loadSettings().database)), migrations: MIGRATIONS_CONFIG };
}
