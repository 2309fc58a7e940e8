import { mkdirSync } from 'node:fs';
import type { Extension } from '@electric-sql/pglite';
import knexFactory, { type Knex } from 'knex';
import type { ConnectionTarget } from '../../config/connection-target';
import { KNEX_LOG } from '../knex-log';
import { lockDataDirectory } from './data-directory-lock';

/**
 * Opens knex on a PostgreSQL server or on an embedded PGlite data directory, and returns a way
 * to run a multi-statement SQL script on it. knex-pglite refuses multi-statement queries and
 * knex would rewrite `?` inside function bodies, so scripts bypass knex: `pglite.exec` on
 * PGlite, the raw pg connection's simple-query protocol on a server.
 */
export interface PgConnection {
  knex: Knex;
  runScript(sql: string): Promise<void>;
}

/**
 * knex's `connection` is a function, not an object: knex copies an object (`{ ...connection }`
 * into client.config, a lodash deep clone into client.connectionSettings) and re-hides only a
 * property named `password`, so the URL, password included, was enumerable in both, and
 * JSON.stringify of the config or the engine showed it. A function serializes to nothing; knex
 * calls it once, at the first connection, and hands what it returns to pg.Client uncopied. The
 * URL is non-enumerable there (as on the ConnectionTarget), and pg reads `connectionString` by
 * name. (A non-enumerable property on an object config would not survive knex's copies, and a
 * URL without its password plus a separate `password` does not work either: pg lets the parsed
 * URL's empty password override the one given beside it.)
 */
export function postgresKnexConfig(target: ConnectionTarget): Knex.Config {
  return {
    client: 'pg',
    connection: async () => pgConnectionSettings(target),
    pool: { min: 0, max: 4 },
    acquireConnectionTimeout: 30_000,
    log: KNEX_LOG,
  };
}

/**
 * A server that accepts TCP and never answers held a connection attempt open for good: knex
 * gave up after 30 s with a stack trace and the process never exited. pg now gives up after
 * 10 s, and TCP keep-alive notices a server that vanishes during a long statement. There is no
 * statement timeout: converting or re-encrypting a large column legitimately takes long.
 */
const CONNECT_TIMEOUT_MS = 10_000;

function pgConnectionSettings(target: ConnectionTarget): Knex.PgConnectionConfig {
  const settings: Knex.PgConnectionConfig = {
    application_name: 'cellcrypt',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
  Object.defineProperty(settings, 'connectionString', { value: target.url, enumerable: false });
  return settings;
}

export async function connectPostgres(target: ConnectionTarget): Promise<PgConnection> {
  return wrapKnex(target, knexFactory(postgresKnexConfig(target)));
}

/** A PgConnection around a knex someone else opened (knexfile / `npx knex` path). */
export function wrapKnex(target: ConnectionTarget, knex: Knex): PgConnection {
  if (target.kind === 'pglite') {
    // The PGlite instance we created travels in the knex config (knexfile.ts does the same).
    const { pglite } = knex.client.config.connection as { pglite: { exec(sql: string): Promise<unknown> } };
    return {
      knex,
      runScript: async (sql) => {
        await pglite.exec(sql);
      },
    };
  }
  return {
    knex,
    runScript: async (sql) => {
      const connection = (await knex.client.acquireConnection()) as { query(sql: string): Promise<unknown> };
      try {
        await connection.query(sql);
      } finally {
        await knex.client.releaseConnection(connection);
      }
    },
  };
}

export async function connectPglite(target: ConnectionTarget, options: PgliteOptions = {}): Promise<PgConnection> {
  const config = await pgliteKnexConfig(target, options);
  const knex = knexFactory(config);
  // knex-pglite closes PGlite only if a query ever ran; closing it always releases the
  // data-directory lock, so the same process can open the directory again.
  const { pglite } = config.connection as { pglite: { closed: boolean; close(): Promise<void> } };
  const destroy = knex.destroy.bind(knex);
  Object.defineProperty(knex, 'destroy', {
    configurable: true,
    value: async (callback?: () => void) => {
      try {
        return await destroy(callback as never);
      } finally {
        if (!pglite.closed) await pglite.close();
      }
    },
  });
  return wrapKnex(target, knex);
}

export interface PgliteOptions {
  /**
   * Load pgcrypto (default true: the org database's cell functions need it). The key store's
   * database holds one plain table and opens without it: loading the extension is about half
   * of what opening PGlite costs (0.6 s against 0.33 s on this machine).
   */
  readonly pgcrypto?: boolean;
}

/**
 * PGlite starts PostgreSQL with shared_buffers = 128MB and zeroes all of it on every open: that
 * was most of the 0.6-1.0 s an embedded command spent opening its org database. An embedded org
 * is a trial or a small deployment, and the key store one small table, so they open with 32 MB
 * and 4 MB (0.4 s and 0.3 s on this machine; pages beyond that come from the OS cache).
 */
const ORG_SHARED_BUFFERS = '32MB';
const KEY_STORE_SHARED_BUFFERS = '4MB';

/** Opens the PGlite instance (with pgcrypto unless told otherwise) and returns the knex config that uses it. */
export async function pgliteKnexConfig(target: ConnectionTarget, options: PgliteOptions = {}): Promise<Knex.Config> {
  // Loaded lazily: the wasm runtime costs ~100 MB and seconds, and server users never need it.
  const { PGlite } = await import('@electric-sql/pglite');
  const extensions: Record<string, Extension> =
    options.pgcrypto === false ? {} : { pgcrypto: (await import('@electric-sql/pglite/contrib/pgcrypto')).pgcrypto };
  const sharedBuffers = options.pgcrypto === false ? KEY_STORE_SHARED_BUFFERS : ORG_SHARED_BUFFERS;
  const startParams = [...PGlite.defaultStartParams, '-c', `shared_buffers=${sharedBuffers}`];
  const { default: ClientPgLite } = await import('knex-pglite');
  const path = target.path ?? target.url;
  if (path === 'memory://') {
    const pglite = await PGlite.create(undefined, { extensions, startParams });
    return { client: ClientPgLite, dialect: 'postgres', connection: { pglite } } as Knex.Config;
  }
  mkdirSync(path, { recursive: true });
  const release = lockDataDirectory(path);
  try {
    const pglite = await PGlite.create(path, { extensions, startParams });
    // The lock goes with the PGlite instance: closed by knex.destroy (knex-pglite), released after.
    const close = pglite.close.bind(pglite);
    pglite.close = async () => {
      try {
        await close();
      } finally {
        release();
      }
    };
    return { client: ClientPgLite, dialect: 'postgres', connection: { pglite } } as Knex.Config;
  } catch (error) {
    release();
    throw error;
  }
}
