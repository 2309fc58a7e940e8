import type { ConnectionTarget } from '../../config/connection-target';
import { CellcryptError } from '../../common/errors';
import type { Engine } from '../engine';
import { postgresDryRun } from './dry-run';
import { postgresColumns } from './columns';
import { postgresDemo } from './demo';
import type { PgConnection } from './connect';
import { postgresKeyHierarchy } from './key-hierarchy';
import { diagnosePostgres } from './diagnose';
import { checkPostgresPermission } from './permissions';
import { quotePgIdentifier } from './quote';
import { tryAdvisoryLock } from './session-lock';
import { listSqlScripts, renderSqlScript } from './sql-script';

/**
 * The `postgres` (server) and `pglite` (embedded) engines: the same SQL, the same functions,
 * the same SQL Server byte format; they differ only in how they connect.
 */
export function postgresEngine(target: ConnectionTarget, connection: PgConnection): Engine {
  const { knex } = connection;
  return {
    kind: target.kind,
    knex,
    capabilities: {
      transactionalDdl: true,
      singleConnection: target.kind === 'pglite',
      keysOutliveTransactions: false,
      masterKeyOpensByItself: false,
      clientSideReencrypt: true,
      mayLogParameters: true,
    },
    quoteIdentifier: quotePgIdentifier,
    keys: postgresKeyHierarchy(),
    columns: postgresColumns(),
    dryRun: postgresDryRun,
    demo: postgresDemo,

    async prepare() {
      const encoding = await knex.raw(`select current_setting('server_encoding') as encoding`);
      if (encoding.rows[0].encoding !== 'UTF8') {
        throw new CellcryptError(
          'CellcryptEngineUnsupported',
          `${target.display}: the database encoding is ${encoding.rows[0].encoding}; ` +
            `cellcrypt needs UTF8 to convert text to SQL Server's UTF-16`,
          { exitCode: 2, hint: 'create the database with ENCODING UTF8' },
        );
      }
      await connection.runScript(
        'create schema if not exists cellcrypt; create extension if not exists pgcrypto with schema cellcrypt;',
      );
      const located = await knex.raw(
        `select n.nspname as schema from pg_extension e ` +
          `join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pgcrypto'`,
      );
      const pgcrypto = quotePgIdentifier(located.rows[0].schema);
      for (const file of listSqlScripts()) await connection.runScript(renderSqlScript(file, { pgcrypto }));
    },

    tryLock: (name) => tryAdvisoryLock(knex, target.display, name, target.kind === 'pglite'),

    checkPermission: (permission) => checkPostgresPermission(knex, permission),

    diagnose: () => diagnosePostgres(knex),

    async close() {
      await knex.destroy();
    },
  };
}
