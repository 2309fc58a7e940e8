import type { Knex } from 'knex';
import { refuseDown } from '../src/core/install-run';
import { installStep } from './support/install-step';

// Our own transactions: DDL and the key store are managed by src/core.
export const config = { transaction: false };

/**
 * Master key, certificate and the first AES_256 key; a new org gets a generated encryption key.
 */
export async function up(knex: Knex): Promise<void> {
  await installStep(knex, (run) => run.provision());
}

export async function down(): Promise<void> {
  refuseDown();
}
