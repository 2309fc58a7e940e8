import { expect } from 'chai';
import { guidBytesToString, keyGuidFromIdentity } from '../../../../src/cellcrypt';
import { identityValueFor } from '../../../../src/cellcrypt/key-identity';
import type { CellcryptError } from '../../../../src/common/errors';
import { Secret } from '../../../../src/common/secret';
import { changeKey } from '../../../../src/core/change-key';
import { convertColumns } from '../../../../src/core/convert';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import type { Reporter } from '../../../../src/core/reporter';
import { type RecordedCall } from '../../../support/fake-tedious';
import { rowIds, type FakeServerState } from '../../../support/fake-mssql-server';
import { parseTsql } from '../../../support/tsql-grammar';
import { closeFakeMssqlOrg, openFakeMssqlOrg, type FakeMssqlOrg } from '../../../support/fake-mssql-org';

/**
 * Issue 14, the SQL Server data path at scale (review SS1, SS2, BR7, DL2), over knex's real mssql
 * client, the recording tedious and the scripted server: the REAL conversion and key changes
 * walk each column once by primary key (statements grow as N / batch, each batch after the first
 * starting after the last key SQL Server returned), the one-transaction change is one UPDATE per
 * column, the censuses of a batched change run one at a time, and a value too long for its cell
 * written after planning is refused under the table lock with nothing swapped.
 */
const P1 = new Secret('first key ☃ 1!');
const MASTER = new Secret("Mk1!master'pass?;--");
const LONG = 4_321_000;
const guid = (s: Secret) => guidBytesToString(keyGuidFromIdentity(identityValueFor(s).reveal()));
const label = (c: { table: string; column: string }) => `${c.table}.${c.column}`;
const mailbox = DYNAMICS_DEFAULT_COLUMNS.find((c) => c.table === 'MailboxBase')!;
const CURSOR = /\] > CONVERT\(uniqueidentifier, N'([0-9A-F-]{36})'\)/;

interface Harness extends FakeMssqlOrg {
  state: FakeServerState;
  ticks: number[];
}

let harness: Harness | undefined;

async function open(state: FakeServerState): Promise<Harness> {
  const ticks: number[] = [];
  const reporter: Reporter = {
    log: () => undefined,
    progress: () => ({ tick: (n) => void ticks.push(n), done: () => undefined }),
  };
  const org = await openFakeMssqlOrg(state, {
    keyStore: { passphrase: P1, master: MASTER },
    statementTimeoutMs: LONG,
    reporter,
    pool: { max: 4 },
  });
  harness = { ...org, state, ticks };
  return harness;
}

function orgState(over: { plaintext?: number; cells?: number }): FakeServerState {
  return {
    orgId: 'org-1',
    masterKey: true,
    certificates: ['cellcrypt_certificate'],
    keys: [{ name: 'cellcrypt_key_1', passphrase: P1 }],
    cells: new Map(
      over.cells === undefined
        ? []
        : DYNAMICS_DEFAULT_COLUMNS.map((c) => [label(c), new Map([[guid(P1), over.cells!]])]),
    ),
    plaintext: new Map(DYNAMICS_DEFAULT_COLUMNS.map((c) => [label(c), over.plaintext ?? 0])),
    samples: new Map(),
  };
}

const sent = (h: Harness, test: (sql: string) => boolean): RecordedCall[] =>
  h.fake.calls.filter((c) => c.sql !== undefined && test(c.sql));
const of = (column: { table: string; column: string }) => (sql: string) =>
  sql.includes(`[${column.table}]`) && sql.includes(`[${column.column}`);

describe('mssql data path at scale (issue 14: SS1, SS2, BR7, DL2)', function () {
  this.timeout(120_000);

  afterEach(async () => {
    await closeFakeMssqlOrg(harness);
    harness = undefined;
  });

  it("the fake server's key order is not the strings' order (so a cursor computed in JavaScript would fail)", () => {
    const ids = rowIds(label(mailbox), 31);
    expect(ids).to.not.deep.equal([...ids].sort());
  });

  for (const rows of [10, 31]) {
    it(
      `conversion of ${rows} rows in batches of 3: ${Math.floor(rows / 3) + 1} statements per column, ` +
        'each after the first starting after the key the one before returned',
      async () => {
        const h = await open(orgState({ plaintext: rows }));
        await convertColumns(h.tk, { batchSize: 3 });
        for (const column of DYNAMICS_DEFAULT_COLUMNS) {
          const batches = sent(h, (sql) => sql.startsWith('DECLARE @written') && of(column)(sql));
          expect(batches, label(column)).to.have.length(Math.floor(rows / 3) + 1);
          const ids = rowIds(label(column), rows);
          batches.forEach((call, k) => {
            expect(parseTsql(call.sql!)).to.deep.equal([]);
            expect(call.timeout).to.equal(LONG);
            // The k-th batch starts after the third row of the batch before: the key SQL Server sent back.
            if (k === 0) expect(call.sql).to.not.match(CURSOR);
            else expect(CURSOR.exec(call.sql!)?.[1], `${label(column)} batch ${k}`).to.equal(ids[3 * k - 1]);
            expect(call.sql).to.contain(`ORDER BY [${column.primaryKey}]`);
          });
        }
        expect(h.state.plaintext.get(label(mailbox))).to.equal(0);
      },
    );
  }

  for (const cells of [9, 10]) {
    it(
      `batched change-key of ${cells} cells in batches of 3: ${Math.floor(cells / 3) + 1} statements ` +
        'per column, each after the first carrying [pk] > last',
      async () => {
        const h = await open(orgState({ cells }));
        const result = await changeKey(h.tk, { generate: true, batchSize: 3 });
        for (const column of DYNAMICS_DEFAULT_COLUMNS) {
          const batches = sent(h, (sql) => sql.startsWith('DECLARE @batch') && of(column)(sql));
          expect(batches, label(column)).to.have.length(Math.floor(cells / 3) + 1);
          const ids = rowIds(label(column), cells);
          batches.forEach((call, k) => {
            expect(parseTsql(call.sql!)).to.deep.equal([]);
            expect(call.sql).to.contain(`SUBSTRING([${column.column}], 1, 16) = CONVERT(varbinary(16), `);
            if (k === 0) expect(call.sql).to.not.match(CURSOR);
            else expect(CURSOR.exec(call.sql!)?.[1], `${label(column)} batch ${k}`).to.equal(ids[3 * k - 1]);
          });
          expect(Object.fromEntries(h.state.cells.get(label(column))!)).to.deep.equal({
            [guid(P1)]: 0,
            [result.newKey.guid!]: cells,
          });
        }
      },
    );
  }

  it('batched change-key counts the cells left on the old key one column at a time (no parallel census)', async () => {
    const state = orgState({ cells: 4 });
    const h = await open(state);
    const server = h.fake.responder;
    const isCensus = (sql: string) => sql.includes('GROUP BY SUBSTRING') && sql.includes('NULL AS undecryptable');
    let answered = 0;
    let ahead = 0;
    h.fake.responder = (sql, parameters) => {
      if (isCensus(sql)) ahead = Math.max(ahead, sent(h, isCensus).length - ++answered);
      return server(sql, parameters);
    };
    await changeKey(h.tk, { generate: true, batchSize: 3 });
    expect(answered).to.equal(DYNAMICS_DEFAULT_COLUMNS.length);
    expect(ahead, 'a census was sent before the one before it was answered').to.equal(0);
  });

  for (const cells of [10, 31]) {
    it(`one-transaction change-key of ${cells} cells: one UPDATE per column, progress from its row count`, async () => {
      const h = await open(orgState({ cells }));
      const result = await changeKey(h.tk, { generate: true });
      for (const column of DYNAMICS_DEFAULT_COLUMNS) {
        const updates = sent(h, (sql) => /^DECLARE @moved int; UPDATE t SET /.test(sql) && of(column)(sql));
        expect(updates, label(column)).to.have.length(1);
        expect(updates[0].sql).to.not.match(/TOP \(/);
        expect(Object.fromEntries(h.state.cells.get(label(column))!)).to.deep.equal({
          [guid(P1)]: 0,
          [result.newKey.guid!]: cells,
        });
      }
      expect(sent(h, (sql) => sql.startsWith('DECLARE @batch'))).to.have.length(0);
      expect(h.ticks).to.deep.equal(DYNAMICS_DEFAULT_COLUMNS.map(() => cells));
    });
  }

  it('a value too long for its cell written after planning: refused under the lock, none swapped (DL2)', async () => {
    const h = await open(orgState({ plaintext: 5 }));
    const server = h.fake.responder;
    let checks = 0;
    h.fake.responder = (sql, parameters) =>
      sql.includes('DATALENGTH(CONVERT(nvarchar(max)') && of(mailbox)(sql) && ++checks === 2
        ? [{ n: 1, examples: '0BE77F8B-2A2B-496C-AFFB-C20A0FA71875 ' }]
        : server(sql, parameters);
    const error = await convertColumns(h.tk).then(
      () => undefined,
      (e: unknown) => e as CellcryptError,
    );
    expect(error?.code).to.equal('CellcryptValueTooLong');
    expect(error?.exitCode).to.equal(1);
    expect(error?.message).to.contain('MailboxBase.Password').and.contain('nothing was swapped');
    expect(checks, 'counted in planning and again under the lock').to.equal(2);
    // The check ran after the table lock, in the transaction that would have swapped; it rolled back.
    const lockAt = h.fake.calls.findIndex((c) => c.sql?.includes('TABLOCKX') && c.sql.includes('[MailboxBase]'));
    const checkAt = h.fake.calls.findIndex(
      (c, i) => i > lockAt && c.sql?.includes('DATALENGTH(CONVERT(nvarchar(max)') && c.sql.includes('[MailboxBase]'),
    );
    expect(lockAt).to.be.greaterThan(-1);
    expect(checkAt).to.be.greaterThan(lockAt);
    expect(h.fake.calls[checkAt].connectionId).to.equal(h.fake.calls[lockAt].connectionId);
    const after = h.fake.calls.slice(checkAt).filter((c) => c.connectionId === h.fake.calls[lockAt].connectionId);
    expect(after.map((c) => c.kind)).to.include('rollbackTransaction');
    expect(sent(h, (sql) => sql.includes('DROP COLUMN [Password]') && sql.includes('[MailboxBase]'))).to.have.length(0);
    expect(h.state.plaintext.get(label(mailbox))).to.equal(5);
  });

  it('after the swaps: each table rebuilt once, outside any transaction, with its lock timeout (WR1)', async () => {
    const h = await open(orgState({ plaintext: 2 }));
    await convertColumns(h.tk);
    const rebuilds = sent(h, (sql) => sql.includes(' REBUILD WITH (ONLINE = OFF)'));
    const tables = [...new Set(DYNAMICS_DEFAULT_COLUMNS.map((c) => c.table))];
    expect(rebuilds.map((c) => /ALTER TABLE \[([^\]]+)\]/.exec(c.sql!)![1])).to.deep.equal(tables);
    for (const call of rebuilds) {
      expect(call.kind, 'an RPC, so its SET LOCK_TIMEOUT ends with it').to.equal('execSql');
      expect(call.sql).to.match(/^SET LOCK_TIMEOUT 30000; ALTER TABLE \[[A-Za-z]+\] REBUILD WITH \(ONLINE = OFF\)$/);
      // Sent after the table's last swap committed: no transaction is open on its connection.
      const before = h.fake.calls
        .slice(0, h.fake.calls.indexOf(call))
        .filter((c) => c.connectionId === call.connectionId);
      const last = before.filter((c) => /Transaction$/.test(c.kind)).pop();
      expect(last?.kind).to.not.equal('beginTransaction');
    }
  });
});
