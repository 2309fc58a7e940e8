import type { Knex } from 'knex';
import { refuseDown } from '../src/core/install-run';
import { installStep } from './support/install-step';

// Our own transactions: DDL and the key store are managed by src/core.
export const config = { transaction: false };

/**
 * Orgs installed before this release have the engine functions of their day: re-create them
 * (prepare is idempotent: CREATE OR REPLACE), so change-key finds cellcrypt.reencrypt_cell and
 * open_key_bytes, and the census its parallel-safe decrypt (issue 7). Data is not touched.
 */
export async function up(knex: Knex): Promise<void> {
  await installStep(knex, (run) => run.prepare());
}

export async function down(): Promise<void> {
  refuseDown();
}
