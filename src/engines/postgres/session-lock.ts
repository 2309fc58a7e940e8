import type { Knex } from 'knex';

/**
 * Single-flight locks for one org (README, "Changing the key": a second key change fails at once with
 * 0x8004852A). On a server, `pg_try_advisory_lock` on a connection held out of the pool for as
 * long as the lock lives: a session lock, released by the server if this process dies. PGlite
 * has one connection, shared by everything in this process, and advisory locks are re-entrant
 * for their own session, so an in-process registry refuses the second holder there.
 */
const heldInProcess = new Set<string>();

const LOCK_CLASS = 0x63636c6b; // "cclk": keeps our locks apart from other users of advisory locks

export async function tryAdvisoryLock(
  knex: Knex,
  scope: string,
  name: string,
  singleConnection: boolean,
): Promise<(() => Promise<void>) | undefined> {
  const processKey = `${scope}\u0000${name}`;
  if (heldInProcess.has(processKey)) return undefined;
  heldInProcess.add(processKey);
  try {
    const release = singleConnection ? await lockOnSharedConnection(knex, name) : await lockOnOwnConnection(knex, name);
    if (!release) heldInProcess.delete(processKey);
    return release
      ? async () => {
          heldInProcess.delete(processKey);
          await release();
        }
      : undefined;
  } catch (error) {
    heldInProcess.delete(processKey);
    throw error;
  }
}

const TRY = `select pg_try_advisory_lock(${LOCK_CLASS}, hashtext($1)) as locked`;
const UNLOCK = `select pg_advisory_unlock(${LOCK_CLASS}, hashtext($1))`;

async function lockOnSharedConnection(knex: Knex, name: string) {
  const result = await knex.raw(TRY.replace('$1', '?'), [name]);
  if (!result.rows[0].locked) return undefined;
  return async () => {
    await knex.raw(UNLOCK.replace('$1', '?'), [name]);
  };
}

interface RawConnection {
  query(sql: string, values: unknown[]): Promise<{ rows: Array<{ locked?: boolean }> }>;
}

async function lockOnOwnConnection(knex: Knex, name: string) {
  const connection = (await knex.client.acquireConnection()) as RawConnection;
  try {
    const result = await connection.query(TRY, [name]);
    if (!result.rows[0].locked) {
      await knex.client.releaseConnection(connection);
      return undefined;
    }
  } catch (error) {
    await knex.client.releaseConnection(connection);
    throw error;
  }
  return async () => {
    try {
      await connection.query(UNLOCK, [name]);
    } finally {
      await knex.client.releaseConnection(connection);
    }
  };
}
