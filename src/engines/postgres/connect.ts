import { mkdirSync } from 'node:fs';
import knexFactory, { type Knex } from 'knex';
import type { ConnectionTarget } from '../../config/connection-target';

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

export function postgresKnexConfig(target: ConnectionTarget): Knex.Config {
  return {
    client: 'pg',
    connection: { connectionString: target.url, application_name: 'cellcrypt' },
    pool: { min: 0, max: 4 },
    acquireConnectionTimeout: 30_000,
  };
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

export async function connectPglite(target: ConnectionTarget): Promise<PgConnection> {
  return wrapKnex(target, knexFactory(await pgliteKnexConfig(target)));
}

/** Opens the PGlite instance (with pgcrypto) and returns the knex config that uses it. */
export async function pgliteKnexConfig(target: ConnectionTarget): Promise<Knex.Config> {
  // Loaded lazily: the wasm runtime costs ~100 MB and seconds, and server users never need it.
  const { PGlite } = await import('@electric-sql/pglite');
  const { pgcrypto } = await import('@electric-sql/pglite/contrib/pgcrypto');
  const { default: ClientPgLite } = await import('knex-pglite');
  const path = target.path ?? target.url;
  if (path !== 'memory://') mkdirSync(path, { recursive: true });
  const pglite = await PGlite.create(path === 'memory://' ? undefined : path, { extensions: { pgcrypto } });
  return { client: ClientPgLite, dialect: 'postgres', connection: { pglite } } as Knex.Config;
}

