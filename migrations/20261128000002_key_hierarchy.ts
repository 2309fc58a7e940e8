import type { Knex } from 'knex';
import { refuseDown, withMigrationToolkit } from '../src/core/migration-context';
import { provisionKeys } from '../src/core/provision';

export const config = { transaction: false };

/** Master key, certificate and the first AES_256 key; a new org gets a generated encryption key. */
export async function up(knex: Knex): Promise<void> {
  await withMigrationToolkit(knex, async (tk) => {
    const result = await provisionKeys(tk);
    for (const item of result.created) tk.reporter.log(`created ${item}`);
  });
}

export async function down(): Promise<void> {
  refuseDown();
}
