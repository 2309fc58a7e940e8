import { expect } from 'chai';
import { guidBytesToString, keyGuidFromIdentity } from '../../../src/cellcrypt';
import { identityValueFor } from '../../../src/cellcrypt/key-identity';
import type { CellcryptError } from '../../../src/common/errors';
import { Secret } from '../../../src/common/secret';
import { changeKey } from '../../../src/core/change-key';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../src/core/registry';
import { rewrap } from '../../../src/core/rewrap';
import { readStatus } from '../../../src/core/status';
import { sampleCells, type FakeServerState } from '../../support/fake-mssql-server';
import { type RecordedCall } from '../../support/fake-tedious';
import { targetRuns } from '../../support/targets';
import { parseTsql } from '../../support/tsql-grammar';
import {
  closeFakeMssqlOrg,
  openFakeMssqlOrg,
  type FakeMssqlOrg,
  transactionsOf,
  expectWellFormedCalls,
} from '../../support/fake-mssql-org';

/**
 * Issue 18, part 2, on SQL Server: the REAL rewrap over knex's real mssql client and a recording
 * tedious connection answered by the scripted server (test/support/fake-mssql-server.ts), which
 * keeps which certificates encrypt each key and which passwords the master key, and refuses what
 * SQL Server refuses (a key opened through a certificate that does not encrypt it, the last
 * encryption of a key dropped, a certificate dropped while a key is still encrypted by it, a wrong
 * master-key password). Proven: what is sent, in one transaction, in order, parsing with the
 * T-SQL grammar, secrets only outside knex; and what the org is afterwards.
 */
const P1 = new Secret('first key ☃ 1!');
const MASTER = new Secret("Mk1!master'pass?;--");
const guid = (s: Secret) => guidBytesToString(keyGuidFromIdentity(identityValueFor(s).reveal()));
const label = (c: { table: string; column: string }) => `${c.table}.${c.column}`;

interface Harness extends FakeMssqlOrg {
  state: FakeServerState;
  secrets: string[];
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

/** What a rollback undoes in the scripted server (it answers statements; it has no transactions). */
function snapshot(state: FakeServerState) {
  return {
    certificates: [...state.certificates],
    keys: state.keys.map((k) => ({ ...k, certificates: k.certificates && [...k.certificates] })),
    masterPasswords: state.masterPasswords && [...state.masterPasswords],
  };
}

async function open(state: FakeServerState): Promise<Harness> {
  let saved: ReturnType<typeof snapshot> | undefined;
  const org = await openFakeMssqlOrg(state, {
    keyStore: { passphrase: P1, master: MASTER },
    onTransaction: (kind) => {
      if (kind === 'beginTransaction') saved = snapshot(state);
      if (kind === 'rollbackTransaction' && saved) Object.assign(state, saved);
      return undefined;
    },
  });
  harness = { ...org, state, secrets: [P1.reveal(), MASTER.reveal()] };
  return harness;
}

const transactions = transactionsOf;

/** Every statement sent parses and keeps our rules; keys opened before use; no secret through knex. */
function expectWellFormed(h: Harness): void {
  expectWellFormedCalls(h.fake.calls, h.secrets);
}

const isRewrap = (tx: { calls: RecordedCall[] }) => tx.calls.some((c) => c.sql!.startsWith('ALTER SYMMETRIC KEY'));

(targetRuns('mssql-fake') ? describe : describe.skip)(
  'mssql engine: rewrap over knex mssql + recording tedious',
  function () {
    this.timeout(60_000);

    afterEach(async () => {
      await closeFakeMssqlOrg(harness);
      harness = undefined;
    });

    it(
      'one committed transaction: open through the old certificate, create the new one, ADD then DROP per ' +
        'key, drop the old certificate, ADD/DROP the master-key password, reopen through the new chain, probe',
      async () => {
        const h = await open(installedState());
        const keystore = await h.tk.keystore();
        const result = await rewrap(h.tk);
        const password = (await keystore.get('master-key-password'))!;
        h.secrets.push(password.reveal());
        expectWellFormed(h);
        expect(result.certificate).to.deep.equal({ from: 'cellcrypt_certificate', to: 'cellcrypt_certificate_2' });

        const txs = transactions(h.fake.calls).filter(isRewrap);
        expect(txs).to.have.length(1);
        expect(txs[0].end).to.equal('commit');
        const sql = txs[0].calls.map((c) => c.sql!);
        const at = (prefix: string, from = 0) => sql.findIndex((s, i) => i >= from && s.startsWith(prefix));
        expect(sql[0], 'XACT_ABORT before anything else').to.match(/^SET XACT_ABORT ON; OPEN MASTER KEY/);
        const reopen = at('SET XACT_ABORT ON; OPEN MASTER KEY', 1);
        const order = [
          0,
          at('OPEN SYMMETRIC KEY [cellcrypt_key_1] DECRYPTION BY CERTIFICATE [cellcrypt_certificate]'),
          at('IF NOT EXISTS (SELECT 1 FROM sys.certificates WHERE name = ' + "N'cellcrypt_certificate_2')"),
          at('ALTER SYMMETRIC KEY [cellcrypt_key_1] ADD ENCRYPTION BY CERTIFICATE [cellcrypt_certificate_2]'),
          at('ALTER SYMMETRIC KEY [cellcrypt_key_1] DROP ENCRYPTION BY CERTIFICATE [cellcrypt_certificate]'),
          at('CLOSE ALL SYMMETRIC KEYS; DROP CERTIFICATE [cellcrypt_certificate]'),
          at('OPEN MASTER KEY DECRYPTION BY PASSWORD'),
          at('CLOSE ALL SYMMETRIC KEYS; IF EXISTS'),
          reopen,
          at('OPEN SYMMETRIC KEY [cellcrypt_key_1] DECRYPTION BY CERTIFICATE [cellcrypt_certificate_2]'),
          at('SELECT DECRYPTBYKEY(0x'),
          sql.findIndex((s) => /insert into \[cellcrypt\]\.\[audit\]/i.test(s)),
        ];
        expect(
          order.every((i) => i >= 0),
          order.join(),
        ).to.equal(true);
        expect([...order].sort((a, b) => a - b)).to.deep.equal(order);
        const change = txs[0].calls[order[6]];
        expect(change.kind, 'the statement with both passwords goes to tedious directly').to.equal('execSqlBatch');
        expect(change.sql!.split('; ').map((part) => part.replace(/= N'.*'$/, "= N'…'"))).to.deep.equal([
          "OPEN MASTER KEY DECRYPTION BY PASSWORD = N'…'",
          "ALTER MASTER KEY ADD ENCRYPTION BY PASSWORD = N'…'",
          "ALTER MASTER KEY DROP ENCRYPTION BY PASSWORD = N'…'",
        ]);
        expect(txs[0].calls[reopen].sql).to.contain(password.reveal().replace(/'/g, "''"));
        // No cell is written (ENCRYPTBYKEY appears only in the encryption/decryption test's probe).
        expect(
          sql.filter((s) => /REGENERATE|^\s*UPDATE |DECLARE @batch|DECLARE @written/i.test(s)),
          'no cell is written',
        ).to.deep.equal([]);

        // What the server holds now, and what the key store holds.
        expect(h.state.certificates).to.deep.equal(['cellcrypt_certificate_2']);
        expect(h.state.keys.map((k) => [k.name, k.certificates])).to.deep.equal([
          ['cellcrypt_key_1', ['cellcrypt_certificate_2']],
        ]);
        expect(h.state.masterPasswords).to.deep.equal([password.reveal()]);
        expect(password.reveal()).to.not.equal(MASTER.reveal());
        expect(await keystore.get('master-key-password.pending')).to.equal(undefined);

        // The org opens through the new chain, and a key change creates its key under it.
        expect((await readStatus(h.tk)).active).to.equal(true);
        await changeKey(h.tk, { generate: true });
        expect(h.state.keys.map((k) => [k.name, k.certificates])).to.deep.equal([
          ['cellcrypt_key_2', ['cellcrypt_certificate_2']],
        ]);
      },
    );

    it('--dry-run: nothing sent that changes anything; every statement parses', async () => {
      const state = installedState();
      const h = await open(state);
      const before = snapshot(state);
      const result = await rewrap(h.tk, { dryRun: true });
      expectWellFormed(h);
      expect(transactions(h.fake.calls).filter(isRewrap)).to.have.length(0);
      const writes = h.fake.calls.filter((c) => c.sql && /^\s*(CREATE|DROP|ALTER|UPDATE|INSERT|DELETE)\b/i.test(c.sql));
      expect(writes.map((c) => c.sql!.slice(0, 60))).to.deep.equal([]);
      expect(snapshot(state)).to.deep.equal(before);
      for (const statement of result.statements!.filter((s) => !/^(BEGIN|COMMIT) TRANSACTION$|^--/.test(s)))
        expect(parseTsql(statement), statement).to.deep.equal([]);
      expect(result.statements!.join('\n')).to.contain("ALTER MASTER KEY ADD ENCRYPTION BY PASSWORD = N'***'");
      expect(await (await h.tk.keystore()).get('master-key-password.pending')).to.equal(undefined);
    });

    it(
      'the master-key password change failing (the last step): rollback sent, no commit, the key store ' +
        'keeps the old password and no pending one, and the org still opens',
      async () => {
        const state = installedState();
        const h = await open(state);
        state.failOn = {
          contains: 'ALTER MASTER KEY ADD ENCRYPTION BY PASSWORD',
          error: Object.assign(new Error('Password validation failed.'), { number: 15118 }),
        };
        const failure = await rewrap(h.tk).then(
          () => undefined,
          (error: unknown) => error as CellcryptError,
        );
        expect(failure?.exitCode, failure?.message).to.equal(1);
        expect(failure!.message).to.contain('rolled back');
        const txs = transactions(h.fake.calls).filter(isRewrap);
        expect(txs.map((tx) => tx.end)).to.deep.equal(['rollback']);
        expectWellFormed(h);
        const keystore = await h.tk.keystore();
        expect((await keystore.get('master-key-password'))!.reveal()).to.equal(MASTER.reveal());
        expect(await keystore.get('master-key-password.pending')).to.equal(undefined);
        state.failOn = undefined;
        expect(state.certificates).to.deep.equal(['cellcrypt_certificate']);
        expect((await readStatus(h.tk)).active).to.equal(true);
      },
    );

    it('a crash between the commit and the key store: status opens with the pending one, promotes it', async () => {
      const state = installedState();
      const h = await open(state);
      await rewrap(h.tk);
      const keystore = await h.tk.keystore();
      const committed = (await keystore.get('master-key-password'))!;
      await keystore.put('master-key-password', MASTER);
      await keystore.put('master-key-password.pending', committed);
      const status = await readStatus(h.tk);
      expect(status.active, JSON.stringify(status)).to.equal(true);
      expect((await keystore.get('master-key-password'))!.reveal()).to.equal(committed.reveal());
      expect(await keystore.get('master-key-password.pending')).to.equal(undefined);
    });
  },
);
