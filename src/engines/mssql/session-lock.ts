import type { Knex } from 'knex';
import { CellcryptError } from '../../common/errors';
import { runOnConnection } from './execute';
import { tsqlLiteral } from './quote';

/**
 * The per-org lock on SQL Server: `sp_getapplock` owned by the session, on a connection held
 * out of the pool for as long as the lock lives, so the server releases it if this process
 * dies. @LockTimeout = 0: a second holder is refused at once (0x8004852A), never queued.
 * Return codes: 0 / 1 granted; -1 timed out (held by someone else); -2 cancelled; -3 deadlock
 * victim; -999 bad call. Anything but "granted" or "held" is an error, not a refusal.
 */
export const getAppLock = (resource: string) =>
  `DECLARE @result int; EXEC @result = sys.sp_getapplock @Resource = ${tsqlLiteral(resource)}, ` +
  `@LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 0; SELECT @result AS result`;

export const releaseAppLock = (resource: string) =>
  `EXEC sys.sp_releaseapplock @Resource = ${tsqlLiteral(resource)}, @LockOwner = 'Session'`;

/**
 * sp_getapplock takes at most 255 characters; longer names keep their unique tail. The resource
 * is the lock's name alone: sp_getapplock already scopes it to the current database, and adding
 * who connects (user, host, URL options) would let two operators of one org hold "the" lock at
 * once (review WR3). Names are compared as binary, so every caller must spell it the same way.
 */
export function lockResource(name: string): string {
  const full = `cellcrypt:${name}`;
  return full.length <= 255 ? full : `cellcrypt:…${full.slice(-243)}`;
}

/**
 * The name core's org lock takes (`ORG_KEY_LOCK` in core/org-lock.ts; engines import no core,
 * so it is spelled here too, and a unit test holds the two equal).
 */
export const ORG_KEY_LOCK_NAME = 'cellcrypt-key-operation';

/** The org lock's sp_getapplock resource, for the engine and for the sqlcmd scripts alike. */
export const orgLockResource = (name: string = ORG_KEY_LOCK_NAME): string => lockResource(name);

export async function tryAppLock(knex: Knex, name: string): Promise<(() => Promise<void>) | undefined> {
  const resource = lockResource(name);
  const connection: unknown = await knex.client.acquireConnection();
  let result: number;
  try {
    result = Number((await runOnConnection(knex, connection, getAppLock(resource)))[0]?.result);
  } catch (error) {
    await knex.client.releaseConnection(connection);
    throw error;
  }
  if (result === -1) {
    await knex.client.releaseConnection(connection);
    return undefined;
  }
  if (result !== 0 && result !== 1) {
    await knex.client.releaseConnection(connection);
    throw new CellcryptError('CellcryptInternal', `sp_getapplock for ${resource} returned ${result} (not granted)`, {
      exitCode: 1,
      hint: '-2 cancelled, -3 deadlock victim, -999 invalid call: run the command again',
    });
  }
  return async () => {
    try {
      await runOnConnection(knex, connection, releaseAppLock(resource));
    } finally {
      await knex.client.releaseConnection(connection);
    }
  };
}
