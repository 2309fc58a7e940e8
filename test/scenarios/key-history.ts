import { expect } from 'chai';
import { keyGuidFor } from '../../src/cellcrypt/key-identity';
import { Secret } from '../../src/common/secret';
import type { TargetName } from '../support/targets';
import { backupOrg, cli, expectOk, installDemo, rememberKeyStoreSecrets, useActivateHarness } from './activate-harness';

/**
 * Every key generation kept (issue 18, part 1): an org restored from a backup older than two
 * key changes, with no key saved by hand, comes back with `activate` and no key file.
 */
export function scenarios(target: TargetName): void {
  describe(`key history on ${target}`, function () {
    useActivateHarness(target);

    it('install, save nothing, rotate twice, restore from before both: activate, no key file; keys', async () => {
      await installDemo();
      const restore = await backupOrg();
      await expectOk('change-key', '--generate');
      await expectOk('change-key', '--generate', '--batch-size', '7');
      await rememberKeyStoreSecrets();
      const rotated = (await expectOk('keys', '--json')).json.keys;
      expect(rotated.map((k: { generation: number }) => k.generation)).to.deep.equal([1, 2, 3]);
      expect(rotated.map((k: { retiredAt: string | null }) => k.retiredAt !== null)).to.deep.equal([true, true, false]);

      // An older generation can be exported; one the history does not have is refused.
      const older = (await expectOk('show-key', '--generation', '2', '--json')).json.key;
      expect(keyGuidFor(new Secret(older))).to.equal(rotated[1].keyGuid);
      expect((await cli('show-key', '--generation', '9', '--json')).code).to.equal(2);

      await restore();
      const status = (await cli('status', '--json')).json;
      expect(status.active, 'the restored org is under generation 1, the key store at 3').to.equal(false);
      const activated = await expectOk('activate', '--json');
      expect(activated.json.fromHistory).to.deep.equal({ generation: 1 });
      expect(activated.json.keyGuid).to.equal(rotated[0].keyGuid);
      expect((await cli('verify')).code).to.equal(0);

      const keys = (await expectOk('keys', '--json')).json.keys;
      expect(keys.map((k: { generation: number }) => k.generation)).to.deep.equal([1, 2, 3]);
      expect(keys.map((k: { current: boolean }) => k.current)).to.deep.equal([true, false, false]);
      expect(keys[0].cells).to.be.greaterThan(0);
      expect(keys[1].cells + keys[2].cells).to.equal(0);
      const text = (await expectOk('keys')).stdout;
      expect(text).to.contain(rotated[2].keyGuid).and.to.contain('* the current generation');
      for (const row of keys) expect(JSON.stringify(row)).not.to.match(/passphrase/i);

      // Pruning asks first, and never forgets the current generation or one cells still use.
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
      const asked = await cli('keys', 'prune', '--before', tomorrow, '--json');
      expect(asked.code).to.equal(2);
      expect(asked.json).to.deep.equal({ pruned: [2, 3], kept: [1], confirmed: false });
      expect((await expectOk('keys', '--json')).json.keys).to.have.length(3);
      await expectOk('keys', 'prune', '--before', tomorrow, '--yes');
      const left = (await expectOk('keys', '--json')).json.keys;
      expect(left.map((k: { generation: number }) => k.generation)).to.deep.equal([1]);
      expect((await cli('keys', 'prune', '--before', 'yesterday')).code).to.equal(2);
    });

    it('activate with no key file and no history for the cells: refused naming the GUIDs', async () => {
      await installDemo();
      const restore = await backupOrg();
      await expectOk('change-key', '--generate');
      await rememberKeyStoreSecrets();
      await expectOk('keys', 'prune', '--before', '2999-01-01', '--yes'); // generation 1 has no cells now
      await restore();
      const refused = await cli('activate', '--json');
      expect(refused.code).to.equal(2);
      expect(refused.json.error.code).to.equal('SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB');
      expect(refused.json.error.message).to.contain('key history has no single key');
      expect(refused.json.error.hint).to.contain('--key-file');
    });
  });
}
