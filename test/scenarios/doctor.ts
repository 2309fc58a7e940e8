import { expect } from 'chai';
import { join } from 'node:path';
import { changeKey } from '../../src/core/change-key';
import { seedDemo } from '../../src/core/demo-seed';
import { doctor, type DoctorReport } from '../../src/core/doctor';
import { install } from '../../src/core/install';
import { generatePassphrase } from '../../src/core/passphrase';
import { readCurrentKey, recordKeySaved, writeKeyFile } from '../../src/core/show-key';
import { readStatus, SAVE_KEY_HINT } from '../../src/core/status';
import type { Toolkit } from '../../src/core/toolkit';
import { DEMO_TABLE_NAMES, tableChecksums } from '../support/org-data';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';
import { dieAfterBatches } from '../support/interrupted-runs';

const outcome = (report: DoctorReport, check: string) => report.checks.find((c) => c.check === check);

/** doctor reports each broken state with its fix, and changes nothing. */
export function scenarios(target: TargetName): void {
  describe(`doctor on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
      await seedDemo(tk, 12);
    });

    afterEach(async () => {
      await tk.close();
      await org.cleanup();
    });

    it('before install: fails "installed" and names install', async () => {
      const report = await doctor(tk);
      expect(report.healthy).to.equal(false);
      expect(outcome(report, 'installed')).to.include({ outcome: 'fail', hint: 'run `cellcrypt install`' });
    });

    /** What `show-key --out F` does: the file, then the audit row that records the save. */
    async function saveKey(): Promise<void> {
      const key = await readCurrentKey(tk);
      writeKeyFile(join(org.dir, `key-${Date.now()}.txt`), key, 'utf8');
      await recordKeySaved(tk, key, 'utf8');
    }

    it('a healthy org passes every check; broken states are named with their fix; nothing changes', async () => {
      await install(tk);
      // Issue 18: a key nobody saved is lost with the key store: a warning until show-key saves it.
      const unsaved = await doctor(tk);
      expect(unsaved.healthy).to.equal(true);
      expect(unsaved.checks.filter((c) => c.outcome !== 'ok')).to.deep.equal([
        {
          check: 'key saved',
          outcome: 'warn',
          detail: 'the current key was never saved (show-key --out or --shares): it is lost with the key store',
          hint: SAVE_KEY_HINT,
        },
      ]);
      expect(SAVE_KEY_HINT).to.contain('`cellcrypt show-key --out ~/cellcrypt-key.txt`');
      await saveKey();
      const healthy = await doctor(tk);
      expect(healthy.healthy).to.equal(true);
      expect(healthy.checks.filter((c) => c.outcome !== 'ok')).to.deep.equal([]);
      expect(healthy.checks.map((c) => c.check)).to.include.members([
        'server',
        'installed',
        'migrations',
        'key',
        'change quota',
        'key saved',
        'key age',
        'permission activate',
        'column MailboxBase.Password',
      ]);

      // A stale knex migration lock and an unfinished batched key change: warnings with fixes.
      await tk.engine.knex.raw('update cellcrypt_migrations_lock set is_locked = 1');
      await changeKey(tk, {
        newKey: generatePassphrase(),
        batchSize: 5,
        afterBatch: dieAfterBatches(1, 'stop'),
      }).catch(() => undefined);
      const before = await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES);
      const warned = await doctor(tk);
      expect(warned.healthy).to.equal(true);
      expect(outcome(warned, 'migration lock')).to.include({ outcome: 'warn' });
      expect(outcome(warned, 'key change')!.hint).to.contain('--resume');
      expect(await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES)).to.deep.equal(before);

      // The key store loses the encryption key: the key check fails with its Dynamics code.
      await (await tk.keystore()).remove('passphrase');
      await (await tk.keystore()).remove('passphrase.pending');
      const broken = await doctor(tk);
      expect(broken.healthy).to.equal(false);
      expect(outcome(broken, 'key')!.detail).to.match(/^SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB/);
      expect(outcome(broken, 'key')!.hint).to.contain('activate');
      // Said once (issue 16): not again per column as "all cells undecryptable, run verify".
      expect(broken.checks.filter((c) => c.outcome === 'fail').map((c) => c.check)).to.deep.equal(['key']);
      expect(broken.checks.filter((c) => c.check.startsWith('column '))).to.deep.equal([]);
      expect(outcome(broken, 'columns')).to.include({ outcome: 'warn' });
      expect(outcome(broken, 'columns')!.detail).to.match(
        new RegExp(`^${tk.registry.length} encrypted column\\(s\\), [1-9][0-9]* cell\\(s\\), .*no usable key`),
      );
      // Inactive, show-key would hand out the key store's key: no advice to save it.
      expect(outcome(broken, 'key saved')).to.equal(undefined);
    });

    it('a key older than CELLCRYPT_KEY_MAX_AGE_DAYS (install row backdated) warns; a new key does not', async () => {
      await install(tk);
      await saveKey();
      const fresh = await readStatus(tk);
      expect(fresh.keyAgeDays).to.equal(0);
      expect(outcome(await doctor(tk), 'key age')).to.include({ outcome: 'ok' });

      // The key's age comes from the audit row of the install that created it.
      await tk.engine.knex.raw(
        `update cellcrypt.audit set created_on = created_on - interval '400 days' where operation = 'install'`,
      );
      const old = await readStatus(tk);
      expect(old.keyAgeDays).to.equal(400);
      expect(old.keys[0].createdAt).to.equal(
        new Date(Date.parse(fresh.keys[0].createdAt) - 400 * 86_400_000).toISOString(),
      );
      expect(old.keySavedAt, 'saving an old key does not make it new').to.equal(fresh.keySavedAt);
      const warned = await doctor(tk);
      expect(warned.healthy).to.equal(true);
      expect(outcome(warned, 'key age')).to.include({
        outcome: 'warn',
        detail: 'the current key is 400 day(s) old; CELLCRYPT_KEY_MAX_AGE_DAYS is 365',
      });
      expect(outcome(warned, 'key age')!.hint).to.contain('cellcrypt change-key --generate');

      // A new key is young again, and unsaved until show-key saves it.
      await changeKey(tk, { newKey: generatePassphrase() });
      const changed = await doctor(tk);
      expect(outcome(changed, 'key age')).to.include({ outcome: 'ok' });
      expect(outcome(changed, 'key saved')).to.include({ outcome: 'warn' });
      expect((await readStatus(tk)).keySavedAt).to.equal(null);
    });

    it('during a batched change-key: "operation running", no key or column check faults its moving parts', async () => {
      await install(tk);
      let during: DoctorReport | undefined;
      await changeKey(tk, {
        newKey: generatePassphrase(),
        batchSize: 5,
        afterBatch: async () => {
          during ??= await doctor(tk);
        },
      });
      expect(during, 'doctor ran during the change').to.not.equal(undefined);
      const running = outcome(during!, 'operation running');
      expect(running?.outcome).to.equal('warn');
      expect(running?.detail).to.match(/^a batched key change from cellcrypt_key_1 to cellcrypt_key_2 .* is running: /);
      expect(running?.hint).to.contain('wait for it to finish');
      // Before: "a batched change has not finished, run --resume", a pending key called unused,
      // and "no sensitive columns are registered" (status counts none while a change runs).
      const faulted = during!.checks.filter((c) => c.outcome !== 'ok' && c.check !== 'operation running');
      expect(faulted, JSON.stringify(faulted)).to.deep.equal([]);
      expect(during!.healthy).to.equal(true);
      // Afterwards the full checks again.
      const after = await doctor(tk);
      expect(outcome(after, 'operation running')).to.equal(undefined);
      expect(outcome(after, 'key')?.outcome).to.equal('ok');
    });
  });
}
