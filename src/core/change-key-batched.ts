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
 *
 * Each column is walked once in primary-key order (each batch starts after the last key the one
 * before reached: the engine's `last`), where every batch used to scan from the first row past
 * the cells already moved (quadratic, review SS2). A resumed change walks from the start again;
 * cells an application wrote on the old key behind the cursor are found by the last
 * transaction's full census, which refuses to drop the old key while any is left.
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
  // One census at a time: each scans a whole table, and a pool of a few connections (one held
  // by the org lock) made parallel ones wait for a connection and time out (review BR7).
  let total = 0;
  for (const w of work)
    total +=
      (await tk.engine.columns.census(tk.engine.knex, w.column, { decrypt: false })).byKey[target.from.keyGuid] ?? 0;
  const progress = tk.reporter.progress(
    `re-encrypting ${total} cell(s) under ${target.name} in batches of ${batchSize}`,
    total,
  );
  let moved = 0;
  for (const item of work) {
    let after: string | undefined;
    for (;;) {
      const step = await keyTransaction(tk.engine, async (trx) => {
        await openKeys(tk, trx, access, [target.from.name, target.name]);
        return moveBatch(tk, trx, item, target, batchSize, after, (n) => progress.tick(n));
      });
      moved += step.written;
      if (step.written > 0) await plan.afterBatch?.(step.written);
      if (step.last === undefined) break;
      after = step.last;
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

/**
 * One batch of a batched change: the next cells of one column after `after` moved to the new
 * key; `last` is where the next batch starts, undefined once the column is walked.
 */
async function moveBatch(
  tk: Toolkit,
  trx: Knex.Transaction,
  work: ColumnWork,
  target: Target,
  limit: number,
  after: string | undefined,
  onStep: (n: number) => void,
): Promise<{ written: number; last?: string }> {
  const { columns } = tk.engine;
  const step = await columns.reencryptBatch(trx, work.column, target.from.keyGuid, target.keyGuid, limit, after);
  if (step.undecryptable > 0) throw notDecryptable(work, step.undecryptable, target);
  onStep(step.written);
  return { written: step.written, last: step.last };
}
