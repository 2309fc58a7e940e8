import type { Knex } from 'knex';
import { convertColumns } from '../src/core/convert';
import { refuseDown, withMigrationToolkit } from '../src/core/migration-context';

export const config = { transaction: false };

/** Encrypts the registered sensitive columns (an upgraded org's plaintext included); resumable. */
export async function up(knex: Knex): Promise<void> {
  await withMigrationToolkit(knex, convertColumns);
}

export async function down(): Promise<void> {
  refuseDown();
}
