import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deriveKey, encryptByKey, guidStringToBytes, keyGuidFromIdentity, type CellKey } from '../../src/cellcrypt';
import { formatKeyFile } from '../../src/core/key-file';
import { identityValueFor } from '../../src/cellcrypt/key-identity';
import { requireActive, withOpenKeys } from '../../src/core/key-access';
import { Secret } from '../../src/common/secret';
import { DEMO_TABLE_NAMES, q, tableChecksums } from '../support/org-data';
import { inProcessCli } from '../support/in-process-cli';
import { adminQuery } from '../support/pg-server';
import { createTestOrg, targetNames, type TestOrg } from '../support/targets';
import { seedPgliteDirectory } from '../support/pglite-template';

/** Passphrases an administrator might type: every one satisfies the Dynamics rule. */
const AWKWARD_KEYS = [
  "quote ' bracket ] q? semi; dash-- 1",
  '😀🔑 non-BMP 𝐀𝐁 key 42!',
  'e\u0301 combining marks 7 ñ!',
  'שלום עולם right-to-left 9!',
];

/**
 * The key lifecycle as a new user meets it, through the CLI: save the key, change it, lose the
 * key store, activate with the saved key. PGlite is single-process: the test never keeps the
 * org open while a command runs.
 */
for (const target of targetNames()) {
  describe(`activate and show-key on ${target}`, function () {
    let org: TestOrg;
    const savedEnv = { ...process.env };

    beforeEach(async () => {
      org = await createTestOrg(target);
      Object.assign(process.env, org.env);
      expect((await inProcessCli('demo', 'seed', '--rows', '12')).code).to.equal(0);
      expect((await inProcessCli('install')).code).to.equal(0);
    });

    afterEach(async () => {
      for (const key of [...Object.keys(org.env), 'CELLCRYPT_CHANGE_QUOTA']) {
        if (savedEnv[key] === undefined) delete process.env[key];
        else process.env[key] = savedEnv[key];
      }
      await org.cleanup();
    });

    /** Point the org at a new, empty key store (what a restore into a new deployment looks like). */
    let lost = 0;
    async function loseKeyStore(): Promise<void> {
      if (target === 'pglite') {
        const config = `${org.dir}/lost-config-${++lost}`;
        await seedPgliteDirectory(config);
        process.env.CELLCRYPT_CONFIG_URL = `pglite:${config}`;
      } else await adminQuery(org.env.CELLCRYPT_CONFIG_URL!, 'delete from cellcrypt_keystore');
    }

    async function checksums() {
      const tk = await org.open();
      try {
        return await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES);
      } finally {
        await tk.close();
      }
    }

    it(
      'show-key, change-key, lose the key store: status names activate; the old key is ' +
        'refused (0x8004852B); the new one works; a second activate is refused (0x80048525)',
      async () => {
        const k1 = join(org.dir, 'k1.txt');
        const k2 = join(org.dir, 'k2.txt');
        expect((await inProcessCli('show-key', '--out', k1)).code).to.equal(0);
        expect((await inProcessCli('change-key', '--generate')).code).to.equal(0);
        expect((await inProcessCli('show-key', '--out', k2)).code).to.equal(0);
        expect((await inProcessCli('verify')).code).to.equal(0);

        await loseKeyStore();
        const status = await inProcessCli('status', '--json');
        expect(status.code).to.equal(3);
        expect(status.json.active).to.equal(false);
        expect(status.json.hint).to.contain('activate --key-file');

        const before = await checksums();
        const old = await inProcessCli('activate', '--key-file', k1, '--json');
        expect(old.code).to.equal(2);
        expect(old.json.error.code).to.equal('SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData');
        expect(await checksums()).to.deep.equal(before);

        const good = await inProcessCli('activate', '--key-file', k2, '--json');
        expect(good.code, good.stderr).to.equal(0);
        expect(good.json).to.include({ derivation: 'sql2017' });
        expect(good.json.keyFile).to.deep.equal({ encoding: 'utf8-bom', checksum: 'verified' });
        expect((await inProcessCli('verify')).code).to.equal(0);
        const again = await inProcessCli('activate', '--key-file', k2, '--json');
        expect(again.code).to.equal(2);
        expect(again.json.error.code).to.equal('SqlEncryptionIsActiveCannotRestoreEncryptionKey');
      },
    );

    it(
      'key files in every encoding, with and without BOM or checksum, ' +
        'are accepted; a wrong checksum is refused and changes nothing',
      async () => {
        const shown = await inProcessCli('show-key', '--json');
        const passphrase = new Secret(shown.json.key);
        const files: Record<string, Buffer> = {
          utf16le: formatKeyFile(passphrase, 'utf16le'),
          base64: formatKeyFile(passphrase, 'base64'),
          'utf8 without BOM or checksum': Buffer.from(`${passphrase.reveal()}\n`, 'utf8'),
          'utf16le with BOM, no checksum': Buffer.concat([
            Buffer.from([0xff, 0xfe]),
            Buffer.from(passphrase.reveal(), 'utf16le'),
          ]),
        };
        for (const [name, bytes] of Object.entries(files)) {
          await loseKeyStore();
          const file = join(org.dir, `key-${randomBytes(4).toString('hex')}`);
          writeFileSync(file, bytes);
          const run = await inProcessCli('activate', '--key-file', file, '--json');
          expect(run.code, `${name}: ${run.stderr}`).to.equal(0);
        }

        await loseKeyStore();
        const damaged = formatKeyFile(passphrase, 'utf8')
          .toString('utf8')
          .replace(/sha256:(.)/, (_, c: string) => `sha256:${c === '0' ? '1' : '0'}`);
        const file = join(org.dir, 'damaged.txt');
        writeFileSync(file, damaged);
        const before = await checksums();
        const run = await inProcessCli('activate', '--key-file', file, '--json');
        expect(run.code).to.equal(2);
        expect(run.json.error.code).to.equal('CellcryptKeyFileInvalid');
        expect(await checksums()).to.deep.equal(before);
      },
    );

    it(
      'awkward passphrases (quotes, ], ?, ;, --, non-BMP, combining ' +
        'marks, right-to-left) survive change-key, show-key and activate',
      async () => {
        process.env.CELLCRYPT_CHANGE_QUOTA = '100'; // four changes in a row
        for (const key of AWKWARD_KEYS) {
          const file = join(org.dir, `awkward-${randomBytes(4).toString('hex')}.txt`);
          writeFileSync(file, formatKeyFile(new Secret(key), 'utf8'));
          const changed = await inProcessCli('change-key', '--key-file', file);
          expect(changed.code, changed.stderr).to.equal(0);
          expect((await inProcessCli('show-key', '--json')).json.key).to.equal(key);
          expect((await inProcessCli('verify')).code).to.equal(0);
          await loseKeyStore();
          const activated = await inProcessCli('activate', '--key-file', file);
          expect(activated.code, activated.stderr).to.equal(0);
          expect((await inProcessCli('verify')).code).to.equal(0);
          rmSync(file);
        }
        const weak = join(org.dir, 'weak.txt');
        writeFileSync(weak, 'short1!\n');
        const refused = await inProcessCli('change-key', '--key-file', weak, '--json');
        expect(refused.code).to.equal(2);
        expect(refused.json.error.code).to.equal('SqlEncryptionEncryptionKeyValidationError');
        expect(readFileSync(weak, 'utf8')).to.equal('short1!\n');
      },
    );

    it(
      'cells written by SQL Server 2016 (SHA-1 key derivation) ' +
        'are recognised: activate reports sql2016 and verify passes',
      async () => {
        const passphrase = new Secret((await inProcessCli('show-key', '--json')).json.key);
        const keyGuid = keyGuidFromIdentity(identityValueFor(passphrase).reveal());
        const key2016: CellKey = { keyGuid, key: deriveKey(passphrase.reveal(), 'sql2016') };
        // Rewrite every cell as a SQL Server 2016 server would have written it (same GUID, other key bytes).
        const tk = await org.open();
        try {
          const { access } = await requireActive(tk);
          for (const column of tk.registry) {
            const rows = await withOpenKeys(tk, access, (trx) =>
              trx.raw(
                `select ${q(column.primaryKey)}::text as id, cellcrypt.decrypt_by_key(${q(column.column)}, ` +
                  `cellcrypt.guid_bytes(${q(column.primaryKey)})) as plain from ` +
                  `${q(column.table)} where ${q(column.column)} is not null`,
              ),
            );
            for (const row of rows.rows as Array<{ id: string; plain: Uint8Array }>) {
              const cell = encryptByKey(key2016, Buffer.from(row.plain), { authenticator: guidStringToBytes(row.id) });
              await tk.engine.knex.raw(
                `update ${q(column.table)} set ${q(column.column)} = ? where ${q(column.primaryKey)} = ?`,
                [cell, row.id],
              );
            }
          }
        } finally {
          await tk.close();
        }
        await loseKeyStore();
        const keyFile = join(org.dir, 'k2016.txt');
        writeFileSync(keyFile, formatKeyFile(passphrase, 'utf16le'));
        const activated = await inProcessCli('activate', '--key-file', keyFile, '--json');
        expect(activated.code, activated.stderr).to.equal(0);
        expect(activated.json.derivation).to.equal('sql2016');
        const verified = await inProcessCli('verify', '--json');
        expect(verified.code, verified.stdout).to.equal(0);
      },
    );

    if (target === 'postgres') {
      it(
        'without the key permissions, show-key, change-key ' + 'and activate are refused (exit 2) naming the role',
        async () => {
          const role = `cellcrypt_test_${randomBytes(4).toString('hex')}`;
          const password = randomBytes(12).toString('hex');
          const admin = process.env.TEST_PG_URL!;
          const database = new URL(org.env.DATABASE_URL!).pathname.slice(1);
          await adminQuery(admin, `create role ${role} login password '${password}'`);
          try {
            const url = new URL(org.env.DATABASE_URL!);
            url.username = role;
            url.password = password;
            const keyFile = join(org.dir, 'k.txt');
            expect((await inProcessCli('show-key', '--out', keyFile)).code).to.equal(0);
            const expectations: Array<[string[], string]> = [
              [['show-key'], 'cellcrypt_key_reader'],
              [['change-key', '--generate'], 'cellcrypt_key_changer'],
              [['activate', '--key-file', keyFile], 'cellcrypt_key_activator'],
            ];
            for (const [args, neededRole] of expectations) {
              const run = await inProcessCli('--database-url', url.toString(), ...args, '--json');
              expect(run.code, run.stderr).to.equal(2);
              expect(run.json.error.code).to.equal('CellcryptPermissionDenied');
              expect(run.stderr).to.contain(neededRole);
              expect(run.stderr).not.to.contain(password);
            }
          } finally {
            await adminQuery(admin, `revoke all on database "${database}" from ${role}`).catch(() => undefined);
            await adminQuery(admin, `drop role if exists ${role}`);
          }
        },
      );
    }
  });
}
