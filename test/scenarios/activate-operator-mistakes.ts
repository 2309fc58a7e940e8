import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import type { TargetName } from '../support/targets';
import {
  cli,
  expectOk,
  expectRefused,
  fingerprint,
  installDemo,
  newServerDatabase,
  saveKey,
  statusJson,
  useActivateHarness,
} from './activate-harness';

/**
 * A DBA's wrong step changes nothing (issue 15, part 2): activate with a mistyped key-store
 * secret, with the key store of another deployment (a forgotten CELLCRYPT_CONFIG_URL), and on
 * a copy of the org that shares the live org's key store.
 */
export function scenarios(target: TargetName): void {
  describe(`activate and change-key: operator mistakes on ${target}`, function () {
    useActivateHarness(target);

    it('a mistyped CELLCRYPT_KEYSTORE_SECRET: refused before the new master key, nothing changed', async () => {
      await installDemo();
      const { file } = await saveKey('key.txt');
      const before = await fingerprint();
      const right = process.env.CELLCRYPT_KEYSTORE_SECRET;
      process.env.CELLCRYPT_KEYSTORE_SECRET = `mistyped-${randomBytes(12).toString('hex')}`;
      const status = await statusJson();
      expect(status.active).to.equal(false);
      const refused = await expectRefused(2, 'CellcryptKeyStoreLocked', 'activate', '--key-file', file);
      expect(refused.json.error.message).to.contain('nothing was changed');
      expect(refused.json.error.hint).to.contain('--new-key-store');
      if (right === undefined) delete process.env.CELLCRYPT_KEYSTORE_SECRET;
      else process.env.CELLCRYPT_KEYSTORE_SECRET = right;
      expect(await fingerprint(), 'databases and key store as they were').to.deep.equal(before);
      expect((await statusJson()).active, 'the org was never taken offline').to.equal(true);
    });

    it('the key store of another deployment (nothing for this org): refused until --new-key-store', async () => {
      await installDemo();
      const { file } = await saveKey('key.txt');
      const before = await fingerprint();
      const stray =
        target === 'pglite' ? `pglite:${join(process.env.CELLCRYPT_HOME!, 'stray')}` : await newServerDatabase('stray');
      const status = await cli('--config-url', stray, 'status', '--json');
      // Named, whether it exists or not (a read-only status does not create it).
      expect(status.json.reason).to.contain(stray.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@'));
      expect(status.json.hint).to.contain('CELLCRYPT_CONFIG_URL');
      const refused = await expectRefused(
        2,
        'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB',
        '--config-url',
        stray,
        'activate',
        '--key-file',
        file,
      );
      expect(refused.json.error.message).to.match(/has nothing for organization .*, whose cells exist/);
      expect(refused.json.error.hint).to.contain('--new-key-store');
      expect(await fingerprint()).to.deep.equal(before);
      expect((await statusJson()).active).to.equal(true);
    });

    it("a copy of the org elsewhere neither changes nor takes the live org's keys; --copy: its own", async () => {
      await installDemo();
      const { file } = await saveKey('key.txt');
      const live = process.env.DATABASE_URL!;
      let copy: string;
      if (target === 'pglite') {
        const dir = live.replace(/^pglite:/, '');
        const copyDir = `${dir}-copy`;
        cpSync(dir, copyDir, { recursive: true });
        copy = `pglite:${copyDir}`;
      } else {
        copy = await newServerDatabase('copy', decodeURIComponent(new URL(live).pathname.slice(1)));
      }
      const liveBefore = await fingerprint();
      process.env.DATABASE_URL = copy;
      await expectRefused(2, 'CellcryptOrganizationCopy', 'change-key', '--generate');
      const refused = await expectRefused(
        2,
        'CellcryptOrganizationCopy',
        'activate',
        '--key-file',
        file,
        '--new-key-store',
      );
      expect(refused.json.error.hint).to.contain('--moved').and.to.contain('--copy');
      process.env.DATABASE_URL = live;
      expect(await fingerprint(), 'the live org and its key store untouched').to.deep.equal(liveBefore);

      process.env.DATABASE_URL = copy;
      const own = await expectOk('activate', '--key-file', file, '--copy', '--json');
      expect(own.json.cells).to.be.greaterThan(0);
      await expectOk('change-key', '--generate');
      expect((await statusJson()).active).to.equal(true);
      process.env.DATABASE_URL = live;
      expect(await fingerprint(), 'the copy has keys of its own now').to.deep.equal(liveBefore);
      await expectOk('verify');
    });
  });
}
