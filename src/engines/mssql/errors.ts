import { CellcryptError, type ErrorCode, type ExitCode } from '../../common/errors';
import { REFRESH_FAILED } from './dependent-modules';

/**
 * SQL Server error numbers cellcrypt can meet, turned into our codes with the way out.
 * Numbers from the SQL Server message catalog (sys.messages).
 */
interface Mapping {
  code: ErrorCode;
  exitCode: ExitCode;
  hint?: string;
  /** Cuts what must not reach a log out of the message; the original error is then not kept as cause. */
  scrub?: (message: string) => string;
}

const permissionDenied: Mapping = {
  code: 'CellcryptPermissionDenied',
  exitCode: 2,
  hint: 'run `cellcrypt doctor` for the permissions each command needs',
};

const SWAP_ROLLED_BACK = 'the swap was rolled back: the column is still plaintext and its encrypted copy is kept, so ';

// 2628 quotes the start of the value that did not fit ("Truncated value: '...'."): plaintext.
const withoutTruncatedValue = (message: string) =>
  message.replace(/Truncated value: [\s\S]*$/, 'Truncated value: (removed: it is cell data).');

const setOptions: Mapping = {
  code: 'CellcryptConfigInvalid',
  exitCode: 1,
  hint:
    'an indexed view, filtered index or index on a computed column needs ANSI_NULLS, ANSI_PADDING, ' +
    'ANSI_WARNINGS, ARITHABORT, CONCAT_NULL_YIELDS_NULL and QUOTED_IDENTIFIER ON and NUMERIC_ROUNDABORT ' +
    'OFF: run sqlcmd scripts with -I, set those options in the session, then run the command again',
};

const passwordPolicy: Mapping = {
  code: 'CellcryptConfigInvalid',
  exitCode: 1,
  hint:
    "the server's Windows password policy (or a password filter) refused the master-key password " +
    'cellcrypt generated (47 characters: upper and lower case, digits, a symbol); ask the DBA which ' +
    'rule refuses it, then run the command again',
};

const BY_NUMBER: Record<number, Mapping | ((message: string) => Mapping)> = {
  // Please create a master key in the database or open the master key in the session.
  15581: {
    code: 'SqlEncryptionCannotOpenSymmetricKeyBecauseDatabaseMasterKeyDoesNotExistOrIsNotOpened',
    exitCode: 1,
    hint: 'restored or failed over to another server: run `cellcrypt activate --key-file F` with the saved key',
  },
  // The key is not encrypted using the specified decryptor (wrong master-key password).
  15313: {
    code: 'SqlEncryptionCannotOpenSymmetricKeyBecauseDatabaseMasterKeyDoesNotExistOrIsNotOpened',
    exitCode: 1,
    hint:
      "the key store's master-key password does not open this database's " +
      'master key; after a restore run `cellcrypt activate --key-file F`',
  },
  // Cannot find the certificate / symmetric key ..., because it does not exist or you do not have permission.
  15151: (message) =>
    /certificate/i.test(message)
      ? {
          code: 'SqlEncryptionCertificateDoesNotExist',
          exitCode: 1,
          hint: 'run `cellcrypt status`; after a restore `cellcrypt activate --key-file F`',
        }
      : {
          code: 'SqlEncryptionSymmetricKeyDoesNotExistOrNoPermission',
          exitCode: 1,
          hint: 'run `cellcrypt doctor` to check the key and your permissions',
        },
  // A key with name ... or user defined unique identifier already exists.
  15282: {
    code: 'SqlEncryptionEncryptionKeyValidationError',
    exitCode: 2,
    hint: 'this key (its GUID) already exists in the database: choose another key',
  },
  // User does not have permission to perform this action / permission denied on object / database.
  15247: permissionDenied,
  229: permissionDenied,
  262: permissionDenied,
  // String or binary data would be truncated (2628 also names the table, the column and the value).
  8152: { code: 'CellcryptValueTooLong', exitCode: 1 },
  2628: { code: 'CellcryptValueTooLong', exitCode: 1, scrub: withoutTruncatedValue },
  // Lock request time out period exceeded (SET LOCK_TIMEOUT before the table lock and the swap).
  1222: {
    code: 'CellcryptKeyChangeInProgress',
    exitCode: 1,
    hint:
      'another session holds a lock on the table and nothing was changed: find it with `SELECT session_id, ' +
      'blocking_session_id, wait_type, wait_time FROM sys.dm_exec_requests WHERE blocking_session_id <> 0`, ' +
      'let it finish, then run the command again, or raise lockTimeout=<ms> in the mssql:// URL',
  },
  // The statistics/object/index '...' is dependent on column '...'; ALTER TABLE DROP COLUMN ... failed
  // because one or more objects access this column.
  5074: {
    code: 'CellcryptConversionFailed',
    exitCode: 1,
    hint: `${SWAP_ROLLED_BACK}drop or change the object named above, then run \`cellcrypt install\` again`,
  },
  4922: {
    code: 'CellcryptConversionFailed',
    exitCode: 1,
    hint: `${SWAP_ROLLED_BACK}drop or change the objects that use the column, then run \`cellcrypt install\` again`,
  },
  // Cannot alter column '...' because it is 'REPLICATED' (sp_rename of a published column).
  4928: {
    code: 'CellcryptConversionFailed',
    exitCode: 1,
    hint:
      `${SWAP_ROLLED_BACK}remove the table from its publication (sp_droparticle / sp_dropmergearticle), ` +
      'run `cellcrypt install`, then add it back and reinitialize the subscriptions',
  },
  // A view, procedure, function or trigger over the table does not compile after the swap.
  [REFRESH_FAILED]: {
    code: 'CellcryptConversionFailed',
    exitCode: 1,
    hint:
      `${SWAP_ROLLED_BACK}change the module named above not to use the column as text ` +
      '(it now holds varbinary ciphertext), then run `cellcrypt install` again',
  },
  // ... failed because the following SET options have incorrect settings: 'QUOTED_IDENTIFIER'.
  1934: setOptions,
  // The size (...) given to the column '...' exceeds the maximum allowed for any data type (8000).
  131: {
    code: 'CellcryptRegistryInvalid',
    exitCode: 1,
    hint:
      "the registry's maxLength for this column gives an encrypted cell over 8000 bytes: nvarchar(3955) " +
      'is the largest that fits; lower maxLength in CELLCRYPT_REGISTRY, then run the command again',
  },
  // Password validation failed ... because it is too short / not complex enough.
  15116: passwordPolicy,
  15118: passwordPolicy,
  1205: {
    code: 'CellcryptInternal',
    exitCode: 1,
    hint: 'chosen as a deadlock victim; nothing was changed, run the command again',
  },
};

export function sqlServerErrorNumber(error: unknown): number | undefined {
  const value = (error as { number?: unknown })?.number;
  return typeof value === 'number' ? value : undefined;
}

/**
 * The tedious request timeout (code ETIMEOUT): the statement ran longer than the engine allows.
 * A connection that timed out has the same code: that one is an unreachable server, reported
 * as such by the CLI, not a statement to give more time.
 */
function isTimeout(error: unknown): boolean {
  const { code, name, message } = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  return code === 'ETIMEOUT' && name !== 'ConnectionError' && !/^Failed to connect to /.test(String(message));
}

/**
 * A CellcryptError for a known SQL Server error, else the error unchanged. `redact` lists
 * secrets that were inlined into the statement: removed from the message in case the server
 * quoted any part of it back ("Incorrect syntax near ...").
 */
export function mapSqlServerError(error: unknown, where: string, redact: readonly string[] = []): unknown {
  if (error instanceof CellcryptError) return error;
  const raw = error instanceof Error ? error.message : String(error);
  // Each secret as written and as inlined (quotes doubled), longest first.
  const forms = [...new Set(redact.flatMap((secret) => [secret, secret.replace(/'/g, "''")]).filter(Boolean))].sort(
    (a, b) => b.length - a.length,
  );
  const message = forms.reduce((text, secret) => text.split(secret).join('***'), raw);
  if (isTimeout(error)) {
    return new CellcryptError(
      'CellcryptInternal',
      `${where}: the statement timed out (${message}); it was rolled back`,
      {
        exitCode: 1,
        hint:
          'raise statementTimeout=<ms> (statements over whole columns) or requestTimeout=<ms> ' +
          '(the others) in the mssql:// URL, or use change-key --batch-size N',
      },
    );
  }
  const number = sqlServerErrorNumber(error);
  const found = number === undefined ? undefined : BY_NUMBER[number];
  if (!found) return redact.length && message !== raw ? new Error(`${where}: ${message}`) : error;
  const mapping = typeof found === 'function' ? found(message) : found;
  const shown = mapping.scrub ? mapping.scrub(message) : message;
  return new CellcryptError(mapping.code, `${where}: SQL Server error ${number}: ${shown}`, {
    exitCode: mapping.exitCode,
    hint: mapping.hint,
    // The original message is in the cause: kept only when nothing had to be cut out of it.
    cause: redact.length || shown !== message ? undefined : error,
  });
}
