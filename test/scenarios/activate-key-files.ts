import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TargetName } from '../support/targets';
import {
  activateOk,
  expectNoSecretLeaks,
  expectOk,
  expectRefused,
  fingerprint,
  installDemo,
  loseKeyStore,
  openCurrent,
  saveKey,
  statusJson,
  writeKey,
  useActivateHarness,
} from './activate-harness';

/**
 * Key files in every encoding show-key writes, hand-made ones, and damaged ones.
 * The set-up, the helpers and the leak check are shared (activate-harness.ts).
 */
export function scenarios(target: TargetName): void {
  describe(`activate and show-key: key files (issue 4) on ${target}`, function () {
    useActivateHarness(target);

    // ---- key files -------------------------------------------------------------------------

    it('show-key --encoding utf8|utf16le|base64 files each activate a lost key store', async () => {
      await installDemo();
      const expectedStart: Record<string, Buffer> = {
        utf8: Buffer.from([0xef, 0xbb, 0xbf]),
        utf16le: Buffer.from([0xff, 0xfe]),
        base64: Buffer.from('base64:', 'ascii'),
      };
      const detected: Record<string, string> = { utf8: 'utf8-bom', utf16le: 'utf16le-bom', base64: 'base64' };
      let passphrase: string | undefined;
      for (const encoding of ['utf8', 'utf16le', 'base64']) {
        const saved = await saveKey(`key-${encoding}.txt`, encoding);
        passphrase ??= saved.passphrase;
        expect(saved.passphrase, 'every encoding holds the same key').to.equal(passphrase);
        const bytes = readFileSync(saved.file);
        expect(
          bytes.subarray(0, expectedStart[encoding].length).equals(expectedStart[encoding]),
          `${encoding} file start`,
        ).to.equal(true);
        if (encoding === 'base64') expect(bytes.toString('ascii')).to.match(/^[\x20-\x7e\n]+$/); // ASCII only

        await loseKeyStore();
        const run = await activateOk(saved.file);
        expect(run.json.keyFile, encoding).to.deep.equal({ encoding: detected[encoding], checksum: 'verified' });
        await expectOk('verify');
      }

      expectNoSecretLeaks();
    });

    it(
      'damaged key files (one checksum digit flipped, saved as ANSI) ' +
        'are refused with CellcryptKeyFileInvalid and change nothing',
      async () => {
        await installDemo();
        const saved = await saveKey('key.txt');
        await loseKeyStore();
        const before = await fingerprint();

        // Flip one hex digit in the middle of the sha256: line; the key line is untouched.
        const good = readFileSync(saved.file, 'utf8');
        const flipped = good.replace(
          /(sha256:[0-9a-f]{31})([0-9a-f])/,
          (_, head: string, digit: string) => `${head}${digit === 'a' ? 'b' : 'a'}`,
        );
        expect(flipped).not.to.equal(good);
        // The same key as a Windows "ANSI" editor saves it: every character outside Latin-1 lost.
        const ansi = Buffer.from(saved.passphrase.replace(/[^\u0000-\u00ff]/gu, '?'), 'latin1');
        const damaged: Record<string, Buffer> = {
          'checksum digit flipped': Buffer.from(flipped, 'utf8'),
          'checksum digit flipped, UTF-16LE': Buffer.concat([
            Buffer.from([0xff, 0xfe]),
            Buffer.from(flipped.replace(/^\uFEFF/, ''), 'utf16le'),
          ]),
          'saved as ANSI, with its checksum line': Buffer.concat([
            ansi,
            Buffer.from(`\n${good.split('\n')[1]}\n`, 'ascii'),
          ]),
        };
        for (const [name, bytes] of Object.entries(damaged)) {
          const file = writeKey(`damaged-${randomBytes(4).toString('hex')}.txt`, bytes);
          const run = await expectRefused(2, 'CellcryptKeyFileInvalid', 'activate', '--key-file', file);
          expect(run.json.error.hint, name).to.contain('show-key --out');
        }
        expect(await fingerprint(), 'refused key files change nothing').to.deep.equal(before);
        const status = await statusJson();
        expect(status.active).to.equal(false);

        await activateOk(saved.file); // the undamaged file still works
        await expectOk('verify');
        expectNoSecretLeaks();
      },
    );
  });
}

export function handMadeScenarios(target: TargetName): void {
  describe(`activate and show-key: hand-made key files (issue 4) on ${target}`, function () {
    useActivateHarness(target);

    it('hand-made key files without BOM or checksum activate a lost key store', async () => {
      await installDemo();
      const text = (await saveKey('key.txt')).passphrase;
      const cells = (await statusJson()).columns.reduce((sum: number, c: any) => sum + c.cells, 0);
      const handMade: Record<string, [Buffer, string]> = {
        'UTF-8, no BOM, no checksum, final newline': [Buffer.from(`${text}\n`, 'utf8'), 'utf8'],
        'UTF-8, no BOM, no checksum, no newline': [Buffer.from(text, 'utf8'), 'utf8'],
        'UTF-8 with BOM and CRLF, no checksum (Notepad)': [
          Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${text}\r\n`, 'utf8')]),
          'utf8-bom',
        ],
        'UTF-16LE with BOM, no checksum': [
          Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]),
          'utf16le-bom',
        ],
        'UTF-16BE with BOM, no checksum': [
          Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]),
          'utf16be-bom',
        ],
      };
      for (const [name, [bytes, encoding]] of Object.entries(handMade)) {
        const file = writeKey(`hand-${randomBytes(4).toString('hex')}.txt`, bytes);
        await loseKeyStore();
        const run = await activateOk(file);
        expect(run.json.keyFile, name).to.deep.equal({ encoding, checksum: 'absent' });
        expect(run.json.cells, `${name}: every cell decrypted under the activated key`).to.equal(cells);
        expect(run.stderr, name).to.contain('no checksum line');
      }
      expectNoSecretLeaks();
    });

    it("activate keeps the key's created time; the install audit row names the key (issue 16)", async () => {
      await installDemo();
      const { file } = await saveKey('key.txt');
      const before = (await statusJson()).keys[0];
      const tk = await openCurrent();
      try {
        const audit = await tk.engine.knex.raw(`select new_key_guid from cellcrypt.audit where operation = 'install'`);
        expect(audit.rows.map((row: { new_key_guid: string }) => row.new_key_guid)).to.deep.equal([before.guid]);
      } finally {
        await tk.close();
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
      await loseKeyStore();
      await activateOk(file);
      const after = (await statusJson()).keys[0];
      expect(after.guid).to.equal(before.guid);
      expect(after.createdAt, 'created when installed, not when activated').to.equal(before.createdAt);
    });

    it('a key file whose key gained a trailing space is refused naming the space (issue 16)', async () => {
      await installDemo();
      const text = (await saveKey('key.txt')).passphrase;
      await loseKeyStore();
      const file = writeKey('spaced.txt', Buffer.from(`${text} \n`, 'utf8'));
      const before = await fingerprint();
      const run = await expectRefused(
        2,
        'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
        'activate',
        '--key-file',
        file,
      );
      expect(run.stderr).to.contain('note: the key ends with 1 space (U+0020)');
      expect(run.json.error.message).to.contain('(the key in the file ends with 1 space (U+0020))');
      expect(run.json.error.hint).to.match(/^if the whitespace is not part of the key, remove it/);
      expect(await fingerprint(), 'nothing changed').to.deep.equal(before);
      await activateOk(writeKey('fixed.txt', Buffer.from(`${text}\n\n`, 'utf8')));
      expectNoSecretLeaks();
    });
  });
}
