import type { Knex } from 'knex';
import type { ConnectionTarget } from '../../config/connection-target';
import { KNEX_LOG } from '../knex-log';

/**
 * knex's `mssql` client (tedious ^19) from an `mssql://user:password@host:port/database` URL.
 * Query options: `encrypt` (default true), `trustServerCertificate` (default false),
 * `instanceName`, `requestTimeout` (ms, default 30000: catalog statements, so a blocked one is
 * noticed), `statementTimeout` (ms, default 7200000: the statements that encrypt, prove or
 * re-encrypt whole columns or read whole tables; 0 = no limit) and `lockTimeout` (ms, default
 * 30000: how long the table lock before a proof, the swap's DROP COLUMN and the rebuild after it
 * wait behind the applications' locks before giving up with error 1222; 0 = no limit).
 */
export interface MssqlTimeouts {
  readonly requestTimeoutMs: number;
  readonly statementTimeoutMs: number;
  /** Optional so a caller that predates it gets the default. */
  readonly lockTimeoutMs?: number;
}

export const DEFAULT_TIMEOUTS: Required<MssqlTimeouts> = {
  requestTimeoutMs: 30_000,
  statementTimeoutMs: 7_200_000,
  lockTimeoutMs: 30_000,
};

function milliseconds(value: string | null, fallback: number, name: string): number {
  if (value === null) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`${name} must be a whole number of milliseconds, got "${value}"`);
  return n;
}

export function mssqlTimeouts(target: ConnectionTarget): Required<MssqlTimeouts> {
  const params = new URL(target.url).searchParams;
  return {
    requestTimeoutMs: milliseconds(params.get('requestTimeout'), DEFAULT_TIMEOUTS.requestTimeoutMs, 'requestTimeout'),
    statementTimeoutMs: milliseconds(
      params.get('statementTimeout'),
      DEFAULT_TIMEOUTS.statementTimeoutMs,
      'statementTimeout',
    ),
    lockTimeoutMs: milliseconds(params.get('lockTimeout'), DEFAULT_TIMEOUTS.lockTimeoutMs, 'lockTimeout'),
  };
}

export function mssqlKnexConfig(target: ConnectionTarget): Knex.Config {
  const url = new URL(target.url);
  const params = url.searchParams;
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const connection: Record<string, unknown> = {
    server: url.hostname,
    port: url.port ? Number(url.port) : 1433,
    user: decodeURIComponent(url.username),
    database: database || undefined,
    requestTimeout: mssqlTimeouts(target).requestTimeoutMs,
    options: {
      encrypt: params.get('encrypt') !== 'false',
      trustServerCertificate: params.get('trustServerCertificate') === 'true',
      appName: 'cellcrypt',
      ...(params.get('instanceName') ? { instanceName: params.get('instanceName') } : {}),
    },
  };
  // Non-enumerable, as knex does itself: a logged config shows no password.
  Object.defineProperty(connection, 'password', { value: decodeURIComponent(url.password), enumerable: false });
  return {
    client: 'mssql',
    connection: connection as unknown as Knex.MsSqlConnectionConfig,
    pool: { min: 0, max: 4 },
    acquireConnectionTimeout: 30_000,
    log: KNEX_LOG,
  };
}
