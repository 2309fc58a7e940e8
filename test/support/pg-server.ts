import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** The PostgreSQL server the integration suites also run on, when TEST_PG_URL names one. */
export function pgServerUrl(): string | undefined {
  return process.env.TEST_PG_URL || undefined;
}

/** One statement on its own connection (create/drop database cannot run in a transaction). */
export async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface ThrowAwayDatabase {
  readonly name: string;
  /** The admin URL with this database's name. */
  readonly url: string;
  /** Drops it, ending any session still connected. */
  drop(): Promise<void>;
}

/**
 * The one way tests, the bench and the crash harness make a throw-away database on a server:
 * `<prefix>_<random>`, UTF8, a copy of `template` (template0: empty; an org database: a backup).
 */
export async function createThrowAwayDatabase(
  adminUrl: string,
  prefix: string,
  template = 'template0',
): Promise<ThrowAwayDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;
  await adminQuery(adminUrl, `create database ${quote(name)} encoding 'UTF8' template ${quote(template)}`);
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  return { name, url, drop: () => adminQuery(adminUrl, `drop database if exists ${quote(name)} with (force)`) };
}
