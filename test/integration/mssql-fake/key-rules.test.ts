import { expect } from 'chai';
import { guidBytesToString, keyGuidFromIdentity } from '../../../src/cellcrypt';
import { identityValueFor } from '../../../src/cellcrypt/key-identity';
import type { CellcryptError } from '../../../src/common/errors';
import { Secret } from '../../../src/common/secret';
import { activate } from '../../../src/core/activate';
import { changeKey } from '../../../src/core/change-key';
import { convertColumns } from '../../../src/core/convert';
import { provisionKeys } from '../../../src/core/provision';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../src/core/registry';
import { rewrap } from '../../../src/core/rewrap';
import { readStatus } from '../../../src/core/status';
import { sampleCells, type FakeServerState } from '../../support/fake-mssql-server';
import { targetRuns } from '../../support/targets';
import { parseTsql } from '../../support/tsql-grammar';
import { allStatementRules } from '../../support/tsql-rules';
import { closeFakeMssqlOrg, openFakeMssqlOrg, type FakeMssqlOrg, transactionsOf } from '../../support/fake-mssql-org';

/**
 * Issue 14 over knex's real mssql client and the scripted server: the REAL core operations keep
 * the key rules a DBA relies on. Every key and certificate any operation creates is granted to
 * the application role in the transaction that creates it (BR1); no operation touches the master
 * key's service-master-key protection (WR4); activate refuses, before any change, a database
 * where objects not cellcrypt's hang off the master key or our certificate (BR5).
 */
const P1 = new Secret('first key ☃ 1!');
const MASTER = new Secret("Mk1!master'pass?;--");
const guid = (s: Secret) => guidBytesToString(keyGuidFromIdentity(identityValueFor(s).reveal()));
const label = (c: { table: string; column: string }) => `${c.table}.${c.column}`;
const ROLE = '[cellcrypt_application]';

interface Harness extends FakeMssqlOrg {
  state: FakeServerState;
}

let harness: Harness | undefined;

function installedState(): FakeServerState {
  return {
    orgId: 'org-1',
    masterKey: true,
    masterPasswords: [MASTER.reveal()],
    certificates: ['cellcrypt_certificate'],
    keys: [{ name: 'cellcrypt_key_1', passphrase: P1, certificates: ['cellcrypt_certificate'] }],
    cells: new Map(DYNAMICS_DEFAULT_COLUMNS.map((c) => [label(c), new Map([[guid(P1), 7]])])),
    plaintext: new Map(),
    samples: new Map(DYNAMICS_DEFAULT_COLUMNS.map((c) => [label(c), sampleCells(P1, 3)])),
  };
}

async function open(state: FakeServerState, keyStore: { passphrase?: Secret; master?: Secret }): Promise<Harness> {
  const org = await openFakeMssqlOrg(state, { keyStore });
  harness = { ...org, state };
  return harness;
}

const transactions = transactionsOf;

/**
 * Every CREATE SYMMETRIC KEY / CREATE CERTIFICATE sent, each with whether the transaction that
 * sent it also granted it to the role, and how that transaction ended.
 */
function creations(h: Harness): Array<{ created: string; granted: boolean; end: string }> {
  const out: Array<{ created: string; granted: boolean; end: string }> = [];
  for (const tx of transactions(h.fake.calls)) {
    const sql = tx.calls.map((c) => c.sql!);
    for (const statement of sql) {
      for (const [, kind, name] of statement.matchAll(/CREATE (SYMMETRIC KEY|CERTIFICATE) \[([^\]]+)\]/g)) {
        const grant =
          kind === 'SYMMETRIC KEY'
            ? `GRANT VIEW DEFINITION ON SYMMETRIC KEY::[${name}] TO ${ROLE}`
            : `GRANT CONTROL ON CERTIFICATE::[${name}] TO ${ROLE}`;
        out.push({ created: `${kind} ${name}`, granted: sql.some((s) => s.includes(grant)), end: tx.end });
      }
    }
  }
  return out;
}

function expectParses(h: Harness): void {
  for (const call of h.fake.calls.filter((c) => c.sql)) {
    expect(parseTsql(call.sql!), call.sql!.slice(0, 300)).to.deep.equal([]);
    expect(allStatementRules(call.sql!, { knex: false }), call.sql!.slice(0, 300)).to.deep.equal([]);
  }
}

const sentAnywhere = (h: Harness, text: string) => h.fake.calls.filter((c) => c.sql?.includes(text));

(targetRuns('mssql-fake') ? describe : describe.skip)(
  'mssql key rules over the scripted server (issue 14)',
  function () {
    this.timeout(60_000);

    afterEach(async () => {
      await closeFakeMssqlOrg(harness);
      harness = undefined;
    });

    it(
      'BR1: install, change-key (one transaction, then batched) and rewrap grant every key and certificate ' +
        'they create to cellcrypt_application, in the committed transaction that creates it',
      async () => {
        const state: FakeServerState = {
          ...installedState(),
          masterKey: false,
          masterPasswords: undefined,
          certificates: [],
          keys: [],
          cells: new Map(),
          plaintext: new Map(DYNAMICS_DEFAULT_COLUMNS.map((c) => [label(c), 9])),
        };
        const h = await open(state, {});
        await provisionKeys(h.tk);
        await convertColumns(h.tk);
        await changeKey(h.tk, { generate: true });
        await changeKey(h.tk, { generate: true, batchSize: 4 });
        await rewrap(h.tk);
        expectParses(h);
        expect(sentAnywhere(h, 'SERVICE MASTER KEY').map((c) => c.sql)).to.deep.equal([]);
        expect(creations(h)).to.deep.equal([
          { created: 'CERTIFICATE cellcrypt_certificate', granted: true, end: 'commit' },
          { created: 'SYMMETRIC KEY cellcrypt_key_1', granted: true, end: 'commit' },
          { created: 'SYMMETRIC KEY cellcrypt_key_2', granted: true, end: 'commit' },
          { created: 'SYMMETRIC KEY cellcrypt_key_3', granted: true, end: 'commit' },
          { created: 'CERTIFICATE cellcrypt_certificate_2', granted: true, end: 'commit' },
        ]);
        expect(state.grants).to.deep.equal([
          'CONTROL CERTIFICATE::cellcrypt_certificate',
          'VIEW DEFINITION SYMMETRIC KEY::cellcrypt_key_1',
          'VIEW DEFINITION SYMMETRIC KEY::cellcrypt_key_2',
          'VIEW DEFINITION SYMMETRIC KEY::cellcrypt_key_3',
          'CONTROL CERTIFICATE::cellcrypt_certificate_2',
        ]);
        // The batched change commits its new key before the first batch: the grant is in that commit.
        const batchedCreate = transactions(h.fake.calls).find((tx) =>
          tx.calls.some((c) => c.sql!.startsWith('CREATE SYMMETRIC KEY [cellcrypt_key_3]')),
        )!;
        expect(batchedCreate.calls.some((c) => c.sql!.startsWith('DECLARE @batch'))).to.equal(false);
      },
    );

    it("BR1: activate's re-created certificate and key are granted in its one transaction", async () => {
      const h = await open(installedState(), {});
      await activate(h.tk, P1, { newKeyStore: true });
      expectParses(h);
      expect(creations(h)).to.deep.equal([
        { created: 'CERTIFICATE cellcrypt_certificate', granted: true, end: 'commit' },
        { created: 'SYMMETRIC KEY cellcrypt_key_1', granted: true, end: 'commit' },
      ]);
    });

    it('WR4: no operation changes how the master key is protected (status, change-key, rewrap)', async () => {
      const state = { ...installedState(), restoredElsewhere: true };
      const h = await open(state, { passphrase: P1, master: MASTER });
      const before = await readStatus(h.tk);
      expect(before.active, 'the master key does not open by itself here').to.equal(false);
      expect(sentAnywhere(h, 'SERVICE MASTER KEY').map((c) => c.sql)).to.deep.equal([]);
      state.restoredElsewhere = false;
      await changeKey(h.tk, { generate: true });
      await rewrap(h.tk);
      expect((await readStatus(h.tk)).active).to.equal(true);
      expect(sentAnywhere(h, 'SERVICE MASTER KEY').map((c) => c.sql)).to.deep.equal([]);
      expect(sentAnywhere(h, 'OPEN MASTER KEY').length).to.be.greaterThan(2);
    });

    it(
      'BR5: activate refuses, before any change, naming them, when objects not ours depend on the ' +
        'master key or our certificate',
      async () => {
        const state: FakeServerState = {
          ...installedState(),
          foreignDependents: [
            { kind: 'certificate', name: 'ReportSigning' },
            { kind: 'symmetric key', name: 'PayrollKey' },
          ],
        };
        const h = await open(state, {});
        const error = await activate(h.tk, P1, { newKeyStore: true }).then(
          () => undefined,
          (e: unknown) => e as CellcryptError,
        );
        expect(error?.code).to.equal('CellcryptKeyHierarchyInUse');
        expect(error?.exitCode).to.equal(2);
        expect(error?.message).to.contain('certificate ReportSigning, symmetric key PayrollKey');
        expect(error?.message).to.contain('nothing was changed');
        expect(error?.hint).to.contain('another certificate').and.to.contain('keep the master key');
        expect(
          h.fake.calls.some((c) => c.kind === 'beginTransaction'),
          'no transaction was begun',
        ).to.equal(false);
        expect(h.fake.calls.filter((c) => /DROP|CREATE|ALTER/.test(c.sql ?? '')).map((c) => c.sql)).to.deep.equal([]);
        expect(state.keys.map((k) => k.name)).to.deep.equal(['cellcrypt_key_1']);
        const keystore = await h.tk.keystore();
        expect(await keystore.get('passphrase')).to.equal(undefined);
        expect(await keystore.get('master-key-password')).to.equal(undefined);
        const check = h.fake.calls.find((c) => c.sql?.startsWith("SELECT N'certificate' AS kind"))!;
        expect(parseTsql(check.sql!)).to.deep.equal([]);
      },
    );
  },
);
