import { CellcryptError, type ErrorCode } from '../../common/errors';

/**
 * SQLSTATEs raised by our PL/pgSQL functions (sql/20-key-hierarchy.sql) are named after the
 * Dynamics codes they stand for: CC519 = 0x80048519, and so on.
 */
const BY_SQLSTATE: Record<string, ErrorCode> = {
  CC519: 'SqlEncryptionDatabaseMasterKeyDoesNotExist',
  CC51A: 'SqlEncryptionCannotOpenSymmetricKeyBecauseDatabaseMasterKeyDoesNotExistOrIsNotOpened',
  CC51D: 'SqlEncryptionCertificateDoesNotExist',
  CC520: 'SqlEncryptionSymmetricKeyDoesNotExist',
  CC52F: 'SqlEncryptionSymmetricKeyDoesNotExistOrNoPermission',
};

export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The server's own message without knex's "<sql> - " prefix (the SQL carries placeholders, never values). */
export function serverMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cut = message.lastIndexOf(' - ');
  return cut >= 0 ? message.slice(cut + 3) : message;
}

/** Turns a key-hierarchy error into a CellcryptError with its Dynamics code; anything else is rethrown as is. */
export function mapKeyError(error: unknown, where: string): never {
  const state = sqlState(error);
  const code = state ? BY_SQLSTATE[state] : undefined;
  if (code) throw new CellcryptError(code, `${where}: ${serverMessage(error)}`, { exitCode: 1, cause: error });
  throw error;
}
