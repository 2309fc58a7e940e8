import { CellcryptError, type ErrorCode, type ExitCode } from '../../common/errors';

/**
 * SQL Server error numbers cellcrypt can meet, turned into our codes with the way out.
 * Numbers from the SQL Server message catalog (sys.messages).
 */
interface Mapping {
  code: ErrorCode;
  exitCode: ExitCode;
  hint?: string;
}

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
  15247: {
    code: 'CellcryptPermissionDenied',
    exitCode: 2,
    hint: 'run `cellcrypt doctor` for the permissions each command needs',
  },
  229: {
    code: 'CellcryptPermissionDenied',
    exitCode: 2,
    hint: 'run `cellcrypt doctor` for the permissions each command needs',
  },
  262: {
    code: 'CellcryptPermissionDenied',
    exitCode: 2,
    hint: 'run `cellcrypt doctor` for the permissions each command needs',
  },
  // String or binary data would be truncated.
  8152: { code: 'CellcryptValueTooLong', exitCode: 1 },
  2628: { code: 'CellcryptValueTooLong', exitCode: 1 },
  // Lock request time out period exceeded; deadlock victim.
  1222: {
    code: 'CellcryptKeyChangeInProgress',
    exitCode: 1,
    hint: 'another session holds a lock on the table; retry when it has finished',
  },
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
  return new CellcryptError(mapping.code, `${where}: SQL Server error ${number}: ${message}`, {
    exitCode: mapping.exitCode,
    hint: mapping.hint,
    cause: redact.length ? undefined : error,
  });
}
