import { Client } from 'pg';
import { createThrowAwayDatabase, pgServerUrl } from './pg-server';

export { pgServerUrl };
import { listSqlScripts, renderSqlScript } from '../../src/engines/postgres/sql-script';

/**
 * Bare databases for suites that test SQL directly (no toolkit, no knex): a fresh in-memory
 * PGlite, or a fresh database on the PostgreSQL server named by TEST_PG_URL. Both have pgcrypto
 * installed and nothing else. A scenario file takes the target (forRawTarget in targets.ts):
 *
 *   export function scenarios(target: RawTarget): void {
 *     describe(`... on ${target.name}`, () => {
 *       let db: RawDb;
 *       before(async () => { db = await target.open(); await loadSqlScripts(db); });
 *       after(() => db.close());
 *     });
 *   }
 *
 * bytea parameters are Buffers; bytea results are normalized to Buffer on both drivers.
 */
export type RawDbName = 'pglite' | 'postgres';

export interface RawDb {
  readonly name: RawDbName;
  query<T = any>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs a multi-statement script (simple query protocol, no parameters). */
  exec(sql: string): Promise<void>;
  /** Closes the connection; on a server also drops the database. */
  close(): Promise<void>;
}

export interface RawTarget {
  readonly name: RawDbName;
  open(): Promise<RawDb>;
}

/** A raw database of a target: PGlite in memory, or a throw-away database on the TEST_PG_URL server. */
export function rawTarget(name: RawDbName): RawTarget {
  return name === 'pglite' ? { name, open: openPglite } : { name, open: () => openServerDatabase(pgServerUrl()!) };
}

/** The quoted schema that holds pgcrypto, as the `{{pgcrypto}}` template variable wants it. */
export async function pgcryptoSchema(db: RawDb): Promise<string> {
  const rows = await db.query<{ schema: string }>(
    `select quote_ident(n.nspname) as schema
       from pg_extension e join pg_namespace n on n.oid = e.extnamespace
      where e.extname = 'pgcrypto'`,
  );
  if (rows.length === 0) throw new Error(`pgcrypto is not installed in this ${db.name} database`);
  return rows[0].schema;
}

/**
 * Runs the src/engines/postgres/sql scripts, in order, as the engine does: all of them, or only
 * `files` (e.g. ['10-codec.sql'] for a suite that tests one script alone).
 */
export async function loadSqlScripts(db: RawDb, files: readonly string[] = listSqlScripts()): Promise<void> {
  const pgcrypto = await pgcryptoSchema(db);
  for (const file of files) await db.exec(renderSqlScript(file, { pgcrypto }));
}

function normalizeRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const [column, value] of Object.entries(row)) {
    if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
      row[column] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
  }
  return row;
}

async function openPglite(): Promise<RawDb> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { pgcrypto } = await import('@electric-sql/pglite/contrib/pgcrypto');
  const pglite = await PGlite.create({ extensions: { pgcrypto } });
  await pglite.exec('create extension if not exists pgcrypto');
  return {
    name: 'pglite',
    async query<T>(sql: string, params?: unknown[]) {
      const result = await pglite.query<Record<string, unknown>>(sql, params);
      return result.rows.map(normalizeRow) as T[];
    },
    async exec(sql: string) {
      await pglite.exec(sql);
    },
    close: () => pglite.close(),
  };
}

async function openServerDatabase(baseUrl: string): Promise<RawDb> {
  const database = await createThrowAwayDatabase(baseUrl, 'cellcrypt_raw');
  const client = new Client({ connectionString: database.url });
  try {
    await client.connect();
    await client.query('create extension if not exists pgcrypto');
  } catch (error) {
    await client.end().catch(() => undefined);
    await database.drop();
    throw error;
  }
  return {
    name: 'postgres',
    async query<T>(sql: string, params?: unknown[]) {
      const result = await client.query(sql, params);
      return result.rows.map(normalizeRow) as T[];
    },
    async exec(sql: string) {
      await client.query(sql); // no parameters: pg uses the simple protocol, which allows several statements
    },
    async close() {
      await client.end();
      await database.drop();
    },
  };
}
