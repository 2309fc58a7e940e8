import { expect } from 'chai';
import { CellcryptError } from '../../../../src/common/errors';
import { mapSqlServerError } from '../../../../src/engines/mssql/errors';
import { querySecret } from '../../../../src/engines/mssql/execute';
import { lockResource, tryAppLock } from '../../../../src/engines/mssql/session-lock';
import { fakeMssqlKnex, type FakeMssql } from '../../../support/fake-tedious';
import { parseTsql } from '../../../support/tsql-grammar';

const sqlError = (number: number, message: string) => Object.assign(new Error(message), { number });

describe('mssql engine parts', () => {
  let fake: FakeMssql | undefined;
  afterEach(async () => {
    await fake?.knex.destroy();
    fake = undefined;
  });

  describe('session lock (sp_getapplock, owned by the session)', () => {
    it(
      'granted (0): held on its own connection until ' + 'released, then sp_releaseapplock on that same connection',
      async () => {
        fake = fakeMssqlKnex({
          responder: (sql) => (sql.includes('sp_getapplock') ? [{ result: 0 }] : undefined),
          pool: { max: 4 },
        });
        const release = await tryAppLock(fake.knex, 'org:change-key');
        expect(release).to.be.a('function');
        const lock = fake.calls.find((c) => c.sql?.includes('sp_getapplock'))!;
        expect(parseTsql(lock.sql!)).to.deep.equal([]);
        expect(lock.sql).to.contain("@LockOwner = 'Session'").and.to.contain('@LockTimeout = 0');
        await fake.knex.raw('SELECT 1 AS busy'); // another query must not take the lock's connection
        expect(fake.calls.find((c) => c.sql === 'SELECT 1 AS busy')!.connectionId).to.not.equal(lock.connectionId);
        await release!();
        const unlock = fake.calls.find((c) => c.sql?.includes('sp_releaseapplock'))!;
        expect(unlock.connectionId).to.equal(lock.connectionId);
        expect(parseTsql(unlock.sql!)).to.deep.equal([]);
      },
    );

    it('held by another session (-1): undefined at once, so the caller refuses with 0x8004852A', async () => {
      fake = fakeMssqlKnex({ responder: (sql) => (sql.includes('sp_getapplock') ? [{ result: -1 }] : undefined) });
      expect(await tryAppLock(fake.knex, 'org:change-key')).to.equal(undefined);
    });

    it('any other return code (-3 deadlock, -999 bad call) is an error, not a refusal or a grant', async () => {
      for (const code of [-2, -3, -999]) {
        fake = fakeMssqlKnex({ responder: (sql) => (sql.includes('sp_getapplock') ? [{ result: code }] : undefined) });
        const failure = await tryAppLock(fake.knex, 'x').then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure, String(code)).to.be.instanceOf(CellcryptError);
        expect((failure as Error).message).to.contain(String(code));
        await fake.knex.destroy();
        fake = undefined;
      }
    });

    it('resource names fit sp_getapplock (255 characters) and stay unique by their tail', () => {
      const long = lockResource(`${'x'.repeat(400)}:org-42`);
      expect(long.length).to.be.at.most(255);
      expect(long.endsWith(':org-42')).to.equal(true);
    });
  });

  describe('SQL Server errors', () => {
    it('maps the numbers cellcrypt meets to Dynamics codes with a way out', () => {
      const cases: Array<[number, string, string]> = [
        [
          15581,
          'Please create a master key in the database or open the ' +
            'master key in the session before performing this operation.',
          'SqlEncryptionCannotOpenSymmetricKeyBecauseDatabaseMasterKeyDoesNotExistOrIsNotOpened',
        ],
        [
          15313,
          'The key is not encrypted using the specified decryptor.',
          'SqlEncryptionCannotOpenSymmetricKeyBecauseDatabaseMasterKeyDoesNotExistOrIsNotOpened',
        ],
        [
          15151,
          "Cannot find the certificate 'cellcrypt_certificate', " +
            'because it does not exist or you do not have permission.',
          'SqlEncryptionCertificateDoesNotExist',
        ],
        [
          15151,
          "Cannot find the symmetric key 'cellcrypt_key_1', because it does not exist or you do not have permission.",
          'SqlEncryptionSymmetricKeyDoesNotExistOrNoPermission',
        ],
        [229, "The SELECT permission was denied on the object 'MailboxBase'.", 'CellcryptPermissionDenied'],
        [8152, 'String or binary data would be truncated.', 'CellcryptValueTooLong'],
      ];
      for (const [number, message, code] of cases) {
        const mapped = mapSqlServerError(sqlError(number, message), 'where') as CellcryptError;
        expect(mapped, `${number}`).to.be.instanceOf(CellcryptError);
        expect(mapped.code, `${number}`).to.equal(code);
        expect(mapped.message).to.contain(`SQL Server error ${number}`);
      }
      const timeout = mapSqlServerError(
        Object.assign(new Error('Timeout: Request failed to complete in 1000ms'), { code: 'ETIMEOUT' }),
        're-encrypt',
      ) as CellcryptError;
      expect(timeout.hint).to.contain('statementTimeout');
      const unknown = sqlError(50000, 'something else');
      expect(mapSqlServerError(unknown, 'where')).to.equal(unknown);
    });

    it(
      'a failing statement with an inlined secret: the secret is cut ' +
        'out of the message, and the error carries no cause that holds it',
      async () => {
        const secret = "S3cret'?;--😀";
        fake = fakeMssqlKnex({ responder: (sql) => sqlError(102, `Incorrect syntax near '${sql.slice(-20)}'.`) });
        const failure = await fake.knex
          .transaction((trx) =>
            querySecret(
              trx,
              `OPEN MASTER KEY DECRYPTION BY PASSWORD = N'${secret.replace(/'/g, "''")}'`,
              'open master key',
              [secret],
            ),
          )
          .then(
            () => undefined,
            (error: unknown) => error as Error,
          );
        expect(failure).to.be.instanceOf(Error);
        expect(failure!.message).to.contain('***');
        expect(
          JSON.stringify({ message: failure!.message, cause: String((failure as { cause?: unknown }).cause ?? '') }),
        ).not.to.contain('S3cret');
        expect(
          fake.calls.find((c) => c.kind === 'execSqlBatch'),
          'secret statements go to tedious directly',
        ).to.not.equal(undefined);
        expect(
          fake.calls.some((c) => c.kind === 'execSql' && c.sql?.includes('S3cret')),
          'never through knex',
        ).to.equal(false);
      },
    );
  });
});
