import type { Knex } from 'knex';
import { refuseDown } from '../src/core/install-run';
import { installStep } from './support/install-step';

// Our own transactions: DDL and the key store are managed by src/core.
export const config = { transaction: false };

/**
 * Schema `cellcrypt`, its functions, and the audit, ledger and organization tables.
 */
export async function up(knex: Knex): Promise<void> {
  await installStep(knex, (run) => run.createTables());
}

export async function down(): Promise<void> {
  refuseDown();
}
