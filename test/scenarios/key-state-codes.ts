import { expect } from 'chai';
import { Secret } from '../../src/common/secret';
import { activate } from '../../src/core/activate';
import { install } from '../../src/core/install';
import { verify } from '../../src/core/verify';
import { assessActivity, requireActive } from '../../src/core/key-access';
import { generatePassphrase } from '../../src/core/passphrase';
import { provisionKeys } from '../../src/core/provision';
import { seedDemo } from '../../src/core/demo-seed';
import { readStatus } from '../../src/core/status';
import { createToolkitTables } from '../../src/core/toolkit-tables';
import type { Toolkit } from '../../src/core/toolkit';
import { DEMO_TABLE_NAMES, tableChecksums } from '../support/org-data';
import { rejection } from '../support/refusal';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';

/**
 * The Dynamics error codes of a broken key hierarchy or key store: each broken state is made
 * for real, and `status` must say inactive with that code's reason and the way out, while
 * operations refuse with the code and change nothing.
 */
export function scenarios(target: TargetName): void {
  describe(`key-state error codes on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
    });

    afterEach(async () => {
      await tk.close();
      await org.cleanup();
    });

    async function installed(): Promise<void> {
      await seedDemo(tk, 10);
      await install(tk);
    }

    /** Inactive with this code; status says so with a hint; an operation refuses; data unchanged. */
    async function expectInactive(code: string, hresult: string): Promise<void> {
      const before = await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES);
      const activity = await assessActivity(tk);
      expect(activity.active).to.equal(false);
      if (activity.active) return;
      expect(activity.code).to.equal(code);
      const status = await readStatus(tk);
      expect(status.active).to.equal(false);
      expect(status.reason).to.match(/^inactive: encrypted cells exist, no usable key/);
      expect(status.hint).to.contain('activate');
      const error = await rejection(requireActive(tk));
      expect(error.code).to.equal(code);
      expect(error.hresult).to.equal(hresult);
      expect(await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES)).to.deep.equal(before);
    }

    it('0x80048519: the database master key is gone', async () => {
      await installed();
      await tk.engine.knex.raw('delete from cellcrypt.master_key');
      await expectInactive('SqlEncryptionDatabaseMasterKeyDoesNotExist', '0x80048519');
    });

    it("0x8004851A: the key store's master-key password does not open the master key", async () => {
      await installed();
      const passphrase = (await (await tk.keystore()).get('passphrase'))!;
      await (await tk.keystore()).put('master-key-password', new Secret('not-the-master-key-password'));
      await expectInactive(
        'SqlEncryptionCannotOpenSymmetricKeyBecauseDatabaseMasterKeyDoesNotExistOrIsNotOpened',
        '0x8004851A',
      );
      // The way out that status names: activate rebuilds the hierarchy from the saved key.
      await activate(tk, passphrase);
      expect((await verify(tk)).ok).to.equal(true);
    });

    it('0x8004851D: the certificate is gone', async () => {
      await installed();
      await tk.engine.knex.raw('alter table cellcrypt.symmetric_keys drop constraint symmetric_keys_certificate_fkey');
      await tk.engine.knex.raw('delete from cellcrypt.certificates');
      await expectInactive('SqlEncryptionCertificateDoesNotExist', '0x8004851D');
    });

    it('0x80048520: the symmetric key is gone', async () => {
      await installed();
      await tk.engine.knex.raw('delete from cellcrypt.symmetric_keys');
      await expectInactive('SqlEncryptionSymmetricKeyDoesNotExist', '0x80048520');
    });

    it('0x8004852F: the symmetric key is protected by another certificate', async () => {
      await installed();
      const masterPassword = (await (await tk.keystore()).get('master-key-password'))!;
      await tk.engine.knex.transaction(async (trx) => {
        await tk.engine.keys.openMasterKey(trx, masterPassword);
        await tk.engine.keys.createCertificate(trx, 'some_other_certificate');
      });
      await tk.engine.knex.raw(`update cellcrypt.symmetric_keys set certificate = 'some_other_certificate'`);
      await expectInactive('SqlEncryptionSymmetricKeyDoesNotExistOrNoPermission', '0x8004852F');
    });

    it('0x80048524: the key store holds another encryption key (restored from an older backup)', async () => {
      await installed();
      await (await tk.keystore()).put('passphrase', generatePassphrase());
      await expectInactive('SqlEncryptionKeyCannotDecryptExistingData', '0x80048524');
    });

    it('0x8004852D and 0x8004852E: the key store lost the encryption key, or the master-key password', async () => {
      await installed();
      const keystore = await tk.keystore();
      const password = (await keystore.get('master-key-password'))!;
      await keystore.remove('master-key-password');
      await expectInactive('SqlEncryptionSymmetricKeyPasswordDoesNotExistInConfigDB', '0x8004852E');
      await keystore.put('master-key-password', password);
      await keystore.remove('passphrase');
      await expectInactive('SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB', '0x8004852D');
    });

    it('0x80048523: a key that fails the encryption/decryption test is never kept', async () => {
      await seedDemo(tk, 0);
      await tk.engine.prepare();
      await createToolkitTables(tk.engine.knex);
      // Sabotage the round trip the way a broken server function would.
      await tk.engine.knex.raw(
        `create or replace function cellcrypt.decrypt_text(blob bytea, row_id ` +
          `uuid) returns text language sql stable as $$ select 'wrong'::text $$`,
      );
      const error = await rejection(provisionKeys(tk));
      expect(error.code).to.equal('SqlEncryptionEncryptionDecryptionTestError');
      expect(error.hresult).to.equal('0x80048523');
      const hierarchy = await tk.engine.keys.read(tk.engine.knex);
      expect(hierarchy).to.deep.include({ masterKey: false, certificates: [], symmetricKeys: [] });
    });
  });
}
