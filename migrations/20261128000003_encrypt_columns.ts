import type { Knex } from 'knex';
import { refuseDown } from '../src/core/install-run';
import { installStep } from './support/install-step';

// Our own transactions: DDL and the key store are managed by src/core.
export const config = { transaction: false };

/**
 * Encrypts the registered sensitive columns (an upgraded org's plaintext included); resumable.
 */
export async function up(knex: Knex): Promise<void> {
  await installStep(knex, (run) => run.convert());
}

export async function down(): Promise<void> {
  refuseDown();
}
