import { cellKeyFor, moveCellsInClient, supportsClientSide } from './client-side-move';
import { CellcryptError } from '../common/errors';
import type { Knex } from 'knex';
import { CLIENT_SIDE_WINDOW, type ColumnWork } from './change-key-plan';
import { createNewKey, finish, notDecryptable, openKeys, proveMoved, type KeyChangePlan } from './change-key-steps';
import type { KeyAccess } from './key-access';
import { keyTransaction } from './key-transaction';
import type { Toolkit } from './toolkit';

/**
 * The one-transaction key change: every table locked, every cell moved (in the database, or
 * through the TypeScript codec on the client-side path), proven, the old key dropped and the
 * audit row written, in one commit. Any failure rolls all of it back.
 */
export async function applyInOneTransaction(tk: Toolkit, access: KeyAccess, plan: KeyChangePlan): Promise<void> {
  const { target, work, started, path } = plan;
  if (path === 'client' && !supportsClientSide(tk.engine)) {
    throw new CellcryptError('CellcryptUsage', `the ${tk.engine.kind} engine has no client-side path`, {
      exitCode: 2,
      hint: 'use the server-side path (the default)',
    });
  }
  // The cells on the old key: all of them, or on a resumed batched change the ones it left.
  const planned = work.reduce((sum, w) => sum + (w.byKey[target.from.keyGuid] ?? 0), 0);
  const progress = tk.reporter.progress(`re-encrypting ${planned} cell(s) under ${target.name}`, planned);
  await keyTransaction(tk.engine, async (trx) => {
    await openKeys(tk, trx, access, [target.from.name]);
    // Resuming an interrupted batched change: its new key was committed by the first batch.
    if (!target.exists) await createNewKey(tk, trx, target, access.certificate);
    await tk.engine.keys.openSymmetricKey(trx, target.name, access.certificate);
    // Nothing else may write these tables until commit, so the counts below are exact.
    for (const item of work) await tk.engine.columns.lockTable(trx, item.column);
    // Applications kept writing until the locks were granted: the plan's counts are older than
    // the locks, so the proof before commit compares with the cells counted under them (the load
    // test saw "945 cell(s) before, 946 after" roll back a change for one row written meanwhile).
    const locked = await countUnderLock(tk, trx, work);
    const total = locked.reduce((sum, w) => sum + (w.byKey[target.from.keyGuid] ?? 0), 0);
    if (path === 'client') {
      // Resuming an interrupted batched change in one transaction: the cells left are under the
      // in-flight change's old key.
      const fromPassphrase =
        access.inFlight?.from.keyGuid === target.from.keyGuid ? access.inFlight.passphrase : access.passphrase;
      const from = {
        keyGuid: target.from.keyGuid,
        key: cellKeyFor(fromPassphrase, target.from.keyGuid, target.from.derivation),
      };
      const to = cellKeyFor(target.passphrase, target.keyGuid);
      for (const item of locked)
        await moveCellsInClient(tk.engine, trx, item.column, from, to, CLIENT_SIDE_WINDOW, (n) => progress.tick(n));
    } else {
      for (const item of locked) {
        const { undecryptable } = await tk.engine.columns.reencryptColumn(
          trx,
          item.column,
          target.from.keyGuid,
          target.keyGuid,
          (n) => progress.tick(n),
        );
        if (undecryptable > 0) throw notDecryptable(item, undecryptable, target);
      }
    }
    await proveMoved(tk, trx, locked, target, true);
    await finish(tk, trx, target, total, Date.now() - started);
  });
  progress.done();
}

/** Each column's cells per key as they are now that its table is locked (one census at a time). */
async function countUnderLock(tk: Toolkit, trx: Knex.Transaction, work: readonly ColumnWork[]): Promise<ColumnWork[]> {
  const counted: ColumnWork[] = [];
  for (const item of work) {
    const census = await tk.engine.columns.census(trx, item.column, { decrypt: false });
    counted.push({ ...item, cells: census.cells, byKey: census.byKey });
  }
  return counted;
}
