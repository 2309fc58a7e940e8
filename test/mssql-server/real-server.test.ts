import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import {
  decryptByKey,
  deriveKey,
  encryptByKey,
  guidStringToBytes,
  keyGuidFromIdentity,
  nvarcharBytes,
  nvarcharText,
} from '../../src/cellcrypt';
import { loadSettings } from '../../src/config/settings';
import { changeKey } from '../../src/core/change-key';
import { install } from '../../src/core/install';
import { identityValueFor } from '../../src/cellcrypt/key-identity';
import { silentReporter } from '../../src/core/reporter';
import { seedDemo } from '../../src/core/demo-seed';
import { readStatus } from '../../src/core/status';
import { openToolkit } from '../../src/open-toolkit';
import { type Toolkit } from '../../src/core/toolkit';
import { mssqlKnexConfig } from '../../src/engines/mssql/connect';
import { parseConnectionTarget } from '../../src/config/connection-target';
import { cancelStatement, type GuardedClient } from '../../src/cli/interrupt';
import { mssqlServerUrl, onRealServer } from './server';

/**
 * The real-server suite (issue 5; see ./server.ts): install, the key bytes, cells crossing
 * between the server and the codec, and a key change, on SQL Server 2017+. NEVER EXECUTED where
 * cellcrypt is built (no SQL Server can run there); `npm run test:mssql` is the way to run it.
 */
const serverUrl = mssqlServerUrl;

onRealServer('mssql real server (TEST_MSSQL_URL)', function () {
  this.timeout(600_000);
  let admin: Knex;
  let database: string;
  let dir: string;
  let tk: Toolkit;

  before(async () => {
    const target = parseConnectionTarget(serverUrl!, process.cwd());
    if (typeof target === 'string') throw new Error(target);
    admin = knexFactory(mssqlKnexConfig(target));
    database = `cellcrypt_test_${randomBytes(6).toString('hex')}`;
    await admin.raw(`CREATE DATABASE [${database}]`);
    const url = new URL(serverUrl!);
    url.pathname = `/${database}`;
    dir = mkdtempSync(join(tmpdir(), 'cellcrypt-mssql-'));
    const settings = loadSettings({
      env: { DATABASE_URL: url.toString(), CELLCRYPT_CONFIG_URL: `pglite:${dir}/config`, CELLCRYPT_HOME: dir },
      cwd: dir,
    });
    tk = await openToolkit(settings, { reporter: silentReporter });
  });

  after(async () => {
    await tk?.close();
    await admin
      ?.raw(`ALTER DATABASE [${database}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [${database}]`)
      .catch(() => undefined);
    await admin?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'install on a seeded org: every column encrypted, ' + 'status active, no plaintext or undecryptable cell',
    async () => {
      await seedDemo(tk, 200);
      await install(tk);
      const status = await readStatus(tk);
      expect(status.active).to.equal(true);
      for (const column of status.columns) {
        expect(column.state, `${column.table}.${column.column}`).to.equal('encrypted');
        expect(column.plaintext).to.equal(0);
        expect(column.undecryptable).to.equal(0);
      }
    },
  );

  it('the key bytes read back with DECRYPTBYCERT from sys.key_encryptions equal deriveKey (sql2017)', async () => {
    const passphrase = (await (await tk.keystore()).get('passphrase'))!;
    const masterPassword = (await (await tk.keystore()).get('master-key-password'))!;
    const rows = (await tk.engine.knex.transaction(async (trx) => {
      await trx.raw(`OPEN MASTER KEY DECRYPTION BY PASSWORD = N'${masterPassword.reveal().replace(/'/g, "''")}'`);
      return trx.raw(
        `SELECT k.name, DECRYPTBYCERT(CERT_ID(N'cellcrypt_certificate'), e.crypt_property) ` +
          `AS key_bytes FROM sys.symmetric_keys k JOIN sys.key_encryptions e ON e.key_id = ` +
          `k.symmetric_key_id WHERE e.crypt_type = 'EPUC' AND k.name LIKE N'cellcrypt[_]key[_]%'`,
      );
    })) as Array<{ name: string; key_bytes: Buffer }>;
    expect(rows).to.have.length(1);
    // The blob holds the key material; the derived key must be in it (its exact framing is undocumented).
    expect(Buffer.from(rows[0].key_bytes).includes(deriveKey(passphrase.reveal(), 'sql2017'))).to.equal(true);
  });

  it(
    'blobs cross-decrypt: a server cell opens with the ' + 'TypeScript codec, a codec cell opens with DECRYPTBYKEY',
    async () => {
      const passphrase = (await (await tk.keystore()).get('passphrase'))!;
      const key = {
        keyGuid: keyGuidFromIdentity(identityValueFor(passphrase).reveal()),
        key: deriveKey(passphrase.reveal(), 'sql2017'),
      };
      const [row] = (await tk.engine.knex.raw(
        'SELECT TOP (1) CONVERT(nvarchar(36), [MailboxId]) AS id, ' +
          '[Password] AS cell FROM [MailboxBase] WHERE [Password] IS NOT NULL',
      )) as Array<{ id: string; cell: Buffer }>;
      expect(decryptByKey(Buffer.from(row.cell), key, guidStringToBytes(row.id))).to.not.equal(null);

      const text = `codec → server 😀 ${randomBytes(4).toString('hex')}`;
      const blob = encryptByKey(key, nvarcharBytes(text), { authenticator: guidStringToBytes(row.id) });
      const masterPassword = (await (await tk.keystore()).get('master-key-password'))!;
      const opened = (await tk.engine.knex.transaction(async (trx) => {
        await trx.raw(`OPEN MASTER KEY DECRYPTION BY PASSWORD = N'${masterPassword.reveal().replace(/'/g, "''")}'`);
        await trx.raw('OPEN SYMMETRIC KEY [cellcrypt_key_1] DECRYPTION BY CERTIFICATE [cellcrypt_certificate]');
        return trx.raw(
          `SELECT DECRYPTBYKEY(0x${blob.toString('hex')}, 1, CONVERT(varbinary(16), ` +
            `CONVERT(uniqueidentifier, N'${row.id}'))) AS plaintext`,
        );
      })) as Array<{ plaintext: Buffer }>;
      expect(nvarcharText(Buffer.from(opened[0].plaintext))).to.equal(text);
    },
  );

  it('change-key in one transaction moves every cell to the new key and drops the old one', async () => {
    const result = await changeKey(tk, { generate: true });
    expect(result.cells).to.be.greaterThan(0);
    const status = await readStatus(tk);
    expect(status.keys.map((k) => k.name)).to.deep.equal(['cellcrypt_key_2']);
    for (const column of status.columns) expect(Object.keys(column.byKey)).to.deep.equal([result.newKey.guid]);
  });

  it("Ctrl-C's cancel (a tedious attention) under XACT_ABORT ON rolls the transaction back", async () => {
    // The interrupt guard relies on this (src/cli/interrupt.ts, cancelStatement); documented
    // for ISSAbort::Abort, never seen here: confirm it on a real server.
    const { knex } = tk.engine;
    await knex.raw('CREATE TABLE [cellcrypt_cancel_probe] ([n] int NOT NULL)');
    const connection = await knex.client.acquireConnection();
    try {
      const started = Date.now();
      const outcome = await knex
        .transaction(
          async (trx) => {
            await trx.raw('SET XACT_ABORT ON; INSERT INTO [cellcrypt_cancel_probe] ([n]) VALUES (1)');
            setTimeout(() => cancelStatement(knex.client as unknown as GuardedClient, connection), 1000);
            await trx.raw("WAITFOR DELAY '00:00:30'");
          },
          { connection } as never,
        )
        .then(
          () => 'committed',
          (error: Error & { code?: string }) => error.code ?? error.message,
        );
      expect(outcome).to.equal('ECANCEL');
      expect(Date.now() - started, 'cancelled, not waited out').to.be.lessThan(20_000);
      const [trancount] = (await knex.raw('SELECT @@TRANCOUNT AS n').connection(connection)) as Array<{ n: number }>;
      expect(trancount.n).to.equal(0);
      const [rows] = (await knex.raw('SELECT COUNT(*) AS n FROM [cellcrypt_cancel_probe]')) as Array<{ n: number }>;
      expect(rows.n, 'the insert before the cancelled statement was rolled back').to.equal(0);
    } finally {
      await knex.client.releaseConnection(connection);
      await knex.raw('DROP TABLE [cellcrypt_cancel_probe]');
    }
  });
});
