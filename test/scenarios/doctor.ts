import { expect } from 'chai';
import { changeKey } from '../../src/core/change-key';
import { seedDemo } from '../../src/core/demo-seed';
import { doctor, type DoctorReport } from '../../src/core/doctor';
import { install } from '../../src/core/install';
import { generatePassphrase } from '../../src/core/passphrase';
import type { Toolkit } from '../../src/core/toolkit';
import { DEMO_TABLE_NAMES, tableChecksums } from '../support/org-data';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';

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

    it('a healthy org passes every check; broken states are named with their fix; nothing changes', async () => {
      await install(tk);
      const healthy = await doctor(tk);
      expect(healthy.healthy).to.equal(true);
      expect(healthy.checks.filter((c) => c.outcome !== 'ok')).to.deep.equal([]);
      expect(healthy.checks.map((c) => c.check)).to.include.members([
        'server',
        'installed',
        'migrations',
        'key',
        'change quota',
        'permission activate',
        'column MailboxBase.Password',
      ]);

      // A stale knex migration lock and an unfinished batched key change: warnings with fixes.
      await tk.engine.knex.raw('update cellcrypt_migrations_lock set is_locked = 1');
      let batches = 0;
      await changeKey(tk, {
        newKey: generatePassphrase(),
        batchSize: 5,
        afterBatch: () => {
          if (++batches === 1) throw new Error('stop');
        },
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
    });
  });
}
