import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deriveKey, encryptByKey, guidStringToBytes, keyGuidFromIdentity, type CellKey } from '../../src/cellcrypt';
import { formatKeyFile } from '../../src/core/key-file';
import { identityValueFor } from '../../src/cellcrypt/key-identity';
import { requireActive, withOpenKeys } from '../../src/core/key-access';
import { Secret } from '../../src/common/secret';
import { q } from '../support/org-data';
import { inProcessCli } from '../support/in-process-cli';
import { adminQuery } from '../support/pg-server';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';
import { seedPgliteDirectory } from '../support/pglite-template';

/**
 * Cells a SQL Server 2016 server wrote (SHA-1 key derivation) are recognised by activate. The
 * rest of the key lifecycle (save, change, lose the key store, activate; key files; awkward
 * passphrases) is in the activate scenarios, which also check that no secret leaks: the three
 * scenarios this file repeated from them were merged there.
 */
export function scenarios(target: TargetName): void {
  describe(`activate recognises SQL Server 2016 cells on ${target}`, function () {
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
        const activated = await inProcessCli('activate', '--key-file', keyFile, '--new-key-store', '--json');
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
