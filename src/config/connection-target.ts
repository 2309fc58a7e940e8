import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * Where a database is: the parsed form of `--database-url` / `DATABASE_URL` / `--config-url`.
 * `url` can hold a password (`postgres://user:pw@host/db`), so it is non-enumerable and the
 * printable form is `display`, with the password replaced by `***`.
 */
export type EngineKind = 'pglite' | 'postgres' | 'mssql';

export interface ConnectionTarget {
  readonly kind: EngineKind;
  /** Data directory (pglite) or the full URL (postgres, mssql). Non-enumerable. */
  readonly url: string;
  /** Safe to print: password masked. */
  readonly display: string;
  /** Absolute data directory for pglite, `memory://` for an in-memory one. */
  readonly path?: string;
  /**
   * Which database this is, whoever connects: `pglite:PATH`, or `scheme://host:port/database`
   * without user, password or options (the key store records it to tell a copy from the org).
   */
  readonly location: string;
}

/** An embedded database directory that holds no cluster yet (opening it would create one). */
export function isMissingEmbedded(target: ConnectionTarget): boolean {
  return target.kind === 'pglite' && target.path !== 'memory://' && !existsSync(join(target.path!, 'PG_VERSION'));
}

export function maskUrlPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    // pg also reads a password from the query string (`?password=…`).
    for (const key of [...parsed.searchParams.keys()])
      if (key.toLowerCase() === 'password') parsed.searchParams.set(key, '***');
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

/** Parse a connection URL; returns an error sentence instead of throwing (settings collect all problems). */
export function parseConnectionTarget(raw: string, baseDir: string): ConnectionTarget | string {
  const value = raw.trim();
  if (value.startsWith('pglite:')) {
    const location = value.slice('pglite:'.length);
    if (!location)
      return 'pglite: needs a data directory, e.g. pglite:.cellcrypt/org (or pglite:memory:// for a throw-away one)';
    const path = location === 'memory://' ? location : isAbsolute(location) ? location : resolve(baseDir, location);
    return target('pglite', path, `pglite:${path}`, `pglite:${path}`, path);
  }
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return `"${maskUrlPassword(value)}" is not a URL; expected mssql://, postgres:// or pglite:PATH`;
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (!parsed.hostname) return `"${maskUrlPassword(value)}" names no host`;
    return target('postgres', value, maskUrlPassword(value), serverLocation('postgres', parsed, 5432));
  }
  if (scheme === 'mssql' || scheme === 'sqlserver') {
    if (!parsed.hostname) return `"${maskUrlPassword(value)}" names no host`;
    return target('mssql', value, maskUrlPassword(value), serverLocation('mssql', parsed, 1433));
  }
  return (
    `unsupported scheme "${scheme}:" in "${maskUrlPassword(value)}"; ` + `expected mssql://, postgres:// or pglite:PATH`
  );
}

function serverLocation(scheme: string, parsed: URL, defaultPort: number): string {
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  return `${scheme}://${parsed.hostname.toLowerCase()}:${parsed.port || defaultPort}/${database}`;
}

function target(kind: EngineKind, url: string, display: string, location: string, path?: string): ConnectionTarget {
  const result = { kind, display, location, path } as ConnectionTarget;
  Object.defineProperty(result, 'url', { value: url, enumerable: false });
  return result;
}
