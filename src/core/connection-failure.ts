import { CellcryptError } from '../common/errors';

/**
 * A database that cannot be reached or logged into is an operator's problem with a clear way
 * out, not an internal error with a stack trace. Recognised from the drivers' own codes:
 * Node's socket errors, tedious's ESOCKET / ELOGIN / ETIMEOUT on connect, and PostgreSQL's
 * SQLSTATEs for a failed login (28000, 28P01) or a missing database (3D000).
 */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EAI_AGAIN',
  'ESOCKET',
  'ELOGIN',
  'ETIMEDOUT',
  'ETIMEOUT',
  'EPIPE',
]);
/**
 * pg's words for a server that timed out, hung up or spoke another protocol (an HTTP port);
 * knex's pool timeout means no connection could be made at all; and TLS that the server lacks.
 */
const MESSAGES = [
  /^Failed to connect to /,
  /^Connection terminated (unexpectedly|due to connection timeout)/,
  /^timeout expired$/,
  /^Knex: Timeout acquiring a connection/,
  /^The server does not support SSL connections/,
  /^self[- ]signed certificate|^unable to verify the first certificate/,
];
const SQLSTATES: Record<string, string> = {
  '28000': 'login refused',
  '28P01': 'wrong password',
  '3D000': 'no such database',
};

export function connectionFailure(error: unknown): CellcryptError | undefined {
  if (!(error instanceof Error) || error instanceof CellcryptError) return undefined;
  const code = (error as { code?: unknown }).code;
  const known = typeof code === 'string' && (SOCKET_CODES.has(code) || code in SQLSTATES);
  if (!known && !MESSAGES.some((pattern) => pattern.test(error.message))) return undefined;
  const what = typeof code === 'string' && code in SQLSTATES ? `${SQLSTATES[code]}: ` : '';
  return new CellcryptError(
    'CellcryptDatabaseUnavailable',
    `cannot connect to the database: ${what}${error.message}; nothing was changed`,
    {
      exitCode: 1,
      hint:
        'check --database-url / DATABASE_URL (and --config-url for the key store), that the ' +
        'server is running and that this user may log in; `cellcrypt doctor` checks the rest',
    },
  );
}
