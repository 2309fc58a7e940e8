import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Secret } from '../../src/common/secret';
import { formatShare, splitKey } from '../../src/core/key-shares';
import { generatePassphrase } from '../../src/core/passphrase';
import type { TargetName } from '../support/targets';
import {
  cli,
  expectNoSecretLeaks,
  expectOk,
  expectRefused,
  fingerprint,
  installDemo,
  label,
  loseKeyStore,
  openCurrent,
  org,
  rememberKeyStoreSecrets,
  secrets,
  statusJson,
  useActivateHarness,
  writeKey,
} from './activate-harness';

/**
 * Issue 18, split knowledge: `show-key --shares K-of-N --out-dir D` and `activate --key-share F`
 * through the real CLI. The set-up, the helpers and the leak check are shared (activate-harness.ts).
 */
export function scenarios(target: TargetName): void {
  describe(`show-key --shares and activate --key-share (issue 18) on ${target}`, function () {
    useActivateHarness(target);

    /** `show-key --shares 2-of-3` into a new directory of the test org: the three files. */
    async function saveShares(name = 'shares'): Promise<string[]> {
      const dir = join(org.dir, name);
      const run = await expectOk('show-key', '--shares', '2-of-3', '--out-dir', dir, '--json');
      expect(run.json).to.include({ directory: dir, threshold: 2, shares: 3 });
      const files: string[] = run.json.files;
      expect(files).to.have.length(3);
      expect(readdirSync(dir).sort()).to.deep.equal(files.map((file) => file.slice(dir.length + 1)).sort());
      for (const file of files) expect(statSync(file).mode & 0o777, 'share files are private').to.equal(0o600);
      return files;
    }

    /** `activate --key-share F ...` after loseKeyStore (so with --new-key-store), as --json. */
    function activateArgs(files: string[]): string[] {
      return ['activate', ...files.flatMap((file) => ['--key-share', file]), '--new-key-store'];
    }

    async function orgId(): Promise<string> {
      const tk = await openCurrent();
      try {
        return (await tk.organizationId())!;
      } finally {
        await tk.close();
      }
    }

    /** Share files of `passphrase` cut for `organization` (what another key or org's show-key writes). */
    async function foreignShares(passphrase: Secret, organization: string, name: string): Promise<string[]> {
      const shares = await splitKey(passphrase, organization, { threshold: 2, total: 3 });
      return shares.map((share) => writeKey(`${name}-${share.number}.txt`, Buffer.from(formatShare(share), 'utf8')));
    }

    it('2-of-3 shares activate an org whose key store was deleted; doctor knows the key was saved', async () => {
      await installDemo();
      const unsaved = (await cli('doctor', '--json')).json.checks.find((c: any) => c.check === 'key saved');
      expect(unsaved).to.include({ outcome: 'warn' });
      expect(unsaved.hint).to.contain('cellcrypt show-key --out ~/cellcrypt-key.txt');

      const files = await saveShares();
      const text = readFileSync(files[0], 'utf8');
      expect(text.split('\n')[0]).to.match(/^cellcrypt key share \(format 1\): share \d of 3; any 2 shares/);
      expect(text).to.contain(`organization: ${await orgId()}`);
      const saved = (await cli('doctor', '--json')).json.checks.find((c: any) => c.check === 'key saved');
      expect(saved).to.include({ outcome: 'ok' });
      const status = await statusJson();
      expect(status.keySavedAt).to.be.a('string');
      expect(Date.parse(status.keySavedAt)).to.be.closeTo(Date.now(), 60_000);
      expect(status.keyAgeDays).to.equal(0);
      const cells = status.columns.reduce((sum: number, c: any) => sum + c.cells, 0);

      await loseKeyStore();
      const run = await expectOk(...activateArgs([files[2], files[0]]), '--json');
      await rememberKeyStoreSecrets();
      expect(run.json.keyShares).to.deep.equal({ given: 2, threshold: 2, shares: 3 });
      expect(run.json.keyGuid).to.equal(status.keys[0].guid);
      expect(run.json.cells, 'every cell decrypted under the rebuilt key').to.equal(cells);
      await expectOk('verify');

      // The audit row of the save names the key and how it was saved, never the key.
      const tk = await openCurrent();
      try {
        const rows = await tk.engine.knex.raw(
          `select new_key_guid, detail, outcome from cellcrypt.audit where operation = 'show-key'`,
        );
        expect(rows.rows).to.deep.equal([
          { new_key_guid: status.keys[0].guid, detail: 'shares 2-of-3', outcome: 'succeeded' },
        ]);
      } finally {
        await tk.close();
      }
      expectNoSecretLeaks();
    });

    it(
      'one share, a share of another key or org, a duplicated share and a flipped byte are each ' +
        'refused with exit 2 naming the file, and change nothing',
      async () => {
        await installDemo();
        const files = await saveShares();
        const id = await orgId();
        const otherKey = generatePassphrase();
        secrets.add(otherKey.reveal());
        const ofOtherKey = await foreignShares(otherKey, id, 'other-key');
        const status = await statusJson();
        const ofOtherOrg = await foreignShares(new Secret('not-this-org-key-1!'), randomUUID(), 'other-org');
        await loseKeyStore();
        const before = await fingerprint();

        // A flipped byte in the share's data: the checksum line no longer matches.
        const good = readFileSync(files[1], 'utf8');
        const flipped = good.replace(
          /^(data: .{10})(.)/m,
          (_, head: string, ch: string) => `${head}${ch === 'A' ? 'B' : 'A'}`,
        );
        expect(flipped).not.to.equal(good);
        const damaged = writeKey('damaged-share.txt', Buffer.from(flipped, 'utf8'));

        const refusals: Array<[string, string[], string, RegExp]> = [
          [
            'one share',
            [files[0]],
            'CellcryptKeyFileInvalid',
            /1 of the 2 key shares needed were given: 1 more needed/,
          ],
          [
            'a share of another key',
            [files[0], ofOtherKey[1]],
            'CellcryptKeyFileInvalid',
            /other-key-2\.txt is a share of key/,
          ],
          [
            'a share of another org',
            [ofOtherOrg[0], ofOtherOrg[1]],
            'CellcryptKeyFileInvalid',
            /other-org-1\.txt is a share of organization .*this database is organization/,
          ],
          [
            'a duplicated share',
            [files[0], files[0]],
            'CellcryptKeyFileInvalid',
            /are both share \d of 3: a copy counts once/,
          ],
          [
            'a flipped byte',
            [files[0], damaged],
            'CellcryptKeyFileInvalid',
            /damaged-share\.txt is damaged: its content does not match/,
          ],
          // Whole sets of another key of this org rebuild that key: activate's own proof refuses it.
          [
            'two shares of another key',
            ofOtherKey.slice(0, 2),
            'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
            /GUID/,
          ],
        ];
        for (const [name, given, code, reason] of refusals) {
          const run = await expectRefused(2, code, ...activateArgs(given));
          expect(run.json.error.message, name).to.match(reason);
        }
        // A key file and shares together: refused (which one would count?).
        const both = await cli('activate', '--key-file', files[0], '--key-share', files[1], '--json');
        expect(both.code, label(['both'])).to.equal(2);
        expect(both.json.error.message).to.match(/--key-file F or --key-share F .*not both/);

        expect(await fingerprint(), 'refused shares change nothing').to.deep.equal(before);
        expect((await statusJson()).active).to.equal(false);
        const run = await expectOk(...activateArgs(files.slice(1)), '--json');
        await rememberKeyStoreSecrets();
        expect(run.json.keyGuid).to.equal(status.keys[0].guid);
        expectNoSecretLeaks();
      },
    );

    it('show-key --shares refuses K<2, K>N, N>255, bad pairings and a git work tree (unless --force)', async () => {
      await installDemo();
      const before = await fingerprint();
      const dir = join(org.dir, 'refused');
      for (const spec of ['1-of-3', '4-of-3', '2-of-256', 'half']) {
        const run = await expectRefused(2, 'CellcryptUsage', 'show-key', '--shares', spec, '--out-dir', dir);
        expect(run.json.error.message, spec).to.contain(`--shares ${spec}`);
      }
      for (const args of [
        ['--shares', '2-of-3'],
        ['--out-dir', dir],
        ['--shares', '2-of-3', '--out-dir', dir, '--out', join(org.dir, 'k.txt')],
      ]) {
        const run = await cli('show-key', ...args, '--json');
        expect(run.code, args.join(' ')).to.equal(2);
      }
      expect(existsSync(dir), 'nothing written').to.equal(false);

      const repo = join(org.dir, 'repo');
      mkdirSync(join(repo, '.git'), { recursive: true });
      const inRepo = join(repo, 'shares');
      const run = await expectRefused(2, 'CellcryptUsage', 'show-key', '--shares', '2-of-3', '--out-dir', inRepo);
      expect(run.json.error.message).to.contain(`inside the git work tree ${repo}`);
      expect(existsSync(inRepo)).to.equal(false);
      expect(await fingerprint(), 'refused: no audit row either').to.deep.equal(before);
      await expectOk('show-key', '--shares', '2-of-3', '--out-dir', inRepo, '--force');
      expect(readdirSync(inRepo)).to.have.length(3);
      expectNoSecretLeaks();
    });
  });
}
