import { expect } from 'chai';
import { CellcryptError, type ErrorCode } from '../../../../src/common/errors';
import { REFRESH_FAILED } from '../../../../src/engines/mssql/dependent-modules';
import { mapSqlServerError } from '../../../../src/engines/mssql/errors';

/**
 * Issue 14 (review CO3): the SQL Server errors the swap, the lock and the key hierarchy can
 * meet, each turned into a clear code, exit code and the way out; 2628's quoted value (a
 * plaintext fragment) never reaches the message or a cause a logger could print.
 */
const sqlError = (number: number, message: string) => Object.assign(new Error(message), { number });

const map = (number: number, message: string, where = 'swap EmailServerProfileBase.IncomingPassword') =>
  mapSqlServerError(sqlError(number, message), where) as CellcryptError;

const CASES: Array<[number, string, ErrorCode, 1 | 2, RegExp]> = [
  [
    5074,
    "The statistics '_dta_stat_1' is dependent on column 'IncomingPassword'.",
    'CellcryptConversionFailed',
    1,
    /rolled back.*still plaintext.*drop or change the object named above.*cellcrypt install/,
  ],
  [
    4922,
    'ALTER TABLE DROP COLUMN IncomingPassword failed because one or more objects access this column.',
    'CellcryptConversionFailed',
    1,
    /rolled back.*drop or change the objects that use the column.*cellcrypt install/,
  ],
  [
    4928,
    "Cannot alter column 'IncomingPassword__cellcrypt' because it is 'REPLICATED'.",
    'CellcryptConversionFailed',
    1,
    /sp_droparticle.*reinitialize the subscriptions/,
  ],
  [
    REFRESH_FAILED,
    'cannot refresh [dbo].[EmailServerProfile] over the encrypted column (error 207): Invalid column name.',
    'CellcryptConversionFailed',
    1,
    /rolled back.*change the module named above/,
  ],
  [
    1934,
    "UPDATE failed because the following SET options have incorrect settings: 'QUOTED_IDENTIFIER'.",
    'CellcryptConfigInvalid',
    1,
    /QUOTED_IDENTIFIER ON.*sqlcmd scripts with -I/,
  ],
  [
    131,
    "The size (9000) given to the column 'IncomingPassword__cellcrypt' exceeds the maximum allowed " +
      'for any data type (8000).',
    'CellcryptRegistryInvalid',
    1,
    /nvarchar\(3955\) is the largest.*CELLCRYPT_REGISTRY/,
  ],
  [
    15118,
    'Password validation failed. The password does not meet the operating system policy requirements ' +
      'because it is not complex enough.',
    'CellcryptConfigInvalid',
    1,
    /password policy.*master-key password/,
  ],
  [
    15116,
    'Password validation failed. The password does not meet policy requirements because it is too short.',
    'CellcryptConfigInvalid',
    1,
    /password policy/,
  ],
  [
    1222,
    'Lock request time out period exceeded.',
    'CellcryptKeyChangeInProgress',
    1,
    /sys\.dm_exec_requests.*blocking_session_id.*run the command again.*lockTimeout=<ms>/,
  ],
];

describe('mssql: SQL Server errors mapped to our codes (CO3)', () => {
  for (const [number, message, code, exitCode, hint] of CASES) {
    it(`${number} → ${code}, exit ${exitCode}, with the way out`, () => {
      const mapped = map(number, message);
      expect(mapped).to.be.instanceOf(CellcryptError);
      expect(mapped.code).to.equal(code);
      expect(mapped.exitCode).to.equal(exitCode);
      expect(mapped.hint).to.match(hint);
      expect(mapped.message).to.equal(
        `swap EmailServerProfileBase.IncomingPassword: SQL Server error ${number}: ${message}`,
      );
      expect((mapped as { cause?: unknown }).cause, 'the original is kept when nothing was cut').to.be.instanceOf(
        Error,
      );
    });
  }

  it(
    '2628: the table and column are kept, the truncated value is cut out, ' + 'and the error keeps no cause holding it',
    () => {
      const value = "p@ss'word 😀 fragment";
      const raw =
        "String or binary data would be truncated in table 'OrgDb.dbo.EmailServerProfileBase', column " +
        `'IncomingPassword__cellcrypt'. Truncated value: '${value}'.`;
      const mapped = map(2628, raw, 'encrypt EmailServerProfileBase.IncomingPassword');
      expect(mapped.code).to.equal('CellcryptValueTooLong');
      expect(mapped.exitCode).to.equal(1);
      expect(mapped.message).to.contain(
        "table 'OrgDb.dbo.EmailServerProfileBase', column 'IncomingPassword__cellcrypt'",
      );
      expect(mapped.message).to.contain('Truncated value: (removed');
      for (const fragment of [value, 'p@ss', 'fragment'])
        expect(JSON.stringify({ ...mapped.toJSON(), stack: mapped.stack }), fragment).not.to.contain(fragment);
      expect((mapped as { cause?: unknown }).cause).to.equal(undefined);
    },
  );

  it('2628 without a quoted value (older builds), and 8152: unchanged, still CellcryptValueTooLong', () => {
    const plain = 'String or binary data would be truncated.';
    expect(map(8152, plain).message).to.contain(plain);
    expect(map(8152, plain).code).to.equal('CellcryptValueTooLong');
    expect(map(2628, plain).message).to.contain(plain);
  });
});
