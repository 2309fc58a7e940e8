import {
  finish,
  notDecryptable,
  openKeys,
  proveMoved,
  createNewKey,
  type KeyChangePlan,
  type Target,
} from './change-key-steps';
import type { Knex } from 'knex';
import type { ColumnWork } from './change-key-plan';
import type { KeyAccess } from './key-access';
import { keyTransaction } from './key-transaction';
import type { Toolkit } from './toolkit';

/**
 * The batched key change (tables too large to lock for the whole change): the new key is
 * committed first, then one transaction per batch with both keys open, then the proof and the
 * old key's drop in a last transaction. A re-run with `resume` continues from the per-GUID
 * census: batches that committed are on the new key.
 */
export async function applyBatched(tk: Toolkit, access: KeyAccess, plan: KeyChangePlan): Promise<void> {
  const { target, work, started } = plan;
  const batchSize = plan.batchSize!;
  if (!target.exists) {
    await keyTransaction(tk.engine, async (trx) => {
      await openKeys(tk, trx, access, [target.from.name]);
      await createNewKey(tk, trx, target, access.certificate);
    });
  }
  const remaining = await Promise.all(
    work.map(
      async (w) =>
        (await tk.engine.columns.census(tk.engine.knex, w.column, { decrypt: false })).byKey[target.from.keyGuid] ?? 0,
    ),
  );
  const total = remaining.reduce((a, b) => a + b, 0);
  const progress = tk.reporter.progress(
    `re-encrypting ${total} cell(s) under ${target.name} in batches of ${batchSize}`,
    total,
  );
  let moved = 0;
  for (const item of work) {
    for (;;) {
      const written = await keyTransaction(tk.engine, async (trx) => {
        await openKeys(tk, trx, access, [target.from.name, target.name]);
        return moveBatch(tk, trx, item, target, batchSize, (n) => progress.tick(n));
      });
      moved += written;
      if (written === 0) break;
      await plan.afterBatch?.(written);
    }
  }
  await keyTransaction(tk.engine, async (trx) => {
    await openKeys(tk, trx, access, [target.from.name, target.name]);
    for (const item of work) await tk.engine.columns.lockTable(trx, item.column);
    await proveMoved(tk, trx, work, target, false);
    await finish(tk, trx, target, moved, Date.now() - started);
  });
  progress.done();
}

/** One batch of a batched change: up to `limit` cells of one column moved to the new key. */
async function moveBatch(
  tk: Toolkit,
  trx: Knex.Transaction,
  work: ColumnWork,
  target: Target,
  limit: number,
  onStep: (n: number) => void,
): Promise<number> {
  const step = await tk.engine.columns.reencryptBatch(trx, work.column, target.from.keyGuid, target.keyGuid, limit);
  if (step.undecryptable > 0) throw notDecryptable(work, step.undecryptable, target);
  onStep(step.written);
  return step.written;
}
