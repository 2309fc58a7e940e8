import { ORG_KEY_LOCK } from '../org-lock';
import { fail, ok, skipped, type CheckContext, type Verdict } from './types';

/**
 * The locks cellcrypt relies on: the org lock keeps a second install/change-key/activate out,
 * lockTable keeps every other session off a table while its cells change, and a lock wait
 * ends with the server's lock-timeout error rather than hanging.
 */
export async function orgLockExcludes(ctx: CheckContext): Promise<Verdict> {
  const { engine } = ctx.tk;
  // One connection (PGlite): the second holder is this same process, refused by its registry.
  const other = ctx.second ?? engine;
  const first = await engine.tryLock(ORG_KEY_LOCK);
  if (!first) return fail('the org lock could not be taken although nothing else runs');
  try {
    const intruder = await other.tryLock(ORG_KEY_LOCK);
    if (intruder) {
      await intruder();
      return fail('a second session took the org lock while the first held it: two key operations could run at once');
    }
  } finally {
    await first();
  }
  const after = await other.tryLock(ORG_KEY_LOCK);
  if (!after) return fail('the org lock stayed held after its holder released it');
  await after();
  return ok(
    ctx.second
      ? 'a second session is refused the org lock while the first holds it, and gets it once released'
      : 'one connection (PGlite): a second holder in this process is refused, and gets it once released',
  );
}

export async function tableLockHeld(ctx: CheckContext): Promise<Verdict> {
  const { engine, registry } = ctx.tk;
  const column = registry[0];
  const locks = await engine.knex.transaction(async (trx) => {
    await engine.columns.lockTable(trx, column);
    return ctx.ops.tableLocks(trx, column.table);
  });
  if (!locks.exclusive)
    return fail(
      `after lockTable the transaction holds ${locks.modes.join(', ') || 'no lock'} on ${column.table}: ` +
        'other sessions could write cells while they change',
    );
  return ok(`after lockTable the transaction holds ${locks.modes.join(', ')} on ${column.table}`);
}

export async function lockTimeout(ctx: CheckContext): Promise<Verdict> {
  if (!ctx.second) return skipped('one connection (PGlite): there is no second session to wait for a lock');
  const second = ctx.second;
  const { engine, registry } = ctx.tk;
  const table = registry[0].table;
  const result = await engine.knex.transaction(async (trx) => {
    await engine.columns.lockTable(trx, registry[0]);
    return ctx.ops.lockTimeoutError(second.knex, table);
  });
  if (result.got === result.expected)
    return ok(`a second session reading ${table} while it is locked gets error ${result.expected} after its timeout`);
  return fail(
    result.got === undefined
      ? `a second session read ${table} while lockTable held it`
      : `a second session waiting on ${table} got ${result.got}, not ${result.expected}`,
  );
}
