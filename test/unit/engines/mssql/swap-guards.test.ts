import { expect } from 'chai';
import { guidBytesToString, keyGuidFromIdentity } from '../../../../src/cellcrypt';
import { identityValueFor } from '../../../../src/cellcrypt/key-identity';
import type { CellcryptError } from '../../../../src/common/errors';
import { Secret } from '../../../../src/common/secret';
import { convertColumns } from '../../../../src/core/convert';
import { install } from '../../../../src/core/install';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import { BLOCKER_HINTS } from '../../../../src/engines/mssql/blockers';
import { REFRESH_FAILED } from '../../../../src/engines/mssql/dependent-modules';
import { sampleCells, type FakeServerState } from '../../../support/fake-mssql-server';
import { parseTsql } from '../../../support/tsql-grammar';
import { allStatementRules } from '../../../support/tsql-rules';
import {
  closeFakeMssqlOrg,
  openFakeMssqlOrg,
  type FakeMssqlOrg,
  transactionsOf,
} from '../../../support/fake-mssql-org';

/**
 * Issue 14 over knex's real mssql client and the recording tedious, answered by the scripted
 * server: planning refuses a column something blocks before anything changes (BR2, BR3, WR1),
 * and the swap refreshes the views and modules over the table in its own transaction, after
 * the rename and before the commit; a refresh that fails rolls the swap back (WR2).
 */
const P1 = new Secret('first key ☃ 1!');
const MASTER = new Secret("Mk1!master'pass?;--");
const label = (c: { table: string; column: string }) => `${c.table}.${c.column}`;
const guid = (s: Secret) => guidBytesToString(keyGuidFromIdentity(identityValueFor(s).reveal()));
const TARGET = DYNAMICS_DEFAULT_COLUMNS[0];

/** An installed org (key hierarchy in place) whose columns are all still plaintext. */
function plaintextOrg(): FakeServerState {
  return {
    orgId: 'org-1',
    masterKey: true,
    certificates: ['cellcrypt_certificate'],
    keys: [{ name: 'cellcrypt_key_1', passphrase: P1 }],
    cells: new Map(),
    plaintext: new Map(DYNAMICS_DEFAULT_COLUMNS.map((c) => [label(c), 9])),
    samples: new Map(DYNAMICS_DEFAULT_COLUMNS.map((c) => [label(c), sampleCells(P1, 3)])),
  };
}

let harness: FakeMssqlOrg | undefined;

async function open(state: FakeServerState): Promise<FakeMssqlOrg> {
  harness = await openFakeMssqlOrg(state, {
    keyStore: { passphrase: P1, master: MASTER },
    statementTimeoutMs: 600_000,
  });
  return harness;
}

const transactions = transactionsOf;

const isChange = (sql: string) => /^\s*(DECLARE @\w+ TABLE \(lost|ALTER|UPDATE|INSERT|DELETE|CREATE|DROP)\b/i.test(sql);

describe('mssql: the swap is guarded (blockers refused at planning, dependent modules refreshed)', function () {
  this.timeout(60_000);

  afterEach(async () => {
    await closeFakeMssqlOrg(harness);
    harness = undefined;
  });

  it(
    'install on an org where one column is used by a statistics object: ' +
      'refused before any change, naming it and its way out',
    async () => {
      const state: FakeServerState = {
        ...plaintextOrg(),
        blockers: new Map([[label(TARGET), [{ kind: 'statistics', blocker: 'statistics _dta_stat_1' }]]]),
      };
      const h = await open(state);
      const error = await install(h.tk).then(
        () => undefined,
        (e: unknown) => e as CellcryptError,
      );
      expect(error, 'install must be refused').to.not.equal(undefined);
      expect(error!.code).to.equal('CellcryptRegistryInvalid');
      expect(error!.exitCode).to.equal(2);
      expect(error!.message).to.contain('nothing was changed');
      expect(error!.message).to.contain(`${TARGET.table}.${TARGET.column}`);
      expect(error!.message).to.contain(`statistics _dta_stat_1 (${BLOCKER_HINTS.statistics})`);
      const sent = h.fake.calls.filter((c) => c.sql).map((c) => c.sql!);
      // The blockers query was asked, for every column, over the direct (long-timeout) path.
      const asked = h.fake.calls.filter((c) => c.sql?.includes(') AS blocker FROM '));
      expect(asked).to.have.length(DYNAMICS_DEFAULT_COLUMNS.length);
      for (const call of asked) {
        expect(call.kind).to.equal('execSqlBatch');
        expect(call.timeout).to.equal(600_000);
        expect(parseTsql(call.sql!)).to.deep.equal([]);
      }
      expect(sent.filter(isChange).map((s) => s.slice(0, 80))).to.deep.equal([]);
      expect(sent.some((s) => /sp_rename|DROP COLUMN|ENCRYPTBYKEY/.test(s))).to.equal(false);
      expect(state.keys.map((k) => k.name)).to.deep.equal(['cellcrypt_key_1']);
      expect(state.plaintext.get(label(TARGET))).to.equal(9);
    },
  );

  it(
    'no blockers: the conversion runs, and each swap transaction ' +
      'refreshes the modules after the rename, before COMMIT',
    async () => {
      const state = plaintextOrg();
      const h = await open(state);
      await convertColumns(h.tk);
      const txs = transactions(h.fake.calls);
      for (const column of DYNAMICS_DEFAULT_COLUMNS) {
        const swap = txs.find((tx) =>
          tx.calls.some(
            (c) => c.sql!.includes(`DROP COLUMN [${column.column}]`) && c.sql!.includes(`[${column.table}]`),
          ),
        );
        expect(swap, label(column)).to.not.equal(undefined);
        expect(swap!.end).to.equal('commit');
        const sql = swap!.calls.map((c) => c.sql!);
        const rename = sql.findIndex((s) => s.includes(`DROP COLUMN [${column.column}]`) && s.includes('sp_rename'));
        const refresh = sql.findIndex((s) => s.includes('sys.sp_refreshview'));
        expect(rename, 'the swap').to.be.greaterThan(-1);
        expect(refresh, 'the refresh follows the rename').to.be.greaterThan(rename);
        const call = swap!.calls[refresh];
        expect(call.sql).to.contain(`OBJECT_ID(N'[${column.table}]', N'U')`);
        // As the swap: an RPC (its SET LOCK_TIMEOUT ends with it) with the long request timeout.
        expect(call.kind).to.equal('execSql');
        expect(call.sql).to.match(/^SET LOCK_TIMEOUT \d+; DECLARE @refresh_table/);
        expect(call.timeout).to.equal(600_000);
        expect(swap!.calls[rename].sql).to.match(/^SET LOCK_TIMEOUT \d+; ALTER TABLE/);
        expect(parseTsql(call.sql!)).to.deep.equal([]);
        expect(allStatementRules(call.sql!, { knex: false })).to.deep.equal([]);
      }
      expect(state.plaintext.get(label(TARGET))).to.equal(0);
      expect(Object.fromEntries(state.cells.get(label(TARGET))!)).to.deep.equal({ [guid(P1)]: 9 });
    },
  );

  it(
    'a view that no longer compiles: the refresh fails, the swap ' +
      'transaction is rolled back, the error names the way out',
    async () => {
      const state: FakeServerState = {
        ...plaintextOrg(),
        failOn: {
          contains: 'sys.sp_refreshview',
          error: Object.assign(
            new Error(
              'cannot refresh [dbo].[EmailServerProfile] over the encrypted column (error 4413): ' +
                "Could not use view or function 'dbo.EmailServerProfile' because of binding errors.",
            ),
            { number: REFRESH_FAILED },
          ),
        },
      };
      const h = await open(state);
      const error = await convertColumns(h.tk).then(
        () => undefined,
        (e: unknown) => e as CellcryptError,
      );
      expect(error?.code).to.equal('CellcryptConversionFailed');
      expect(error?.exitCode).to.equal(1);
      expect(error?.message).to.contain('[dbo].[EmailServerProfile]');
      expect(error?.hint).to.match(/rolled back: the column is still plaintext/);
      const swap = transactions(h.fake.calls).find((tx) => tx.calls.some((c) => c.sql!.includes('sp_rename')))!;
      expect(swap.end).to.equal('rollback');
      const sql = swap.calls.map((c) => c.sql!);
      const refresh = sql.findIndex((s) => s.includes('sys.sp_refreshview'));
      expect(refresh).to.be.greaterThan(sql.findIndex((s) => s.includes('sp_rename')));
      // Nothing after the failed refresh but closing the keys: no ledger row says `encrypted`.
      expect(
        sql.slice(refresh + 1).every((s) => s.startsWith('CLOSE ALL SYMMETRIC KEYS')),
        sql.join('\n'),
      ).to.equal(true);
    },
  );
});
