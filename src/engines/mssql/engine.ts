import type { Knex } from 'knex';
import type { ConnectionTarget } from '../../config/connection-target';
import type { Engine } from '../engine';
import { mssqlDryRun } from './dry-run';
import { mssqlColumns } from './columns';
import type { MssqlTimeouts } from './connect';
import { mssqlDemo } from './demo';
import { diagnoseMssql } from './diagnose';
import { query } from './execute';
import { mssqlKeyHierarchy } from './key-hierarchy';
import { prepareStatements } from './key-statements';
import { checkMssqlPermission } from './permissions';
import { tryAppLock } from './session-lock';
import { quoteTsqlIdentifier } from './quote';

/**
 * The `mssql` engine: SQL Server's own ENCRYPTBYKEY/DECRYPTBYKEY behind the same interface as
 * the PostgreSQL engines. Never executed against a real server on the machines that build
 * it; proven by the T-SQL grammar, knex's real mssql client over a recording tedious, and the
 * real-server suite (TEST_MSSQL_URL).
 */
export function mssqlEngine(_target: ConnectionTarget, knex: Knex, timeouts: MssqlTimeouts): Engine {
  return {
    kind: 'mssql',
    knex,
    // DDL is transactional on SQL Server for everything cellcrypt does (ALTER TABLE, keys).
    capabilities: {
      transactionalDdl: true,
      singleConnection: false,
      keysOutliveTransactions: true,
      masterKeyOpensByItself: true,
      clientSideReencrypt: false,
      mayLogParameters: false,
    },
    quoteIdentifier: quoteTsqlIdentifier,
    keys: mssqlKeyHierarchy(),
    columns: mssqlColumns(timeouts),
    dryRun: mssqlDryRun,
    demo: mssqlDemo,
    async prepare() {
      for (const sql of prepareStatements()) await query(knex, sql, 'prepare schema cellcrypt');
    },
    // The lock's name alone: one lock per database whoever connects (sp_getapplock is per database).
    tryLock: (name) => tryAppLock(knex, name),
    checkPermission: (permission) => checkMssqlPermission(knex, permission),
    diagnose: () => diagnoseMssql(knex),
    async close() {
      await knex.destroy();
    },
  };
}
