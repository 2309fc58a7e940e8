import { expect } from 'chai';
import { classifyColumn } from '../../../../src/core/column-state';
import { DEFAULT_CONVERSION_BATCH } from '../../../../src/core/convert';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import type { ConnectionTarget } from '../../../../src/config/connection-target';
import { columnStatements as S, guidLiteral, keyGuidOf } from '../../../../src/engines/mssql/column-statements';
import { mssqlColumns } from '../../../../src/engines/mssql/columns';
import { mssqlTimeouts } from '../../../../src/engines/mssql/connect';
import { escapeForKnex } from '../../../../src/engines/mssql/quote';
import { fakeMssqlKnex, type FakeMssql } from '../../../support/fake-tedious';
import { parseTsql } from '../../../support/tsql-grammar';
import { allStatementRules } from '../../../support/tsql-rules';

/**
 * Issue 14's statements one by one (review DL2, WR5, SS1, SS2, SS4, BR6, BR7, WR1, section F):
 * what each says, that each parses with the T-SQL grammar and keeps our rules (hostile names
 * too), and how the engine sends them: whole-table statements with the long request timeout,
 * lock-waiting ones as an RPC carrying SET LOCK_TIMEOUT.
 */
const GUID = '5E3F5200-B208-9A14-3EA7-DE70CC509869';
const AFTER = '0BE77F8B-2A2B-496C-AFFB-C20A0FA71875';
const HOSTILE = { table: "T]'?; --", column: "C]'?", primaryKey: 'Id?]', maxLength: 50 };
const mailbox = DYNAMICS_DEFAULT_COLUMNS.find((c) => c.table === 'MailboxBase')!;
const LONG = 1_234_000;
const count = (text: string, part: string) => text.split(part).length - 1;

function statements(ref: typeof mailbox | typeof HOSTILE): Array<[string, string, { knex: boolean }]> {
  const direct = { knex: false };
  return [
    ['encryptBatch, first', S.encryptBatch(ref, guidLiteral(GUID), DEFAULT_CONVERSION_BATCH), direct],
    [
      'encryptBatch, after',
      S.encryptBatch(ref, guidLiteral(GUID), DEFAULT_CONVERSION_BATCH, guidLiteral(AFTER)),
      direct,
    ],
    ['encryptBatch, script', S.encryptBatch(ref, keyGuidOf("key]'?"), 2_147_483_647), direct],
    [
      'reencryptBatch, after',
      S.reencryptBatch(ref, guidLiteral(GUID), guidLiteral(GUID), 3000, guidLiteral(AFTER)),
      direct,
    ],
    ['reencryptColumn', S.reencryptColumn(ref, guidLiteral(GUID), guidLiteral(AFTER)), direct],
    ['reencryptColumn, script', S.reencryptColumn(ref, keyGuidOf('a'), keyGuidOf('b')), direct],
    ['countShadowMismatches', S.countShadowMismatches(ref), direct],
    ['reconcile', S.reconcile(ref, guidLiteral(GUID)), direct],
    ['lockTable, timeout', S.lockTable(ref, 30_000), direct],
    ['lockTable, no limit', S.lockTable(ref, 0), direct],
    ['swap, timeout', S.swap(ref, 30_000), direct],
    ['reclaimSpace', S.reclaimSpace(ref, 30_000), direct],
    ['reclaimSpace, script', S.reclaimSpace(ref), direct],
    ['sampleCells', S.sampleCells(ref, 5), direct],
    ['census', S.census(ref, true), direct],
    ['describe', S.describe(ref), { knex: true }],
  ];
}

describe('mssql data-path statements (issue 14)', function () {
  this.timeout(120_000);
  let fake: FakeMssql | undefined;
  afterEach(async () => {
    await fake?.knex.destroy();
    fake = undefined;
  });

  it("every new statement parses and keeps our rules, names with ] ' ? ; -- included", () => {
    for (const ref of [mailbox, HOSTILE])
      for (const [name, sql, { knex }] of statements(ref)) {
        expect(parseTsql(sql), `${name}: ${sql.slice(0, 200)}`).to.deep.equal([]);
        expect(allStatementRules(knex ? escapeForKnex(sql) : sql, { knex }), name).to.deep.equal([]);
      }
  });

  it('conversion batches walk the primary key: TOP (n) keys after the cursor, last from SQL Server (SS1)', () => {
    const first = S.encryptBatch(mailbox, guidLiteral(GUID), 4000);
    const next = S.encryptBatch(mailbox, guidLiteral(GUID), 4000, guidLiteral(AFTER));
    expect(first).to.contain(
      'FROM (SELECT TOP (4000) [MailboxId] FROM [MailboxBase] WHERE [Password] IS NOT NULL AND ' +
        '[Password__cellcrypt] IS NULL ORDER BY [MailboxId]) AS k ' +
        'JOIN [MailboxBase] AS t ON t.[MailboxId] = k.[MailboxId]',
    );
    expect(next).to.contain(`WHERE [MailboxId] > CONVERT(uniqueidentifier, N'${AFTER}') AND [Password] IS NOT NULL`);
    expect(next).to.contain('CONVERT(nvarchar(36), MAX(id)) AS last FROM @written');
    // The scripts read @written's lost flag: it is still there.
    expect(first).to.contain('INTO @written (id, lost)');
  });

  it("the default conversion batch is under SQL Server's 5,000-lock escalation threshold", () => {
    expect(DEFAULT_CONVERSION_BATCH).to.be.below(5000);
  });

  it('the proofs compare the whole value and its length, decrypting each row once (DL2, WR5, SS4)', () => {
    for (const sql of [S.countShadowMismatches(mailbox), S.reconcile(mailbox, guidLiteral(GUID))]) {
      expect(sql).to.contain('CONVERT(varbinary(max), CONVERT(nvarchar(max), t.[Password])) AS p');
      expect(sql).to.contain('x.d <> x.p OR DATALENGTH(x.d) <> DATALENGTH(x.p)');
      expect(count(sql, 'DECRYPTBYKEY('), 'one decryption per row').to.equal(1);
      expect(sql).to.contain('CROSS APPLY (SELECT DECRYPTBYKEY(t.[Password__cellcrypt], 1,');
    }
    // The proof never converts the plaintext to the registry's width (which would cut both sides alike).
    expect(S.countShadowMismatches(mailbox)).to.not.contain('nvarchar(200)');
  });

  it('the one-transaction change is one UPDATE that never writes a NULL cell and counts what stays (SS2)', () => {
    const sql = S.reencryptColumn(mailbox, guidLiteral(GUID), guidLiteral(AFTER));
    expect(count(sql, 'UPDATE ')).to.equal(1);
    expect(sql).to.not.contain('TOP (');
    expect(count(sql, 'DECRYPTBYKEY(')).to.equal(1);
    expect(sql).to.contain('AND x.e IS NOT NULL; SET @moved = @@ROWCOUNT;');
    expect(sql).to.contain(
      `(SELECT COUNT(*) FROM [MailboxBase] WHERE SUBSTRING([Password], 1, 16) = ` +
        `CONVERT(varbinary(16), CONVERT(uniqueidentifier, N'${GUID}'))) AS undecryptable`,
    );
  });

  it('lockTable takes TOP (1) with its lock timeout, as do the swap and the rebuild; scripts none (F, BR7)', () => {
    expect(S.lockTable(mailbox, 30_000)).to.equal(
      'SET LOCK_TIMEOUT 30000; SELECT TOP (1) 1 AS locked FROM [MailboxBase] WITH (TABLOCKX, HOLDLOCK)',
    );
    expect(S.lockTable(mailbox, 0)).to.match(/^SET LOCK_TIMEOUT -1; /);
    expect(S.lockTable(mailbox)).to.match(/^SELECT TOP \(1\) 1 AS locked/);
    expect(S.swap(mailbox, 5000)).to.match(
      /^SET LOCK_TIMEOUT 5000; ALTER TABLE \[MailboxBase\] DROP COLUMN \[Password\];/,
    );
    expect(S.swap(mailbox)).to.match(/^ALTER TABLE/);
    expect(S.reclaimSpace(mailbox, 5000)).to.equal(
      'SET LOCK_TIMEOUT 5000; ALTER TABLE [MailboxBase] REBUILD WITH (ONLINE = OFF)',
    );
  });

  it('sampleCells seeks from a random key and wraps round: no sort, `limit` rows on a small table (SS4)', () => {
    const sql = S.sampleCells(mailbox, 5);
    expect(sql).to.not.contain('ORDER BY NEWID()');
    expect(sql).to.contain('DECLARE @start uniqueidentifier = NEWID();');
    expect(sql).to.contain('[MailboxId] >= @start ORDER BY [MailboxId]');
    expect(sql).to.contain('[MailboxId] < @start ORDER BY [MailboxId]');
    expect(sql).to.match(/^DECLARE @start uniqueidentifier = NEWID\(\); SELECT TOP \(5\) s\.id, s\.cell FROM \(/);
    expect(sql).to.contain(' UNION ALL ');
  });

  it('the shadow is never wider than varbinary(8000) (BR6)', () => {
    expect(S.addShadow(mailbox, 8084)).to.equal(
      'ALTER TABLE [MailboxBase] ADD [Password__cellcrypt] varbinary(8000) NULL',
    );
    expect(S.addShadow(mailbox, 484)).to.contain('varbinary(484)');
  });

  it('whole-table statements: the long request timeout; lock waits: an RPC with SET LOCK_TIMEOUT (BR7)', async () => {
    fake = fakeMssqlKnex({
      responder: (sql) => (sql.includes('GROUP BY') || sql.includes('@start') ? [] : [{ n: 0, examples: null }]),
    });
    const columns = mssqlColumns({ statementTimeoutMs: LONG, lockTimeoutMs: 12_345 });
    await columns.countNonNull(fake.knex, mailbox, 'plaintext');
    await columns.cellBytes(fake.knex, mailbox);
    await columns.findTooLong(fake.knex, mailbox, 400);
    await columns.census(fake.knex, mailbox, { decrypt: false });
    await columns.sampleCells(fake.knex, mailbox, 5);
    await fake.knex.transaction(async (trx) => {
      await columns.lockTable(trx, mailbox);
      await columns.maxShadowBytes(trx, mailbox);
    });
    await columns.reclaimSpace(fake.knex, mailbox);
    const calls = fake.calls.filter((c) => c.sql);
    expect(calls).to.have.length(8);
    for (const call of calls) expect(call.timeout, call.sql).to.equal(LONG);
    const lock = calls.find((c) => c.sql!.includes('TABLOCKX'))!;
    expect(lock.kind).to.equal('execSql');
    expect(lock.sql).to.match(/^SET LOCK_TIMEOUT 12345; SELECT TOP \(1\)/);
    expect(calls.find((c) => c.sql!.includes('REBUILD'))!.kind).to.equal('execSql');
    for (const call of calls.filter((c) => !/TABLOCKX|REBUILD/.test(c.sql!)))
      expect(call.kind).to.equal('execSqlBatch');
  });

  it('lockTimeout=<ms> in the URL (default 30 s, 0 = no limit), refused when not a number of milliseconds', () => {
    const timeouts = (query: string) => mssqlTimeouts({ url: `mssql://sa:pw@h/db${query}` } as ConnectionTarget);
    expect(timeouts('').lockTimeoutMs).to.equal(30_000);
    expect(timeouts('?lockTimeout=5000').lockTimeoutMs).to.equal(5000);
    expect(timeouts('?lockTimeout=0').lockTimeoutMs).to.equal(0);
    expect(() => timeouts('?lockTimeout=soon')).to.throw(/lockTimeout must be a whole number of milliseconds/);
  });

  it('describe reads the declared length (max_length: bytes, -1 = max); a mismatch is refused (DL2)', async () => {
    const answer = (type: string, maxLength: number) => (sql: string) => {
      if (sql.includes('AS present')) return [{ present: 1 }];
      if (sql.includes('is_primary_key')) return [{ name: 'MailboxId' }];
      return [
        { name: 'Password', type_name: type, max_length: maxLength },
        { name: 'MailboxId', type_name: 'uniqueidentifier', max_length: 16 },
      ];
    };
    const cases: Array<[string, number, number | null]> = [
      ['nvarchar', 400, 200],
      ['nvarchar', 500, 250],
      ['nvarchar', -1, null],
      ['varchar', 200, 200],
      ['nchar', 400, 200],
      ['ntext', 16, null],
    ];
    for (const [type, bytes, expected] of cases) {
      fake = fakeMssqlKnex({ responder: answer(type, bytes) });
      const shape = await mssqlColumns(LONG).describe(fake.knex, mailbox);
      expect(shape.column?.maxLength, `${type} max_length ${bytes}`).to.equal(expected);
      const verdict = classifyColumn(mailbox, shape);
      if (expected === mailbox.maxLength) expect(verdict).to.deep.equal({ state: 'plaintext' });
      else
        expect((verdict as { problem: string }).problem)
          .to.contain(`(${expected ?? 'max'})`)
          .and.contain('maxLength 200');
      await fake.knex.destroy();
      fake = undefined;
    }
  });
});
