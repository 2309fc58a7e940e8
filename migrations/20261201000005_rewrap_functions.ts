import type { Knex } from 'knex';
import { refuseDown } from '../src/core/install-run';
import { installStep } from './support/install-step';

// Our own transactions: DDL and the key store are managed by src/core.
export const config = { transaction: false };

/**
 * `rewrap` calls engine functions orgs installed before it lack (PostgreSQL:
 * cellcrypt.move_symmetric_key, drop_certificate, change_master_key_password): re-create them
 * (prepare is idempotent), so `rewrap` refuses an org without this migration before any change
 * instead of failing inside its transaction. Data is not touched.
 */
export async function up(knex: Knex): Promise<void> {
  await installStep(knex, (run) => run.prepare());
}

export async function down(): Promise<void> {
  refuseDown();
}
