import type { Knex } from 'knex';
import type { ConnectionTarget } from '../../config/connection-target';
import type { Db, SelftestFinding, SelftestOps } from '../engine';
import { query, type Row } from './execute';
import { runSqlcmd } from './selftest-sqlcmd';
import {
  EXCLUSIVE_MODE,
  LOCK_TIMEOUT_ERROR,
  MINIMUM_COMPATIBILITY_LEVEL,
  MINIMUM_MAJOR_VERSION,
  selftestStatements as S,
} from './selftest-statements';

/**
 * `cellcrypt selftest` on SQL Server: the primitives core's checks need, in T-SQL
 * (selftest-statements.ts), and the facts of this server that only this engine can judge.
 * Never run against a real server where cellcrypt is built: `npm run test:mssql` with
 * TEST_MSSQL_URL runs it (README, "Verify on your server").
 */
/** The facts this engine judges, in the order serverFacts reports them. */
export const SERVER_FACTS = {
  version: 'server version and edition',
  compatibility: 'database compatibility level',
  traceFlag: 'trace flag 4631',
  masterKey: 'master key encrypted by the service master key',
} as const;

const WAIT_FOR_WAITER_MS = 30_000;
const POLL_MS = 100;
const LOCK_TIMEOUT_MS = 500;

const bytes = (value: unknown): Buffer | null =>
  value === null || value === undefined ? null : Buffer.from(value as Uint8Array);

export function mssqlSelftest(target: ConnectionTarget, knex: Knex): SelftestOps {
  return {
    async createDatabase(name) {
      await query(knex, S.createDatabase(name), `create database ${name}`);
    },
    async dropDatabase(name) {
      await query(knex, S.dropDatabase(name), `drop database ${name}`);
    },
    async userObjects() {
      return (await query(knex, S.userObjects(), 'list the objects of the database')).map((row) => String(row.name));
    },
    serverFacts: () => serverFacts(knex),
    async keyMaterial(trx, keyName, certificate) {
      const [row] = await query(trx, S.keyMaterial(keyName, certificate), `read the key ${keyName} by certificate`);
      return bytes(row?.key_bytes);
    },
    async encrypt(trx, keyGuid, plaintext, authenticator) {
      return bytes((await query(trx, S.encrypt(keyGuid, plaintext, authenticator), 'ENCRYPTBYKEY'))[0]?.cell);
    },
    async decrypt(trx, cell, authenticator) {
      return bytes((await query(trx, S.decrypt(cell, authenticator), 'DECRYPTBYKEY'))[0]?.plain);
    },
    async tableLocks(trx, table) {
      const modes = (await query(trx, S.tableLocks(table), `locks on ${table}`)).map((row) => String(row.mode));
      return { modes, exclusive: modes.includes(EXCLUSIVE_MODE) };
    },
    async lockTimeoutError(second, table) {
      const expected = String(LOCK_TIMEOUT_ERROR);
      try {
        await query(second, S.readWithLockTimeout(table, LOCK_TIMEOUT_MS), `read ${table} with a lock timeout`);
        return { expected };
      } catch (error) {
        return { expected, got: String(errorNumber(error) ?? (error as Error).message) };
      }
    },
    interruptNextStatement: (second, tables) => interruptNextStatement(second, tables),
    runScript: (script, secrets) => runSqlcmd(target, script, secrets),
  };
}

/** The server's error number, from the error or the driver error it wraps. */
function errorNumber(error: unknown): number | undefined {
  for (let e = error as { number?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.number === 'number') return e.number;
    e = e.cause as typeof e;
  }
  return undefined;
}

async function serverFacts(knex: Knex): Promise<SelftestFinding[]> {
  const [facts] = await query(knex, S.serverFacts(), 'read the server version');
  const flags = await query(knex, S.traceFlag4631(), 'read trace flag 4631');
  return [version(facts), compatibility(facts), traceFlag(flags), masterKeyByServer(facts)];
}

function version(facts: Row): SelftestFinding {
  const level = [facts.product_level, facts.update_level].filter(Boolean).join(' ');
  const edition = `${facts.edition} (engine edition ${facts.engine_edition})`;
  const detail = `SQL Server ${facts.product_version} ${level}, ${edition}`;
  if (Number(facts.major_version) >= MINIMUM_MAJOR_VERSION)
    return { check: SERVER_FACTS.version, outcome: 'ok', detail };
  return {
    check: SERVER_FACTS.version,
    outcome: 'fail',
    detail: `${detail}: cellcrypt needs SQL Server 2017 (14.x) or newer`,
    hint: 'run cellcrypt on SQL Server 2017 or newer',
  };
}

function compatibility(facts: Row): SelftestFinding {
  const level = Number(facts.compatibility_level);
  // The throw-away database takes model's level; an org database keeps the one it was restored with.
  const detail =
    `${level} in the throw-away database (the server's default, from model); ` +
    "an org database's own level is in sys.databases";
  if (level >= MINIMUM_COMPATIBILITY_LEVEL) return { check: SERVER_FACTS.compatibility, outcome: 'ok', detail };
  return {
    check: SERVER_FACTS.compatibility,
    outcome: 'fail',
    detail: `${detail}; cellcrypt's statements need ${MINIMUM_COMPATIBILITY_LEVEL} or newer`,
    hint: `ALTER DATABASE ... SET COMPATIBILITY_LEVEL = ${MINIMUM_COMPATIBILITY_LEVEL} (or newer) on model and the org`,
  };
}

function traceFlag(rows: Row[]): SelftestFinding {
  const on = rows.filter((row) => Number(row.Status) === 1);
  if (!on.length)
    return { check: SERVER_FACTS.traceFlag, outcome: 'ok', detail: 'off: KEY_SOURCE keys are derived the 2017+ way' };
  const where = on.map((row) => (Number(row.Global) === 1 ? 'globally' : 'for this session')).join(', ');
  return {
    check: SERVER_FACTS.traceFlag,
    outcome: 'fail',
    detail: `on ${where}: new keys are derived the SQL Server 2016 way, and install refuses such a key`,
    hint: 'DBCC TRACEOFF(4631, -1), and remove -T4631 from the startup parameters',
  };
}

function masterKeyByServer(facts: Row): SelftestFinding {
  const check = SERVER_FACTS.masterKey;
  if (Number(facts.master_key_by_server) === 1)
    return { check, outcome: 'ok', detail: 'is_master_key_encrypted_by_server = 1 after install' };
  return {
    check,
    outcome: 'fail',
    detail: 'is_master_key_encrypted_by_server = 0 after install: applications cannot open the keys by themselves',
    hint: 'OPEN MASTER KEY DECRYPTION BY PASSWORD = ...; ALTER MASTER KEY ADD ENCRYPTION BY SERVICE MASTER KEY',
  };
}

/**
 * Takes every table in one transaction of `second`, then KILLs the first session that waits on
 * it: the org's next batch, mid-statement with its keys open (SQL Server rolls its transaction
 * back). Returns once the tables are held, so the caller can let that batch start.
 */
async function interruptNextStatement(second: Db, tables: readonly string[]): Promise<{ done: Promise<string> }> {
  const holder = await (second as Knex).transaction();
  let spid: number;
  try {
    for (const table of tables) await query(holder, S.holdTable(table), `hold ${table}`);
    spid = Number((await query(holder, S.sessionId(), 'read the session id'))[0].spid);
  } catch (error) {
    await holder.rollback().catch(() => undefined);
    throw error;
  }
  const done = (async () => {
    try {
      const deadline = Date.now() + WAIT_FOR_WAITER_MS;
      while (Date.now() < deadline) {
        const waiting = await query(second, S.waitingOn(spid), 'find the waiting session');
        if (waiting.length) {
          const victim = Number(waiting[0].session_id);
          await query(second, S.kill(victim), `KILL ${victim}`);
          return `KILLed session ${victim} while it waited on ${tables.join(', ')}`;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      throw new Error(
        `no statement waited on ${tables.join(', ')} within ${WAIT_FOR_WAITER_MS / 1000} s ` +
          '(seeing another session needs VIEW SERVER STATE)',
      );
    } finally {
      await holder.rollback().catch(() => undefined);
    }
  })();
  return { done };
}
