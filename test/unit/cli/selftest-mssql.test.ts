import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decryptByKey,
  deriveKey,
  encryptByKey,
  keyGuidFromIdentity,
  nvarcharBytes,
  type CellKey,
} from '../../../src/cellcrypt';
import { identityValueFor } from '../../../src/cellcrypt/key-identity';
import { Secret } from '../../../src/common/secret';
import { loadSettings } from '../../../src/config/settings';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../src/core/registry';
import { silentReporter } from '../../../src/core/reporter';
import {
  cellFormat,
  emptyString,
  keyMaterialCheck,
  longestValue,
  nodeCellsInServer,
  serverCellsInNode,
} from '../../../src/core/selftest/codec-checks';
import { lockTimeout, orgLockExcludes, tableLockHeld } from '../../../src/core/selftest/lock-checks';
import type { CheckContext } from '../../../src/core/selftest/types';
import { createToolkit, type Toolkit } from '../../../src/core/toolkit';
import { engineAround } from '../../../src/engines';
import { mssqlKnexConfig } from '../../../src/engines/mssql/connect';
import { fakeSqlServer, type FakeServerState } from '../../support/fake-mssql-server';
import { fakeMssqlKnex, type FakeMssql, type Responder } from '../../support/fake-tedious';
import { seedPgliteDirectory } from '../../support/pglite-template';
import { parseTsql } from '../../support/tsql-grammar';
import { allStatementRules, openKeyBeforeUse } from '../../support/tsql-rules';

/**
 * The SQL Server half of `cellcrypt selftest` over knex's real mssql client and the recording
 * tedious (no SQL Server runs here): core's assumption checks run against answers a scripted
 * server computes with the TypeScript codec, so what is proven is the plumbing (the statements,
 * the rows read back, the transactions) and that every statement sent parses as T-SQL and keeps
 * our rules. Whether a real server answers so is for `npm run test:mssql` (TEST_MSSQL_URL).
 */
const P1 = new Secret('selftest key ☃ 1!');
const MASTER = new Secret("Mk1!master'pass?;--");
const keyOf = (s: Secret, material = deriveKey(s.reveal(), 'sql2017')): CellKey => ({
  keyGuid: keyGuidFromIdentity(identityValueFor(s).reveal()),
  key: material,
});
const unquote = (literal: string) => literal.replace(/''/g, "'");
const hexOf = (text: string | undefined) => (text === undefined ? undefined : Buffer.from(text, 'hex'));

/** The selftest's ENCRYPTBYKEY: a GUID, a text or bytes literal, and an authenticator or none. */
const ENCRYPT = new RegExp(
  "^SELECT ENCRYPTBYKEY\\(CONVERT\\(uniqueidentifier, N'[0-9A-F-]+'\\), " +
    "(?:N'((?:[^']|'')*)'|0x([0-9a-f]*))(?:, 1, 0x([0-9a-f]+))?\\) AS cell$",
);

/** A shared sp_getapplock table: the two fakes are two sessions of one server. */
const held = new Map<string, number>();

/** Answers the selftest's own statements from `key` (the server's key bytes); the rest goes to the scripted server. */
function selftestServer(session: number, key: () => CellKey, rest: Responder): Responder {
  return (sql, parameters) => {
    const lock = /sp_(get|release)applock @Resource = N'((?:[^']|'')*)'/.exec(sql);
    if (lock) {
      const owner = held.get(lock[2]);
      if (lock[1] === 'release') {
        held.delete(lock[2]);
        return [];
      }
      if (owner !== undefined && owner !== session) return [{ result: -1 }];
      held.set(lock[2], session);
      return [{ result: 0 }];
    }
    const encrypt = ENCRYPT.exec(sql);
    if (encrypt) {
      const plaintext = encrypt[1] !== undefined ? nvarcharBytes(unquote(encrypt[1])) : hexOf(encrypt[2])!;
      if (plaintext.length > 7923) return [{ cell: null }];
      return [{ cell: encryptByKey(key(), plaintext, { authenticator: hexOf(encrypt[3]) }) }];
    }
    const decrypt = /^SELECT DECRYPTBYKEY\(0x([0-9a-f]+)(?:, 1, 0x([0-9a-f]+))?\) AS plain$/.exec(sql);
    if (decrypt) return [{ plain: decryptByKey(hexOf(decrypt[1])!, key(), hexOf(decrypt[2])) }];
    // Framed as SQL Server frames it (undocumented): the key somewhere inside.
    if (sql.includes('DECRYPTBYCERT')) return [{ key_bytes: Buffer.concat([Buffer.alloc(8, 7), key().key]) }];
    if (sql.includes('sys.dm_tran_locks')) return [{ mode: 'X' }];
    if (sql.includes('WITH (READCOMMITTEDLOCK)'))
      return Object.assign(new Error('Lock request time out period exceeded.'), { number: 1222 });
    if (sql.includes('SERVERPROPERTY'))
      return [
        {
          product_version: '16.0.4135.4',
          major_version: 16,
          product_level: 'RTM',
          update_level: 'CU15',
          edition: 'Developer Edition (64-bit)',
          engine_edition: 3,
          compatibility_level: 160,
          master_key_by_server: 1,
        },
      ];
    if (sql.startsWith('DBCC TRACESTATUS')) return [{ TraceFlag: 4631, Status: 0, Global: 0, Session: 0 }];
    if (/^(CREATE DATABASE|IF DB_ID|KILL )/.test(sql)) return [];
    if (sql.includes('FROM sys.objects WHERE is_ms_shipped = 0')) return [];
    if (sql.startsWith('SELECT TOP (1) 1 AS held')) return [{ held: 1 }];
    if (sql.startsWith('SELECT @@SPID')) return [{ spid: 61 }];
    if (sql.includes('sys.dm_exec_requests')) return [{ session_id: 57 }];
    return rest(sql, parameters);
  };
}

describe('selftest on SQL Server, over knex mssql and the recording tedious', function () {
  this.timeout(120_000);
  let dir: string;
  let fakes: FakeMssql[];
  let tk: Toolkit;
  let ctx: CheckContext;
  let serverKey: CellKey;

  beforeEach(async () => {
    held.clear();
    dir = mkdtempSync(join(tmpdir(), 'cellcrypt-selftest-mssql-'));
    await seedPgliteDirectory(join(dir, 'config'));
    const settings = loadSettings({
      env: {
        DATABASE_URL: 'mssql://sa:pw@sql.example/cellcrypt_selftest_0123456789ab',
        CELLCRYPT_CONFIG_URL: `pglite:${dir}/config`,
        CELLCRYPT_HOME: dir,
      },
      cwd: dir,
    });
    const state: FakeServerState = {
      orgId: 'org-selftest',
      masterKey: true,
      certificates: ['cellcrypt_certificate'],
      keys: [{ name: 'cellcrypt_key_1', passphrase: P1 }],
      cells: new Map(),
      plaintext: new Map(),
      samples: new Map(),
    };
    serverKey = keyOf(P1);
    const connection = mssqlKnexConfig(settings.database).connection as Record<string, unknown>;
    fakes = [1, 2].map((session) =>
      fakeMssqlKnex({
        responder: selftestServer(session, () => serverKey, fakeSqlServer(state, DYNAMICS_DEFAULT_COLUMNS)),
        connection,
      }),
    );
    const [engine, second] = fakes.map((fake) => engineAround(settings.database, fake.knex));
    tk = createToolkit(settings, engine, { reporter: silentReporter });
    const keystore = await tk.keystore();
    await keystore.put('passphrase', P1);
    await keystore.put('master-key-password', MASTER);
    ctx = { tk, ops: engine.selftest!, second, deriveKey, rows: 10 };
    for (const fake of fakes) fake.reset();
  });

  afterEach(async () => {
    await tk?.close();
    for (const fake of fakes ?? []) await fake.knex.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every statement both sessions sent: T-SQL, our rules, keys open before use, no secret through knex. */
  function expectWellFormed(): number {
    let count = 0;
    for (const fake of fakes) {
      for (const call of fake.calls.filter((c) => c.sql)) {
        count++;
        expect(parseTsql(call.sql!), call.sql!.slice(0, 300)).to.deep.equal([]);
        expect(allStatementRules(call.sql!, { knex: false }), call.sql!.slice(0, 300)).to.deep.equal([]);
        if (call.kind === 'execSql') expect(call.sql!).not.to.contain(MASTER.reveal()).and.not.to.contain(P1.reveal());
      }
      const perConnection = new Map<number, string[]>();
      for (const call of fake.calls.filter((c) => c.sql))
        perConnection.set(call.connectionId, [...(perConnection.get(call.connectionId) ?? []), call.sql!]);
      for (const statements of perConnection.values()) expect(openKeyBeforeUse(statements)).to.deep.equal([]);
    }
    return count;
  }

  it("every assumption check runs and passes on the scripted server's answers; each statement parses", async () => {
    const checks = {
      orgLockExcludes,
      keyMaterialCheck,
      serverCellsInNode,
      nodeCellsInServer,
      cellFormat,
      emptyString,
      longestValue,
      tableLockHeld,
      lockTimeout,
    };
    for (const [name, check] of Object.entries(checks)) {
      const verdict = await check(ctx);
      expect(verdict.outcome, `${name}: ${verdict.detail}`).to.equal('ok');
    }
    const facts = await ctx.ops.serverFacts();
    expect(facts.map((f) => [f.check, f.outcome])).to.deep.equal([
      ['server version and edition', 'ok'],
      ['database compatibility level', 'ok'],
      ['trace flag 4631', 'ok'],
      ['master key encrypted by the service master key', 'ok'],
    ]);
    expect(expectWellFormed()).to.be.greaterThan(30);
    const sent = fakes.flatMap((fake) => fake.statements()).join('\n');
    expect(sent).to.contain('DECRYPTBYCERT').and.to.contain('sys.dm_tran_locks').and.to.contain('SET LOCK_TIMEOUT');
  });

  it('a server whose key bytes are not deriveKey fails the key and cell checks, naming what it saw', async () => {
    const other = deriveKey('another KEY_SOURCE', 'sql2017');
    serverKey = keyOf(P1, other);
    const key = await keyMaterialCheck(ctx);
    expect(key.outcome).to.equal('fail');
    expect(key.detail).to.contain('is not deriveKey(sql2017)');
    expect((await serverCellsInNode(ctx)).outcome).to.equal('fail');
    expect((await nodeCellsInServer(ctx)).outcome).to.equal('fail');
    expectWellFormed();
  });

  it('trace flag 4631 on, or a server before 2017: the facts fail with the way out', async () => {
    const answers = fakes[0].responder;
    fakes[0].responder = (sql, parameters) => {
      if (sql.startsWith('DBCC TRACESTATUS')) return [{ TraceFlag: 4631, Status: 1, Global: 1, Session: 0 }];
      const rows = answers(sql, parameters);
      if (sql.includes('SERVERPROPERTY') && Array.isArray(rows)) return [{ ...rows[0], major_version: 13 }];
      return rows;
    };
    const facts = await ctx.ops.serverFacts();
    const failed = facts.filter((f) => f.outcome === 'fail');
    expect(failed.map((f) => f.check)).to.deep.equal(['server version and edition', 'trace flag 4631']);
    expect(failed[1].hint).to.contain('DBCC TRACEOFF(4631, -1)');
  });

  it('the throw-away database, the emptiness check and the mid-batch KILL send T-SQL that parses', async () => {
    await ctx.ops.createDatabase('cellcrypt_selftest_0123456789ab');
    expect(await ctx.ops.userObjects()).to.deep.equal([]);
    const { done } = await ctx.ops.interruptNextStatement(ctx.second!.knex, ['MailboxBase', "Odd]'?Base"]);
    expect(await done).to.equal("KILLed session 57 while it waited on MailboxBase, Odd]'?Base");
    await ctx.ops.dropDatabase('cellcrypt_selftest_0123456789ab');
    expectWellFormed();
    const sent = fakes.flatMap((fake) => fake.statements());
    expect(sent).to.include('CREATE DATABASE [cellcrypt_selftest_0123456789ab]');
    expect(sent).to.include('KILL 57');
    expect(sent.some((s) => s.includes('SET SINGLE_USER WITH ROLLBACK IMMEDIATE'))).to.equal(true);
  });
});
