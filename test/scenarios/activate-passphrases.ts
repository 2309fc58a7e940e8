import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Secret } from '../../src/common/secret';
import { formatKeyFile } from '../../src/core/key-file';
import { keyGuidFor } from '../../src/cellcrypt/key-identity';
import type { TargetName } from '../support/targets';
import {
  AWKWARD_KEYS,
  WEAK_KEYS,
  activateOk,
  expectNoSecretLeaks,
  expectOk,
  expectRefused,
  fingerprint,
  installDemo,
  loseKeyStore,
  rememberKeyStoreSecrets,
  secrets,
  writeKey,
  useActivateHarness,
} from './activate-harness';

/**
 * Awkward passphrases survive change-key, show-key and activate exactly; weak ones are refused.
 * The set-up, the helpers and the leak check are shared (activate-harness.ts).
 */
/** The awkward keys in two halves, run by two files so the two halves can run at once. */
function awkwardKeys(half: 'first' | 'second'): void {
  it(
    `awkward passphrases, ${half} half (quotes, ], ?, ;, --, non-BMP, combining marks, ` +
      'right-to-left, length limits in UTF-16 units) survive change-key, show-key and activate exactly',
    async function () {
      // Three keys, each changed to (from the one before), shown, lost and activated in turn.
      this.timeout(300_000);
      await installDemo();
      process.env.CELLCRYPT_CHANGE_QUOTA = '100'; // one change per key, more than 3 in 15 minutes
      expect(AWKWARD_KEYS['combining marks, not NFC'].normalize('NFC')).not.to.equal(
        AWKWARD_KEYS['combining marks, not NFC'],
      );
      const entries = Object.entries(AWKWARD_KEYS);
      const keys = half === 'first' ? entries.slice(0, 3) : entries.slice(3);
      let index = half === 'first' ? 0 : 3;
      for (const [name, key] of keys) {
        secrets.add(key);
        // Alternate the two ways an administrator hands over a key: a formatted key file, plain UTF-8.
        const bytes = index++ % 2 === 0 ? formatKeyFile(new Secret(key), 'utf8') : Buffer.from(`${key}\n`, 'utf8');
        const file = writeKey(`awkward-${index}.txt`, bytes);

        const changed = await expectOk('change-key', '--key-file', file, '--json');
        expect(changed.json.newKey.guid, name).to.equal(keyGuidFor(new Secret(key)));
        expect((await expectOk('show-key')).stdout, name).to.equal(key);
        expect((await expectOk('show-key', '--json')).json.key, name).to.equal(key);
        await expectOk('verify');
        await rememberKeyStoreSecrets();

        await loseKeyStore();
        const activated = await activateOk(file);
        expect(activated.json.keyGuid, name).to.equal(keyGuidFor(new Secret(key)));
        await expectOk('verify');
        expect((await expectOk('show-key', '--json')).json.key, name).to.equal(key);
      }
      expectNoSecretLeaks();
    },
  );
}

export function scenarios(target: TargetName): void {
  describe(`activate and show-key: passphrases (issue 4) on ${target}`, function () {
    useActivateHarness(target);
    awkwardKeys('first');

    it('weak passphrases are refused by change-key (0x80048528) and the key stays as it was', async () => {
      await installDemo();
      const before = await fingerprint();
      for (const [name, key] of Object.entries(WEAK_KEYS)) {
        secrets.add(key);
        const file = writeKey(`weak-${randomBytes(4).toString('hex')}.txt`, Buffer.from(`${key}\n`, 'utf8'));
        const run = await expectRefused(
          2,
          'SqlEncryptionEncryptionKeyValidationError',
          'change-key',
          '--key-file',
          file,
        );
        expect(run.json.error.hresult, name).to.equal('0x80048528');
      }
      expect(await fingerprint(), 'refused changes change nothing').to.deep.equal(before);
      await expectOk('verify');
      expectNoSecretLeaks();
    });
  });
}

export function moreScenarios(target: TargetName): void {
  describe(`activate and show-key: more passphrases (issue 4) on ${target}`, function () {
    useActivateHarness(target);
    awkwardKeys('second');
  });
}
