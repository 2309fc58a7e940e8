import type { Knex } from 'knex';
import { guidStringToBytes } from '../../cellcrypt';
import type { ConnectionTarget } from '../../config/connection-target';
import type { Db, SelftestFinding, SelftestOps, SelftestPlaintext } from '../engine';
import { EXCLUSIVE_MODE, LOCK_TIMEOUT_SQLSTATE, selftestStatements as S } from './selftest-statements';

/**
 * `cellcrypt selftest` on PostgreSQL and PGlite: the primitives core's checks need, in this
 * engine's SQL (selftest-statements.ts). PGlite's throw-away database is a directory, which the
 * caller makes; on a server it is CREATE DATABASE.
 */
const MINIMUM_VERSION = 130000; // DROP DATABASE ... WITH (FORCE), the PostgreSQL the design names
const WAIT_FOR_WAITER_MS = 30_000;
const POLL_MS = 100;

const bytes = (value: unknown): Buffer | null =>
  value === null || value === undefined ? null : Buffer.from(value as Uint8Array);

export function postgresSelftest(target: ConnectionTarget, knex: Knex): SelftestOps {
  const serverOnly = () => {
    if (target.kind === 'pglite') throw new Error('an embedded PGlite database is a directory: it has no server');
  };
  return {
    async createDatabase(name) {
      serverOnly();
      await knex.raw(S.createDatabase(name));
    },
    async dropDatabase(name) {
      serverOnly();
      await knex.raw(S.dropDatabase(name));
    },
    async userObjects() {
      return (await knex.raw(S.userObjects)).rows.map((row: { name: string }) => row.name);
    },
    serverFacts: () => serverFacts(knex),
    async keyMaterial(trx, keyName, certificate) {
      return bytes((await trx.raw(S.keyMaterial, [keyName, certificate])).rows[0]?.key_bytes);
    },
    async encrypt(trx, keyGuid, plaintext: SelftestPlaintext, authenticator) {
      const [sql, value] = 'text' in plaintext ? [S.encryptText, plaintext.text] : [S.encryptBytes, plaintext.bytes];
      return bytes((await trx.raw(sql, [guidStringToBytes(keyGuid), value, authenticator ?? null])).rows[0]?.cell);
    },
    async decrypt(trx, cell, authenticator) {
      return bytes((await trx.raw(S.decrypt, [cell, authenticator ?? null])).rows[0]?.plain);
    },
    async tableLocks(trx, table) {
      const modes = (await trx.raw(S.tableLocks, [tableName(table)])).rows.map((row: { mode: string }) => row.mode);
      return { modes, exclusive: modes.includes(EXCLUSIVE_MODE) };
    },
    async lockTimeoutError(second, table) {
      try {
        await second.transaction(async (trx) => {
          await trx.raw(S.shortLockTimeout);
          await trx.raw(S.readTable(table));
        });
        return { expected: LOCK_TIMEOUT_SQLSTATE };
      } catch (error) {
        return { expected: LOCK_TIMEOUT_SQLSTATE, got: String((error as { code?: unknown }).code ?? error) };
      }
    },
    interruptNextStatement: (second, tables) => interruptNextStatement(second, tables),
  };
}

/** to_regclass reads a name as SQL would: quoted, so mixed case (MailboxBase) is kept. */
const tableName = (table: string) => `"${table.replace(/"/g, '""')}"`;

async function serverFacts(knex: Knex): Promise<SelftestFinding[]> {
  const row = (await knex.raw(S.serverFacts)).rows[0] as {
    version: string;
    version_num: number;
    encoding: string;
    pgcrypto: string | null;
  };
  return [
    row.version_num >= MINIMUM_VERSION
      ? { check: 'server version', outcome: 'ok', detail: row.version }
      : {
          check: 'server version',
          outcome: 'fail',
          detail: `${row.version}: cellcrypt needs PostgreSQL 13 or newer`,
          hint: 'upgrade the server',
        },
    row.pgcrypto
      ? { check: 'pgcrypto', outcome: 'ok', detail: `pgcrypto ${row.pgcrypto} is installed in the database` }
      : {
          check: 'pgcrypto',
          outcome: 'fail',
          detail: 'pgcrypto is not installed after install (the cell functions are built on it)',
          hint: 'install the server package with contrib modules (postgresql-contrib)',
        },
    row.encoding === 'UTF8'
      ? { check: 'database encoding', outcome: 'ok', detail: 'UTF8' }
      : {
          check: 'database encoding',
          outcome: 'fail',
          detail: `${row.encoding}: text cannot be converted to UTF-16 exactly`,
          hint: 'create org databases WITH ENCODING UTF8',
        },
  ];
}

/**
 * Takes every table in one transaction of `second`, then ends the first session that waits on
 * it: the org's next batch, killed mid-statement with its keys open. Returns once the tables
 * are held, so the caller can let that batch start.
 */
async function interruptNextStatement(second: Db, tables: readonly string[]): Promise<{ done: Promise<string> }> {
  const holder = await (second as Knex).transaction();
  try {
    for (const table of tables) await holder.raw(S.holdTable(table));
  } catch (error) {
    await holder.rollback().catch(() => undefined);
    throw error;
  }
  const pid = Number((await holder.raw(S.backendPid)).rows[0].pid);
  const done = (async () => {
    try {
      const deadline = Date.now() + WAIT_FOR_WAITER_MS;
      while (Date.now() < deadline) {
        const waiting = (await second.raw(S.waitingOn, [pid])).rows as Array<{ pid: number }>;
        if (waiting.length) {
          await second.raw(S.terminate, [waiting[0].pid]);
          return `ended backend ${waiting[0].pid} (pg_terminate_backend) while it waited on ${tables.join(', ')}`;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      throw new Error(`no statement waited on ${tables.join(', ')} within ${WAIT_FOR_WAITER_MS / 1000} s`);
    } finally {
      await holder.rollback().catch(() => undefined);
    }
  })();
  return { done };
}
