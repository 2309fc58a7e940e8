import { expect } from 'chai';
import knex from 'knex';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Secret } from '../../src/common/secret';
import { parseKeyFile } from '../../src/core/key-file';
import { keyGuidFor } from '../../src/cellcrypt/key-identity';
import { checkPostgresPermission } from '../../src/engines/postgres/permissions';
import { adminQuery, pgServerUrl } from '../support/pg-server';
import type { TargetName } from '../support/targets';
import {
  DAMAGED_ATTEMPTS,
  DAMAGED_ROWS,
  activateOk,
  cli,
  expectNoSecretLeaks,
  expectOk,
  expectRefused,
  fingerprint,
  installDemo,
  loseKeyStore,
  openCurrent,
  org,
  rememberKeyStoreSecrets,
  saveKey,
  secrets,
  statusJson,
  useActivateHarness,
  restoreFromBeforeKeyChange,
} from './activate-harness';

/**
 * activate and show-key through the real CLI: a new user's key lifecycle and restores from backups
 * older than the key store, and (on a PostgreSQL server) the three key permissions.
 * The set-up, the helpers and the leak check are shared (activate-harness.ts).
 */
export function scenarios(target: TargetName): void {
  describe(`activate and show-key: restores (issue 4) on ${target}`, function () {
    useActivateHarness(target);

    // ---- the new user's flow, and restores ----------------------------------------------

    it(
      'show-key, change-key, show-key; key store lost: status names activate, ' +
        'the old key is refused (0x8004852B) changing nothing, the new key activates ' +
        '(sql2017), verify passes, a second activate is refused (0x80048525)',
      async () => {
        await installDemo();
        const k1 = await saveKey('k1.txt');
        const guid1 = (await statusJson()).keys[0].guid;
        await expectOk('change-key', '--generate');
        await rememberKeyStoreSecrets();
        const k2 = await saveKey('k2.txt');
        expect(k2.passphrase).not.to.equal(k1.passphrase);
        await expectOk('verify');
        const active = await statusJson();
        expect(active.keys.map((k: any) => k.guid)).to.deep.equal([keyGuidFor(new Secret(k2.passphrase))]);
        expect(active.keys[0].guid).not.to.equal(guid1);
        const cells = active.columns.reduce((sum: number, c: any) => sum + c.cells, 0);
        expect(cells).to.be.greaterThan(0);

        await loseKeyStore();
        const lost = await statusJson();
        expect(lost.reason).to.match(/^inactive: encrypted cells exist, no usable key/);
        expect(lost.hint).to.contain('cellcrypt activate --key-file');
        // Nothing to show: the key store is empty (and show-key must not invent a key).
        await expectRefused(2, 'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB', 'show-key');

        const before = await fingerprint();
        const old = await expectRefused(
          2,
          'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
          'activate',
          '--key-file',
          k1.file,
        );
        expect(old.json.error.hresult).to.equal('0x8004852B');
        expect(old.json.error.message).to.contain(active.keys[0].guid);
        expect(await fingerprint(), 'a refused activate changes nothing').to.deep.equal(before);
        expect((await cli('status', '--json')).json.active).to.equal(false);

        const good = await activateOk(k2.file);
        expect(good.json).to.include({ derivation: 'sql2017', keyGuid: active.keys[0].guid, cells });
        expect(good.json.keyFile).to.deep.equal({ encoding: 'utf8-bom', checksum: 'verified' });
        await expectOk('verify');
        const after = await statusJson();
        expect(after.active).to.equal(true);
        expect(after.keys.map((k: any) => k.guid)).to.deep.equal([active.keys[0].guid]);
        expect((await expectOk('show-key', '--json')).json.key).to.equal(k2.passphrase);

        for (const file of [k2.file, k1.file]) {
          const again = await expectRefused(
            2,
            'SqlEncryptionIsActiveCannotRestoreEncryptionKey',
            'activate',
            '--key-file',
            file,
          );
          expect(again.json.error.hresult).to.equal('0x80048525');
          expect(again.json.error.hint).to.contain('change-key');
        }
        expectNoSecretLeaks();
      },
    );

    it(
      'org restored from a backup older than the last key change: the key ' +
        "store's newer key is refused, the key saved before the change activates",
      async () => {
        const { k1, k2: newer } = await restoreFromBeforeKeyChange({ saveNewer: true });
        const k2 = newer!; // saved: saveNewer

        const status = await cli('status', '--json');
        expect(status.code, 'cells not checked: exit 4').to.equal(4);
        expect(status.json.active).to.equal(false);
        expect(status.json.hint).to.contain('activate');

        const before = await fingerprint();
        await expectRefused(
          2,
          'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
          'activate',
          '--key-file',
          k2.file,
        );
        expect(await fingerprint()).to.deep.equal(before);

        const good = await activateOk(k1.file);
        expect(good.json.keyGuid).to.equal(keyGuidFor(new Secret(k1.passphrase)));
        await expectOk('verify');
        expect((await expectOk('show-key', '--json')).json.key).to.equal(k1.passphrase);
        expectNoSecretLeaks();
      },
    );

    it(
      'show-key on an org whose key store holds another key (org restored from before ' +
        "a key change) does not hand that key out as the org's key without saying so",
      async () => {
        const { k1 } = await restoreFromBeforeKeyChange();
        expect((await statusJson()).active).to.equal(false);

        // The key store holds the newer key, which opens none of these cells. Saving it silently
        // ("keep it somewhere safe") leaves the administrator with a copy that cannot restore
        // this org. Either refuse like status does, or warn as show-key does during a batched change.
        const file = join(org.dir, 'shown.txt');
        const run = await cli('show-key', '--out', file, '--json');
        if (run.code === 0) {
          expect(parseKeyFile(readFileSync(file)).passphrase.reveal()).not.to.equal(k1.passphrase);
          expect(run.stderr, 'show-key exit 0 with a key that does not open the data: it must say so').to.match(
            /warning/i,
          );
        } else {
          expect(run.code).to.equal(2);
          expect(run.json.error.code).to.equal('SqlEncryptionKeyCannotDecryptExistingData');
        }
        expectNoSecretLeaks();
      },
    );

    // Found while writing this suite, not covered by a test yet because the way out is a design
    // decision: an org backed up during an unfinished batched change (`change-key --batch-size N`,
    // cells under two key GUIDs) and restored without its key store cannot be activated at all:
    // `activate` takes one key file and refuses any key when the cells carry a second GUID
    // (0x8004852B "this key has GUID A, the organization's cells are under A, B"), for the old key
    // and for the new one alike.
    it(
      'an org restored from a backup taken during an unfinished ' +
        'batched key change can be activated with its two saved keys',
    );

    // ---- permissions (PostgreSQL server only) -----------------------------------------

    if (target === 'postgres') {
      it(
        'a user who is neither superuser, database owner nor member of cellcrypt_key_*: show-key, change-key ' +
          'and activate exit 2 (CellcryptPermissionDenied) naming the role; the database owner passes the checks',
        async () => {
          await installDemo();
          const admin = pgServerUrl()!;
          const orgUrl = new URL(process.env.DATABASE_URL!);
          const database = decodeURIComponent(orgUrl.pathname.slice(1));
          const role = `cellcrypt_test_user_${randomBytes(5).toString('hex')}`;
          const password = `pw-${randomBytes(12).toString('hex')}`;
          secrets.add(password);
          const adminUser = decodeURIComponent(new URL(admin).username) || 'postgres';
          await adminQuery(
            admin,
            `create role "${role}" login nosuperuser nocreatedb nocreaterole password '${password}'`,
          );
          try {
            await adminQuery(admin, `grant connect on database "${database}" to "${role}"`);
            const url = new URL(orgUrl);
            url.username = role;
            url.password = password;
            const asRole = url.toString();

            const keyFile = (await saveKey('k.txt')).file;
            const before = await fingerprint();
            const expectations: Array<[string[], string]> = [
              [['show-key'], 'cellcrypt_key_reader'],
              [['show-key', '--out', join(org.dir, 'stolen.txt')], 'cellcrypt_key_reader'],
              [['change-key', '--generate'], 'cellcrypt_key_changer'],
              [['change-key', '--key-file', keyFile], 'cellcrypt_key_changer'],
              [['activate', '--key-file', keyFile], 'cellcrypt_key_activator'],
            ];
            for (const [args, neededRole] of expectations) {
              const run = await expectRefused(2, 'CellcryptPermissionDenied', '--database-url', asRole, ...args);
              const { message, hint } = run.json.error;
              expect(message, args.join(' ')).to.contain(`"${role}"`);
              expect(`${message} ${hint}`, args.join(' ')).to.contain(neededRole);
              expect(run.stderr, args.join(' ')).to.contain(neededRole);
            }
            expect(() => statSync(join(org.dir, 'stolen.txt')), 'no key file written').to.throw();
            expect(await fingerprint(), 'refused commands change nothing').to.deep.equal(before);

            // The database owner may do everything even without the roles (checked as that user).
            await adminQuery(admin, `alter database "${database}" owner to "${role}"`);
            const db = knex({ client: 'pg', connection: asRole, pool: { min: 0, max: 1 } });
            try {
              for (const permission of ['read-key', 'change-key', 'activate'] as const) {
                expect(await checkPostgresPermission(db, permission), permission).to.include({
                  granted: true,
                  user: role,
                });
              }
            } finally {
              await db.destroy();
            }
          } finally {
            await adminQuery(admin, `alter database "${database}" owner to "${adminUser}"`).catch(() => undefined);
            await adminQuery(admin, `drop owned by "${role}"`);
            await adminQuery(admin, `drop role "${role}"`);
          }
          expectNoSecretLeaks();
        },
      );
    }
  });
}

/** The restores whose refusal or crash must leave the key store as it was (a second file, to run at once). */
export function moreScenarios(target: TargetName): void {
  describe(`activate and show-key: restores, refusals and crashes (issue 4) on ${target}`, function () {
    useActivateHarness(target);

    it(
      'a refused activate leaves the key store alone also when the refusal comes ' +
        'from the full check inside the transaction (one damaged cell the sample missed)',
      async () => {
        // Enough cells that the random sample of ACTIVATE_SAMPLE per column usually misses the one
        // damaged cell: the key then passes the sample and is refused by the in-transaction census.
        // The key store holds k2, the key of the newer data; the org is as it was before: cells under k1.
        const { k1 } = await restoreFromBeforeKeyChange({ rows: DAMAGED_ROWS, saveNewer: true });

        // One cell copied onto another row: right key GUID, wrong authenticator, so it never decrypts.
        const tk = await openCurrent();
        try {
          await tk.engine.knex.raw(
            `update "MailboxBase" set "Password" = ` +
              `(select "Password" from "MailboxBase" where "Password" is not null order by "MailboxId" limit 1)
           where "MailboxId" = ` +
              `(select "MailboxId" from "MailboxBase" where "Password" is not null order by "MailboxId" desc limit 1)`,
          );
        } finally {
          await tk.close();
        }

        const before = await fingerprint();
        // The sample is random: try until it has missed the damaged cell several times over.
        for (let attempt = 1; attempt <= DAMAGED_ATTEMPTS; attempt++) {
          const run = await expectRefused(
            2,
            'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
            'activate',
            '--key-file',
            k1.file,
          );
          expect(run.json.error.message).to.contain('nothing was changed');
          // "Nothing was changed" includes the key store: it may hold the only copy of another key.
          expect(await fingerprint(), `attempt ${attempt}: refused, yet something changed`).to.deep.equal(before);
        }
        expectNoSecretLeaks();
      },
    );

    it(
      'activate that dies after its database commit but before the key store ' +
        'write: status says inactive, the same key file activates again, verify passes',
      async () => {
        const { k1 } = await restoreFromBeforeKeyChange(); // cells under k1, key store holds the newer key

        // The key store as it was before activate: putting it back after the commit is the state
        // a process killed between the two writes leaves behind.
        const keyStoreBefore = await readKeyStore();
        await activateOk(k1.file);
        await writeKeyStore(keyStoreBefore);
        const status = await statusJson();
        expect(status.active, 'key store without the activated key').to.equal(false);
        expect(status.hint).to.contain('activate');

        await activateOk(k1.file);
        expect((await statusJson()).active).to.equal(true);
        await expectOk('verify');
        expect((await expectOk('show-key', '--json')).json.key).to.equal(k1.passphrase);
        expectNoSecretLeaks();
      },
    );

    type KeyStoreNames = 'passphrase' | 'passphrase.pending' | 'master-key-password';
    const KEY_STORE_NAMES: KeyStoreNames[] = ['passphrase', 'passphrase.pending', 'master-key-password'];

    async function readKeyStore(): Promise<Map<KeyStoreNames, Secret | undefined>> {
      const tk = await openCurrent();
      try {
        const keystore = await tk.keystore();
        const out = new Map<KeyStoreNames, Secret | undefined>();
        for (const name of KEY_STORE_NAMES) out.set(name, await keystore.get(name));
        return out;
      } finally {
        await tk.close();
      }
    }

    async function writeKeyStore(values: Map<KeyStoreNames, Secret | undefined>): Promise<void> {
      const tk = await openCurrent();
      try {
        const keystore = await tk.keystore();
        for (const [name, value] of values) {
          if (value) await keystore.put(name, value);
          else await keystore.remove(name);
        }
      } finally {
        await tk.close();
      }
    }
  });
}
