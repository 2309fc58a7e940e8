import type { Knex } from 'knex';
import { upsert } from '../common/upsert';
import type { SecretStorage } from './storage';

/**
 * The key store's table in the config database (Dynamics keeps the same secrets in its
 * config database, away from the org database). Portable knex schema and queries, so the
 * config database can be PGlite, PostgreSQL or SQL Server.
 */
export const KEYSTORE_TABLE = 'cellcrypt_keystore';

export async function ensureKeystoreTable(knex: Knex): Promise<void> {
  if (await knex.schema.hasTable(KEYSTORE_TABLE)) return;
  await knex.schema.createTable(KEYSTORE_TABLE, (table) => {
    table.string('org_id', 64).notNullable();
    table.string('name', 64).notNullable();
    table.binary('sealed').notNullable();
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.primary(['org_id', 'name']);
  });
}

export function knexStorage(knex: Knex): SecretStorage {
  return {
    async read(orgId, name) {
      const row = await knex(KEYSTORE_TABLE).where({ org_id: orgId, name }).first('sealed');
      return row ? Buffer.from(row.sealed) : undefined;
    },
    async write(orgId, name, sealed) {
      // Atomic (one statement, or one transaction on SQL Server): a crash leaves either the old
      // or the new value, never neither.
      await upsert(knex, { table: KEYSTORE_TABLE }, { org_id: orgId, name }, { sealed, updated_at: knex.fn.now() });
    },
    async remove(orgId, name) {
      await knex(KEYSTORE_TABLE).where({ org_id: orgId, name }).delete();
    },
    async names(orgId) {
      const rows = await knex(KEYSTORE_TABLE).where({ org_id: orgId }).select('name');
      return rows.map((row: { name: string }) => row.name);
    },
    async anyOther(orgId) {
      const row = await knex(KEYSTORE_TABLE).whereNot({ org_id: orgId }).first('org_id', 'name', 'sealed');
      return row ? { orgId: row.org_id, name: row.name, sealed: Buffer.from(row.sealed) } : undefined;
    },
  };
}
