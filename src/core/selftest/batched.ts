import { changeKey } from '../change-key';
import { generatePassphrase } from '../passphrase';
import { keyGuidFor } from '../../cellcrypt/key-identity';
import { cellValues, cellsByKey, describeByKey, differences } from './org-data';
import { fail, ok, skipped, type CheckContext, type Verdict } from './types';

/**
 * A batched key change that loses its connection in the middle of a batch, then `--resume`.
 * With a second session the engine holds the demo tables until the org's next batch waits on
 * them and ends that batch's session (SQL Server KILL, PostgreSQL pg_terminate_backend): the
 * server rolls the batch back with its keys open. With one connection (PGlite) the change is
 * stopped after its second committed batch instead, as the change-key tests do.
 */
export const SELFTEST_BATCH = 20;

export async function batchedInterrupted(ctx: CheckContext): Promise<Verdict> {
  const { tk } = ctx;
  const before = await cellValues(tk);
  const newKey = generatePassphrase();
  const newGuid = keyGuidFor(newKey);
  const tables = [...new Set(tk.registry.map((c) => c.table))];
  let batches = 0;
  let interruption: Promise<{ detail?: string; error?: unknown }> | undefined;
  let how = `stopped after the second committed batch (one connection: no second session)`;
  const afterBatch = async () => {
    if (++batches !== 2) return;
    if (!ctx.second) throw new Error('selftest: stopped after the second committed batch');
    const held = await ctx.ops.interruptNextStatement(ctx.second.knex, tables).catch((error: unknown) => error);
    if (held instanceof Error || !held) {
      how = `stopped after the second committed batch (the tables could not be held: ${String(held)})`;
      throw held;
    }
    const { done } = held as { done: Promise<string> };
    // Caught here at once: a rejection nobody awaits yet would be reported as unhandled.
    interruption = done.then(
      (detail) => ({ detail }),
      (error: unknown) => ({ error }),
    );
  };
  const outcome = await changeKey(tk, { newKey, batchSize: SELFTEST_BATCH, afterBatch }).then(
    () => undefined,
    (error: unknown) => error,
  );
  const interrupted = await interruption;
  if (!outcome) {
    // The change went through: the interruption never reached a batch.
    const why = interrupted?.error instanceof Error ? interrupted.error.message : 'no batch was interrupted';
    const done = await finished(ctx, before.values, newGuid);
    if (done) return done;
    return skipped(`the batch could not be interrupted (${why}); the batched change itself completed and verified`);
  }
  const midway = await cellsByKey(tk);
  if (midway.size < 2 || !midway.has(newGuid))
    return fail(`after the interruption the cells should be on both keys: ${describeByKey(midway)}`);
  if (interrupted?.detail) how = interrupted.detail;
  else if (interrupted?.error) how = `${how}; the interruption failed: ${String(interrupted.error)}`;
  await changeKey(tk, { resume: true, batchSize: SELFTEST_BATCH });
  const problem = await finished(ctx, before.values, newGuid);
  if (problem) return problem;
  return ok(`${how}: ${describeByKey(midway)}; --resume finished, every cell on ${newGuid}, every plaintext unchanged`);
}

/** A FAIL verdict when the change did not end with every cell on the new key and every value kept. */
async function finished(ctx: CheckContext, before: Map<string, string>, newGuid: string): Promise<Verdict | undefined> {
  const after = await cellValues(ctx.tk);
  const lost = differences(before, after.values, 'plaintexts');
  if (lost || after.failed.length) return fail(`values changed: ${lost || after.failed.slice(0, 3).join('; ')}`);
  const byKey = await cellsByKey(ctx.tk);
  if (byKey.size !== 1 || !byKey.has(newGuid)) return fail(`cells are not all on ${newGuid}: ${describeByKey(byKey)}`);
  return undefined;
}
