import { expect } from 'chai';
import { Secret } from '../../src/common/secret';
import { changeKey } from '../../src/core/change-key';
import { seedDemo } from '../../src/core/demo-seed';
import { install } from '../../src/core/install';
import { assessActivity } from '../../src/core/key-access';
import { rewrap } from '../../src/core/rewrap';
import { readStatus } from '../../src/core/status';
import type { Toolkit } from '../../src/core/toolkit';
import { verify } from '../../src/core/verify';
import { rawCells } from '../support/org-data';
import { rejection } from '../support/refusal';
import { createTestOrg, type TargetName, type TestOrg } from '../support/targets';
import {
  activateOk,
  expectNoSecretLeaks,
  expectOk,
  fingerprint,
  installDemo,
  loseKeyStore,
  openCurrent,
  rememberKeyStoreSecrets,
  saveKey,
  useActivateHarness,
} from './activate-harness';
import { dieAfterBatches } from '../support/interrupted-runs';

/**
 * Issue 18, part 2: `rewrap` gives the key hierarchy a new certificate and a new master-key
 * password in one transaction and rewrites no cell. Proven on the data itself: every cell's raw
 * bytes before and after, the hierarchy's rows, the key store's values, and the operations that
 * must keep working afterwards (verify, change-key, activate from the saved key).
 */

/** Every registered column's raw cells, by primary key. */
async function allCells(tk: Toolkit): Promise<Record<string, Map<string, Buffer | null>>> {
  const out: Record<string, Map<string, Buffer | null>> = {};
  for (const column of tk.registry) out[`${column.table}.${column.column}`] = await rawCells(tk.engine.knex, column);
  return out;
}

/** The emulated hierarchy's rows: which certificate wraps each key, and every wrapping (hex). */
async function hierarchyRows(tk: Toolkit) {
  const db = tk.engine.knex;
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const master = await db.raw('select wrapped from cellcrypt.master_key');
  const certificates = await db.raw('select name, wrapped from cellcrypt.certificates order by name');
  const keys = await db.raw('select name, key_guid, certificate, wrapped from cellcrypt.symmetric_keys order by name');
  return {
    master: hex(master.rows[0].wrapped),
    certificates: certificates.rows.map((r: { name: string; wrapped: Uint8Array }) => ({
      name: r.name,
      wrapped: hex(r.wrapped),
    })),
    keys: keys.rows.map((r: { name: string; key_guid: Uint8Array; certificate: string; wrapped: Uint8Array }) => ({
      name: r.name,
      guid: hex(r.key_guid),
      certificate: r.certificate,
      wrapped: hex(r.wrapped),
    })),
  };
}

async function withCurrent<T>(work: (tk: Toolkit) => Promise<T>): Promise<T> {
  const tk = await openCurrent();
  try {
    return await work(tk);
  } finally {
    await tk.close();
  }
}

export function scenarios(target: TargetName): void {
  describe(`rewrap through the CLI on ${target}`, function () {
    useActivateHarness(target);

    it(
      'a new certificate and master-key password, every cell byte-identical; verify, change-key and ' +
        'activate after losing the key store still work, and no secret reaches any output',
      async () => {
        await installDemo();
        const saved = await saveKey('k1.txt');
        const before = await withCurrent(async (tk) => ({
          cells: await allCells(tk),
          rows: await hierarchyRows(tk),
          master: (await (await tk.keystore()).get('master-key-password'))!.reveal(),
        }));

        const run = await expectOk('rewrap', '--json');
        await rememberKeyStoreSecrets();
        expect(run.json).to.deep.include({
          dryRun: false,
          certificate: { from: 'cellcrypt_certificate', to: 'cellcrypt_certificate_2' },
        });
        const after = await withCurrent(async (tk) => ({
          cells: await allCells(tk),
          rows: await hierarchyRows(tk),
          keystore: await tk.keystore(),
          master: (await (await tk.keystore()).get('master-key-password'))!.reveal(),
          pending: await (await tk.keystore()).get('master-key-password.pending'),
          audit: (await tk.engine.knex.raw(`select * from cellcrypt.audit where operation = 'rewrap'`)).rows,
        }));

        // Not one cell rewritten.
        expect(after.cells).to.deep.equal(before.cells);
        // The certificate is a new one (a new name and new key material), the key is the same
        // key (GUID) under it, wrapped anew; the master key wrapped under a new password.
        expect(after.rows.certificates.map((c: { name: string }) => c.name)).to.deep.equal(['cellcrypt_certificate_2']);
        expect(after.rows.certificates[0].wrapped).to.not.equal(before.rows.certificates[0].wrapped);
        expect(after.rows.keys.map((k: { name: string; guid: string }) => [k.name, k.guid])).to.deep.equal(
          before.rows.keys.map((k: { name: string; guid: string }) => [k.name, k.guid]),
        );
        expect(after.rows.keys[0].certificate).to.equal('cellcrypt_certificate_2');
        expect(after.rows.keys[0].wrapped).to.not.equal(before.rows.keys[0].wrapped);
        expect(after.rows.master).to.not.equal(before.rows.master);
        // The key store holds the new password, nothing pending.
        expect(after.master).to.not.equal(before.master);
        expect(after.pending).to.equal(undefined);
        // One audit row, succeeded, no secret in it.
        expect(after.audit).to.have.length(1);
        expect(after.audit[0]).to.include({ outcome: 'succeeded', old_key_guid: null, new_key_guid: null });
        expect(after.audit[0].detail).to.contain('cellcrypt_certificate -> cellcrypt_certificate_2');
        for (const secret of [before.master, after.master, saved.passphrase])
          expect(JSON.stringify(after.audit)).not.to.contain(secret);

        const status = (await expectOk('status', '--json')).json;
        expect(status.active).to.equal(true);
        await expectOk('verify');
        // The key file saved before the rewrap is still the key.
        await expectOk(
          'decrypt-offline',
          '--key-file',
          saved.file,
          [...before.cells['MailboxBase.Password'].values()].find((c) => c)!.toString('hex'),
        );

        // A key change after the rewrap: its new key goes under the new certificate.
        await expectOk('change-key', '--generate');
        await expectOk('verify');
        const changed = await withCurrent(hierarchyRows);
        expect(changed.keys.map((k: { name: string; certificate: string }) => [k.name, k.certificate])).to.deep.equal([
          ['cellcrypt_key_2', 'cellcrypt_certificate_2'],
        ]);
        // And a second rewrap moves on to the third generation.
        await expectOk('rewrap');
        await rememberKeyStoreSecrets();
        expect((await withCurrent(hierarchyRows)).certificates.map((c: { name: string }) => c.name)).to.deep.equal([
          'cellcrypt_certificate_3',
        ]);

        // The key store is lost: activate from the saved key rebuilds the hierarchy (every
        // certificate generation of ours removed), and the org works again.
        const k2 = await saveKey('k2.txt');
        await loseKeyStore();
        await activateOk(k2.file);
        await expectOk('verify');
        expect((await withCurrent(hierarchyRows)).certificates.map((c: { name: string }) => c.name)).to.deep.equal([
          'cellcrypt_certificate',
        ]);
        await expectOk('rewrap');
        await rememberKeyStoreSecrets();
        await expectOk('verify');
        expectNoSecretLeaks();
      },
    );

    it('--dry-run prints the statements with every secret as *** and changes nothing', async () => {
      await installDemo();
      const before = await fingerprint();
      const run = await expectOk('rewrap', '--dry-run', '--json');
      expect(run.json.dryRun).to.equal(true);
      const text = run.json.statements.join('\n');
      expect(text).to.contain("cellcrypt.change_master_key_password('***'::text, '***'::text)");
      expect(text).to.contain("cellcrypt.move_symmetric_key('cellcrypt_key_1'::text, 'cellcrypt_certificate'::text");
      expect(await fingerprint()).to.deep.equal(before);
      const plain = await expectOk('rewrap', '--dry-run');
      expect(plain.stdout).to.contain('nothing was changed');
      expect(await fingerprint()).to.deep.equal(before);
      expectNoSecretLeaks();
    });
  });

  describe(`rewrap on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
      await seedDemo(tk, 40);
      await install(tk);
    });

    afterEach(async () => {
      await tk?.close();
      await org?.cleanup();
    });

    it(
      'a failure injected in the last step of the transaction (the master key password) rolls ' +
        'everything back: cells, certificate, keys and key store as they were; the org keeps working',
      async () => {
        const cells = await allCells(tk);
        const rows = await hierarchyRows(tk);
        const keystore = await tk.keystore();
        const master = (await keystore.get('master-key-password'))!.reveal();
        await tk.engine.knex.raw(
          `create function cellcrypt_test_boom() returns trigger language plpgsql as $$ ` +
            `begin raise exception 'injected failure in the master key update'; end $$`,
        );
        await tk.engine.knex.raw(
          'create trigger boom before update on cellcrypt.master_key ' +
            'for each row execute function cellcrypt_test_boom()',
        );

        const error = await rejection(rewrap(tk));
        expect(error.exitCode).to.equal(1);
        expect(error.message).to.contain('injected failure').and.to.contain('rolled back');
        expect(await allCells(tk)).to.deep.equal(cells);
        expect(await hierarchyRows(tk)).to.deep.equal(rows);
        expect((await keystore.get('master-key-password'))!.reveal()).to.equal(master);
        expect(await keystore.get('master-key-password.pending')).to.equal(undefined);
        const audit = await tk.engine.knex.raw(
          `select outcome, detail from cellcrypt.audit where operation = 'rewrap'`,
        );
        expect(audit.rows).to.have.length(1);
        expect(audit.rows[0].outcome).to.equal('failed');
        expect(audit.rows[0].detail).to.contain('rolled back').and.not.to.contain(master);
        expect((await verify(tk)).ok).to.equal(true);

        await tk.engine.knex.raw('drop trigger boom on cellcrypt.master_key');
        const done = await rewrap(tk);
        expect(done.certificate.to).to.equal('cellcrypt_certificate_2');
        expect(await allCells(tk)).to.deep.equal(cells);
        expect((await verify(tk)).ok).to.equal(true);
      },
    );

    it(
      'a crash after the commit (the key store still has the old password, the new one pending) is ' +
        'repaired by the next command, install included; a crash before it leaves the pending one unused',
      async () => {
        const keystore = await tk.keystore();
        const old = (await keystore.get('master-key-password'))!;
        // Before the commit: a pending password the database never received.
        const stray = new Secret('Never-Committed-1!');
        await keystore.put('master-key-password.pending', stray);
        expect((await assessActivity(tk)).active).to.equal(true);
        expect((await keystore.get('master-key-password'))!.reveal()).to.equal(old.reveal());
        expect((await keystore.get('master-key-password.pending'))!.reveal(), 'never removed by a reader').to.equal(
          stray.reveal(),
        );

        // The next rewrap overwrites it; then the state a crash right after its commit leaves.
        await rewrap(tk);
        const committed = (await keystore.get('master-key-password'))!;
        await keystore.put('master-key-password', old);
        await keystore.put('master-key-password.pending', committed);
        const status = await readStatus(tk);
        expect(status.active, JSON.stringify(status)).to.equal(true);
        expect((await keystore.get('master-key-password'))!.reveal()).to.equal(committed.reveal());
        expect(await keystore.get('master-key-password.pending')).to.equal(undefined);

        // The same crash, found by install instead of status.
        await rewrap(tk);
        const again = (await keystore.get('master-key-password'))!;
        await keystore.put('master-key-password', committed);
        await keystore.put('master-key-password.pending', again);
        await install(tk);
        expect((await keystore.get('master-key-password'))!.reveal()).to.equal(again.reveal());
        expect((await verify(tk)).ok).to.equal(true);
      },
    );

    it('refuses (exit 2, audited, nothing changed): an inactive org, a change in flight, an old schema', async () => {
      const rows = await hierarchyRows(tk);
      // A batched change stopped after its second batch: both keys in the database.
      await changeKey(tk, {
        generate: true,
        batchSize: 20,
        afterBatch: dieAfterBatches(2),
      }).catch(() => undefined);
      const inFlight = await rejection(rewrap(tk));
      expect(inFlight.exitCode).to.equal(2);
      expect(inFlight.code).to.equal('CellcryptKeyChangeInProgress');
      await changeKey(tk, { resume: true, batchSize: 20 });

      await tk.engine.knex.raw(`delete from cellcrypt_migrations where name like '%rewrap_functions%'`);
      const outdated = await rejection(rewrap(tk));
      expect(outdated.code).to.equal('CellcryptSchemaOutdated');
      await install(tk);

      const keystore = await tk.keystore();
      const master = (await keystore.get('master-key-password'))!;
      await keystore.put('master-key-password', new Secret('Wrong-Password-1!'));
      const inactive = await rejection(rewrap(tk));
      expect(inactive.exitCode).to.equal(2);
      expect(inactive.message).to.contain('inactive');
      await keystore.put('master-key-password', master);

      const after = await hierarchyRows(tk);
      expect(after.certificates).to.deep.equal(rows.certificates);
      expect(after.master).to.equal(rows.master);
      const audit = await tk.engine.knex.raw(`select outcome from cellcrypt.audit where operation = 'rewrap'`);
      expect(audit.rows.map((r: { outcome: string }) => r.outcome)).to.deep.equal(['refused', 'refused', 'refused']);
      expect((await verify(tk)).ok).to.equal(true);
    });
  });
}
