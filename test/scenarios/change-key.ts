import { expect } from 'chai';
import { Client } from 'pg';
import { Secret } from '../../src/common/secret';
import { changeKey } from '../../src/core/change-key';
import { readCurrentKey } from '../../src/core/show-key';
import { CellcryptError } from '../../src/common/errors';
import { install } from '../../src/core/install';
import { assessActivity } from '../../src/core/key-access';
import { keyGuidFor } from '../../src/cellcrypt/key-identity';
import { generatePassphrase } from '../../src/core/passphrase';
import { seedDemo } from '../../src/core/demo-seed';
import { readStatus } from '../../src/core/status';
import type { Toolkit } from '../../src/core/toolkit';
import { verify } from '../../src/core/verify';
import { DEMO_TABLE_NAMES, decryptedValues, q, rawCells, tableChecksums } from '../support/org-data';
import { rejection } from '../support/refusal';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';
import { dieAfterBatches } from '../support/interrupted-runs';

/** Every column's decrypted values, for "nothing was lost" comparisons across a key change. */
async function allValues(tk: Toolkit) {
  const out: Record<string, Map<string, string | null>> = {};
  for (const column of tk.registry) out[`${column.table}.${column.column}`] = await decryptedValues(tk, column);
  return out;
}

async function allCells(tk: Toolkit) {
  const out: Record<string, Map<string, Buffer | null>> = {};
  for (const column of tk.registry) out[`${column.table}.${column.column}`] = await rawCells(tk.engine.knex, column);
  return out;
}

async function cellGuids(tk: Toolkit): Promise<Set<string>> {
  const status = await readStatus(tk);
  return new Set(status.columns.flatMap((c) => Object.keys(c.byKey)));
}

export function scenarios(target: TargetName): void {
  describe(`change-key on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
    });

    /** An installed demo org: `rows` per table, every 10th value NULL. */
    async function installedOrg(rows = 60): Promise<void> {
      await seedDemo(tk, rows);
      await install(tk);
    }

    /** A batched change to `newKey` that dies after its second committed batch: cells on both keys. */
    function interruptedBatchedChange(newKey: Secret): Promise<unknown> {
      return changeKey(tk, {
        newKey,
        batchSize: 20,
        afterBatch: dieAfterBatches(2),
      }).catch((e: unknown) => e);
    }

    afterEach(async () => {
      await tk?.close();
      await org?.cleanup();
    });

    it('one transaction: a cell written after planning, before the table locks, is moved and counted', async () => {
      // Found by the load test: the proof compared with counts taken before the locks, so one
      // row written meanwhile rolled the whole change back ("945 cell(s) before, 946 after").
      await installedOrg();
      const columns = tk.engine.columns;
      const lockTable = columns.lockTable.bind(columns);
      const written = '00000000-0000-4000-8000-00000000abcd';
      let wrote = false;
      columns.lockTable = async (trx, ref) => {
        if (!wrote && ref.table === 'MailboxBase') {
          wrote = true;
          await trx.raw(
            `insert into "MailboxBase" ("MailboxId", "Name", "Password") values ` +
              `(?::uuid, 'written meanwhile', cellcrypt.encrypt_text(cellcrypt.current_key_guid(), ?, ?::uuid))`,
            [written, 'an application wrote this', written],
          );
        }
        return lockTable(trx, ref);
      };
      try {
        const newKey = generatePassphrase();
        const result = await changeKey(tk, { newKey });
        expect(wrote).to.equal(true);
        expect(result.newKey.guid).to.equal(keyGuidFor(newKey));
      } finally {
        columns.lockTable = lockTable;
      }
      const mailbox = tk.registry.find((c) => c.table === 'MailboxBase')!;
      expect((await decryptedValues(tk, mailbox)).get(written)).to.equal('an application wrote this');
      expect((await verify(tk)).ok).to.equal(true);
    });

    it(
      'one transaction: every cell moves to the new key, ' +
        'values intact, old key dropped, audit row without secrets',
      async () => {
        await installedOrg();
        const before = await allValues(tk);
        const keystore = await tk.keystore();
        const oldPassphrase = (await keystore.get('passphrase'))!;
        const newKey = new Secret("n€w-K3y 😀 ' ] ? ; -- שלום e\u0301");
        const result = await changeKey(tk, { newKey });
        expect(result.dryRun).to.equal(false);
        expect(result.newKey.guid).to.equal(keyGuidFor(newKey));
        expect(result.cells).to.equal(5 * 54);

        expect(await allValues(tk)).to.deep.equal(before);
        expect([...(await cellGuids(tk))]).to.deep.equal([keyGuidFor(newKey)]);
        expect((await keystore.get('passphrase'))!.reveal()).to.equal(newKey.reveal());
        expect(await keystore.get('passphrase.pending')).to.equal(undefined);
        const hierarchy = await tk.engine.keys.read(tk.engine.knex);
        expect(hierarchy.symmetricKeys.map((k) => k.name)).to.deep.equal(['cellcrypt_key_2']);
        expect((await verify(tk)).ok).to.equal(true);

        const audit = await tk.engine.knex.raw(`select * from cellcrypt.audit where operation = 'change-key'`);
        expect(audit.rows).to.have.length(1);
        expect(audit.rows[0]).to.include({
          outcome: 'succeeded',
          old_key_guid: keyGuidFor(oldPassphrase),
          new_key_guid: keyGuidFor(newKey),
        });
        expect(Number(audit.rows[0].cells)).to.equal(5 * 54);
        const auditText = JSON.stringify(audit.rows);
        for (const secret of [newKey, oldPassphrase, (await keystore.get('master-key-password'))!])
          expect(auditText).not.to.contain(secret.reveal());
      },
    );

    it(
      'a failure in the middle of the transaction (trigger ' + 'on the 500th row) leaves every cell byte-identical',
      async () => {
        await installedOrg(600);
        const cells = await allCells(tk);
        const keystore = await tk.keystore();
        const passphrase = (await keystore.get('passphrase'))!.reveal();
        await tk.engine.knex.raw(`create sequence boom_count`);
        await tk.engine.knex.raw(
          `create function boom() returns trigger language plpgsql as $$
        begin if nextval('boom_count') = 500 then raise exception 'injected failure at row 500'; ` +
            `end if; return new; end $$`,
        );
        await tk.engine.knex.raw(
          `create trigger boom before update on ${q('MailboxBase')} for each row execute function boom()`,
        );

        const error = await rejection(changeKey(tk, { generate: true }));
        expect(error.exitCode).to.equal(1);
        expect(error.message).to.contain('injected failure at row 500').and.to.contain('rolled back');
        expect(await allCells(tk)).to.deep.equal(cells);
        expect((await keystore.get('passphrase'))!.reveal()).to.equal(passphrase);
        expect(await keystore.get('passphrase.pending')).to.equal(undefined);
        expect((await tk.engine.keys.read(tk.engine.knex)).symmetricKeys.map((k) => k.name)).to.deep.equal([
          'cellcrypt_key_1',
        ]);
        const failed = await tk.engine.knex.raw(
          `select outcome, detail from cellcrypt.audit where operation = 'change-key'`,
        );
        expect(failed.rows).to.have.length(1);
        expect(failed.rows[0].outcome).to.equal('failed');
        expect((await verify(tk)).ok).to.equal(true);
      },
    );

    it(
      'batched: a crash after two batches keeps both keys ' + 'readable, refuses a new change, and --resume finishes',
      async () => {
        await installedOrg();
        const before = await allValues(tk);
        const newKey = generatePassphrase();
        const crash = (await interruptedBatchedChange(newKey)) as CellcryptError;
        expect(crash).to.be.instanceOf(CellcryptError);
        expect(crash.message).to.contain('simulated crash');
        expect(crash.hint).to.contain('--resume');

        const midway = await readStatus(tk);
        expect(midway.active).to.equal(true);
        expect(midway.keyChange).to.include({ to: keyGuidFor(newKey) });
        const guids = await cellGuids(tk);
        expect(guids.size).to.equal(2);
        expect(await allValues(tk)).to.deep.equal(before);
        expect((await verify(tk)).ok, 'verify reads cells under both keys').to.equal(true);

        expect((await rejection(changeKey(tk, { generate: true }))).code).to.equal('CellcryptKeyChangeInProgress');
        const logged: string[] = [];
        await readCurrentKey({ ...tk, reporter: { ...tk.reporter, log: (text) => logged.push(text) } });
        expect(logged.join('\n')).to.contain('still need the previous key');
        const resumed = await changeKey(tk, { resume: true, batchSize: 20 });
        expect(resumed.newKey.guid).to.equal(keyGuidFor(newKey));
        expect([...(await cellGuids(tk))]).to.deep.equal([keyGuidFor(newKey)]);
        expect(await allValues(tk)).to.deep.equal(before);
        const keystore = await tk.keystore();
        expect((await keystore.get('passphrase'))!.reveal()).to.equal(newKey.reveal());
        expect(await keystore.get('passphrase.pending')).to.equal(undefined);
        expect((await readStatus(tk)).keyChange).to.equal(undefined);
      },
    );

    it('an interrupted batched change can be finished in one transaction (--resume without --batch-size)', async () => {
      await installedOrg();
      const before = await allValues(tk);
      const newKey = generatePassphrase();
      await interruptedBatchedChange(newKey);
      expect((await cellGuids(tk)).size).to.equal(2);
      const plan = await changeKey(tk, { resume: true, dryRun: true });
      expect(
        plan.statements!.some((sql) => /create_symmetric_key/i.test(sql)),
        'the key exists: the plan does not create it',
      ).to.equal(false);
      // What is left is what the plan, the result and the audit row count (issue 16: the dry run
      // and the console counted every cell, the audit row the ones moved).
      const oldGuid = plan.oldKey.guid;
      const left = (await readStatus(tk)).columns.reduce((sum, c) => sum + (c.byKey[oldGuid] ?? 0), 0);
      const all = (await readStatus(tk)).columns.reduce((sum, c) => sum + c.cells, 0);
      expect(left).to.be.within(1, all - 1);
      expect(plan.cells).to.equal(left);
      const resumed = await changeKey(tk, { resume: true });
      expect(resumed.cells).to.equal(left);
      const audit = await tk.engine.knex.raw(
        `select cells from cellcrypt.audit where operation = 'change-key' and outcome = 'succeeded'`,
      );
      expect(audit.rows.map((row: { cells: unknown }) => Number(row.cells))).to.deep.equal([left]);
      expect(resumed.mode).to.equal('one-transaction');
      expect([...(await cellGuids(tk))]).to.deep.equal([keyGuidFor(newKey)]);
      expect(await allValues(tk)).to.deep.equal(before);
      const hierarchy = await tk.engine.keys.read(tk.engine.knex);
      expect(hierarchy.symmetricKeys.map((k) => k.name)).to.deep.equal(['cellcrypt_key_2']);
      expect((await (await tk.keystore()).get('passphrase'))!.reveal()).to.equal(newKey.reveal());
      expect((await readStatus(tk)).keyChange).to.equal(undefined);
    });

    it(
      'a failed --resume in one transaction keeps the pending key ' +
        'of the batches already on it (regression: it was deleted)',
      async () => {
        await installedOrg();
        const before = await allValues(tk);
        const newKey = generatePassphrase();
        await interruptedBatchedChange(newKey);
        await tk.engine.knex.raw(
          `create function boom() returns trigger language plpgsql ` +
            `as $$ begin raise exception 'injected failure'; end $$`,
        );
        await tk.engine.knex.raw(
          `create trigger boom before update on ${q('QueueBase')} for each row execute function boom()`,
        );
        const error = await rejection(changeKey(tk, { resume: true }));
        expect(error.message).to.contain('injected failure');
        const keystore = await tk.keystore();
        expect(
          (await keystore.get('passphrase.pending'))!.reveal(),
          'the only copy of the key the committed batches use',
        ).to.equal(newKey.reveal());
        expect((await readStatus(tk)).active).to.equal(true);
        expect(await allValues(tk)).to.deep.equal(before);
        await tk.engine.knex.raw(`drop trigger boom on ${q('QueueBase')}`);
        await changeKey(tk, { resume: true, batchSize: 20 });
        expect([...(await cellGuids(tk))]).to.deep.equal([keyGuidFor(newKey)]);
        expect(await allValues(tk)).to.deep.equal(before);
      },
    );

    it('a crash between the database commit and the key-store write is repaired by the next status', async () => {
      await installedOrg();
      const before = await allValues(tk);
      const newKey = generatePassphrase();
      const realKeystore = await tk.keystore();
      // The key store dies when the new passphrase is about to be promoted.
      const dying = Object.create(realKeystore) as typeof realKeystore;
      dying.put = async (name, value) => {
        if (name === 'passphrase') throw new Error('key store connection lost');
        return realKeystore.put(name, value);
      };
      const crashing: Toolkit = { ...tk, keystore: async () => dying };
      const error = await changeKey(crashing, { newKey }).catch((e) => e);
      expect(String(error.message)).to.contain('key store connection lost');
      expect((await realKeystore.get('passphrase'))!.reveal()).not.to.equal(newKey.reveal());

      const status = await readStatus(tk);
      expect(status.active, status.reason).to.equal(true);
      expect((await realKeystore.get('passphrase'))!.reveal()).to.equal(newKey.reveal());
      expect(await realKeystore.get('passphrase.pending')).to.equal(undefined);
      expect(await allValues(tk)).to.deep.equal(before);
    });

    it('two change-keys at once: exactly one succeeds, the other gets 0x8004852A', async () => {
      await installedOrg();
      const outcomes = await Promise.allSettled([changeKey(tk, { generate: true }), changeKey(tk, { generate: true })]);
      const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(outcomes.filter((o) => o.status === 'fulfilled')).to.have.length(1);
      expect(failures).to.have.length(1);
      expect(failures[0].reason.code).to.equal('SqlEncryptionSetEncryptionKeyIsAlreadyRunningCannotRunItInParallel');
      expect((await verify(tk)).ok).to.equal(true);
    });

    it('the quota: a fourth change within 15 minutes is refused with 0x80048529 and changes nothing', async () => {
      await installedOrg();
      for (let i = 0; i < 3; i++) await changeKey(tk, { generate: true });
      const cells = await allCells(tk);
      const error = await rejection(changeKey(tk, { generate: true }));
      expect(error.code).to.equal('SqlEncryptionChangeEncryptionKeyExceededQuotaForTheInterval');
      expect(error.hresult).to.equal('0x80048529');
      expect(error.exitCode).to.equal(2);
      expect(await allCells(tk)).to.deep.equal(cells);
      expect(await (await tk.keystore()).get('passphrase.pending')).to.equal(undefined);
      // The dry run is refused the same way (issue 16: it exited 0 with a full plan).
      const dry = await rejection(changeKey(tk, { generate: true, dryRun: true }));
      expect([dry.code, dry.exitCode]).to.deep.equal([error.code, 2]);
      // The refusal is on record (issue 16: refused changes left no audit row); the dry run is not.
      const audit = await tk.engine.knex.raw(
        `select outcome, detail, old_key_guid from cellcrypt.audit where operation = 'change-key' order by id`,
      );
      expect(audit.rows.map((row: { outcome: string }) => row.outcome)).to.deep.equal([
        'succeeded',
        'succeeded',
        'succeeded',
        'refused',
      ]);
      expect(audit.rows[3].detail).to.match(/^SqlEncryptionChangeEncryptionKeyExceededQuotaForTheInterval: /);
    });

    it('--dry-run of --generate shows no GUID: the real run generates another key (issue 16)', async () => {
      await installedOrg(10);
      const [oldGuid] = await cellGuids(tk);
      for (const batchSize of [undefined, 4]) {
        const plan = await changeKey(tk, { generate: true, dryRun: true, batchSize });
        expect(plan.newKey).to.deep.equal({ name: 'cellcrypt_key_2', guid: null });
        const text = plan.statements!.join('\n');
        const guids = text.match(/[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}/gi) ?? [];
        expect(new Set(guids.map((g) => g.toUpperCase()))).to.deep.equal(new Set([oldGuid]));
        expect(text).to.contain("name = 'cellcrypt_key_2'");
      }
      const withFile = generatePassphrase();
      expect((await changeKey(tk, { newKey: withFile, dryRun: true })).newKey.guid).to.equal(keyGuidFor(withFile));
    });

    it('--dry-run shows the plan and statements with secrets as *** and changes nothing', async () => {
      await installedOrg();
      const checksums = await tableChecksums(tk.engine.knex, [...DEMO_TABLE_NAMES]);
      const newKey = generatePassphrase();
      const plan = await changeKey(tk, { newKey, dryRun: true });
      expect(plan.dryRun).to.equal(true);
      expect(plan.cells).to.equal(5 * 54);
      expect(plan.bytes).to.be.greaterThan(plan.cells * 100);
      const text = plan.statements!.join('\n');
      expect(text).to.contain("'***'").and.to.contain('drop_symmetric_key');
      const keystore = await tk.keystore();
      for (const secret of [newKey, (await keystore.get('passphrase'))!, (await keystore.get('master-key-password'))!])
        expect(JSON.stringify(plan)).not.to.contain(secret.reveal());
      expect(await tableChecksums(tk.engine.knex, [...DEMO_TABLE_NAMES])).to.deep.equal(checksums);
      expect(await keystore.get('passphrase.pending')).to.equal(undefined);
      expect((await tk.engine.keys.read(tk.engine.knex)).symmetricKeys).to.have.length(1);
    });

    it(
      'an org installed before the current functions: refused (exit 2, ' +
        'CellcryptSchemaOutdated, nothing changed) until install brings them',
      async () => {
        await installedOrg(10);
        // What an org installed by the previous release looks like: no migration 4, no reencrypt_cell.
        await tk.engine.knex.raw(`delete from cellcrypt_migrations where name like '%refresh_engine_functions%'`);
        await tk.engine.knex.raw('drop function cellcrypt.reencrypt_cell(bytea, bytea, bytea, bytea)');
        const before = await allCells(tk);
        const refused = await rejection(changeKey(tk, { generate: true }));
        expect(refused.code).to.equal('CellcryptSchemaOutdated');
        expect(refused.exitCode).to.equal(2);
        expect(refused.message).to.contain('refresh_engine_functions');
        expect(refused.hint).to.contain('cellcrypt install');
        expect(await allCells(tk)).to.deep.equal(before);
        expect(await (await tk.keystore()).get('passphrase.pending')).to.equal(undefined);

        const values = await allValues(tk);
        await install(tk);
        const changed = await changeKey(tk, { generate: true });
        expect(changed.cells).to.equal(5 * 9);
        expect(await allValues(tk)).to.deep.equal(values);
      },
    );

    it(
      'refuses a weak key (0x80048528), the current key, and ' +
        'an inactive org (0x80048527) before changing anything',
      async () => {
        await installedOrg();
        const weak = await rejection(changeKey(tk, { newKey: new Secret('short1!') }));
        expect(weak.code).to.equal('SqlEncryptionEncryptionKeyValidationError');
        const keystore = await tk.keystore();
        const same = await rejection(changeKey(tk, { newKey: (await keystore.get('passphrase'))! }));
        expect(same.code).to.equal('SqlEncryptionEncryptionKeyValidationError');
        await keystore.remove('passphrase');
        const inactive = await rejection(changeKey(tk, { generate: true }));
        expect(inactive.code).to.equal('SqlEncryptionIsInactiveCannotChangeEncryptionKey');
        expect(inactive.hint).to.contain('activate');
        expect((await assessActivity(tk)).active).to.equal(false);
      },
    );

    if (target === 'postgres') {
      it('the single-flight lock is a session advisory lock: another session holding it blocks a change', async () => {
        await installedOrg();
        const other = new Client({
          connectionString: org.settings.database.kind === 'postgres' ? org.env.DATABASE_URL : undefined,
        });
        await other.connect();
        try {
          await other.query(`select pg_advisory_lock(${0x63636c6b}, hashtext('cellcrypt-key-operation'))`);
          const error = await rejection(changeKey(tk, { generate: true }));
          expect(error.code).to.equal('SqlEncryptionSetEncryptionKeyIsAlreadyRunningCannotRunItInParallel');
          await other.query(`select pg_advisory_unlock(${0x63636c6b}, hashtext('cellcrypt-key-operation'))`);
          await changeKey(tk, { generate: true });
        } finally {
          await other.end();
        }
      });
    }
  });
}
