import type { Knex } from 'knex';
import { refuseDown, withMigrationToolkit } from '../src/core/migration-context';
import { createToolkitTables } from '../src/core/toolkit-tables';

// Our own transactions: DDL and the key store are managed by src/core.
export const config = { transaction: false };

/** Schema `cellcrypt`, its functions, and the audit, ledger and organization tables. */
export async function up(knex: Knex): Promise<void> {
  await withMigrationToolkit(knex, async (tk) => {
    await tk.engine.prepare();
    await createToolkitTables(knex);
  });
}

export async function down(): Promise<void> {
  refuseDown();
}
