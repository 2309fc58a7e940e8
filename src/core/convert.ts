import { CellcryptError, refuse } from '../common/errors';
import { classifyColumn, type ColumnState, encryptedColumnBytes, plaintextByteLimit } from './column-state';
import { requireActive, withOpenKeys, type KeyAccess } from './key-access';
import { columnLabel, type SensitiveColumn } from './registry';
import type { Toolkit } from './toolkit';
import type { Db } from '../engines/engine';
import { writeLedger } from './toolkit-tables';

/**
 * Turns every registered plaintext column into an encrypted one.
 *
 * Plan first, for all columns, read-only: any missing table, wrong type or value too long for
 * its cell refuses the whole run before anything changes. Then per column:
 * 1. add the shadow column (transaction);
 * 2. encrypt rows into it in batches, each its own transaction; a batch that turned any
 *    non-null plaintext into NULL rolls back (the key was not open);
 * 3. one final transaction: lock the table, count again the values too long for a cell (a
 *    write since planning), re-encrypt whatever changed or was missed, prove every non-null
 *    value round-trips with its row's authenticator and that no NULL appeared or vanished,
 *    check the cell size, drop the plaintext, rename the shadow;
 * 4. after the table's last column committed, outside any transaction: rewrite the table so
 *    its data files no longer hold the dropped plaintext (columns.reclaimSpace).
 * An interruption anywhere leaves either the plaintext column untouched (with a partly filled
 * shadow: state `converting`, resumed by the next run) or the finished encrypted column.
 */
export interface ColumnPlan {
  readonly column: SensitiveColumn;
  readonly state: ColumnState;
  readonly sizeBytes: number;
  readonly values: number;
}

export interface ConvertOptions {
  /** The plan already made for this run (install plans once); planned here when absent. */
  plans?: readonly ColumnPlan[];
  batchSize?: number;
  /** Called after each committed batch (tests use it to simulate an interruption). */
  afterBatch?: (column: SensitiveColumn, written: number) => void | Promise<void>;
}

export interface ColumnConversion {
  readonly table: string;
  readonly column: string;
  readonly before: ColumnState;
  readonly cells: number;
  readonly sizeBytes: number;
}

/**
 * Rows per conversion batch: under 5,000 because one statement that holds 5,000 locks on a table
 * makes SQL Server escalate them to a table lock ("A single Transact-SQL statement acquires at
 * least 5,000 locks on a single nonpartitioned table or index", locking and row-versioning
 * guide), which would block the applications once per batch. 4,000 row locks leave room for the
 * page locks of the same statement. PostgreSQL has no escalation; its batches cost one more
 * commit per 4,000 rows.
 */
export const DEFAULT_CONVERSION_BATCH = 4_000;

export async function planConversion(tk: Toolkit): Promise<ColumnPlan[]> {
  const { columns } = tk.engine;
  const db = tk.engine.knex;
  const plans: ColumnPlan[] = [];
  // The registry or the schema is wrong (CellcryptRegistryInvalid), or values are (CellcryptValueTooLong).
  const invalid: string[] = [];
  const tooLong: string[] = [];
  for (const column of tk.registry) {
    const verdict = classifyColumn(column, await columns.describe(db, column));
    if ('problem' in verdict) {
      invalid.push(verdict.problem);
      continue;
    }
    let values = 0;
    if (verdict.state !== 'encrypted') {
      const found = await findTooLong(tk, db, column);
      if (found) tooLong.push(found);
      values = await columns.countNonNull(db, column, 'plaintext');
      const blockers = await columns.findBlockers(db, column);
      if (blockers.length)
        invalid.push(`${columnLabel(column)} is used by ${blockers.join(', ')}, which cannot be kept through the swap`);
    }
    plans.push({ column, state: verdict.state, sizeBytes: encryptedColumnBytes(column), values });
  }
  if (invalid.length + tooLong.length > 0) {
    const problems = [...invalid, ...tooLong];
    throw refuse(
      invalid.length ? 'CellcryptRegistryInvalid' : 'CellcryptValueTooLong',
      `nothing was changed; cannot encrypt:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      invalid.length
        ? 'fix the organization schema or the registry (CELLCRYPT_REGISTRY), then run the command again'
        : 'shorten or clear those values, then run the command again',
    );
  }
  return plans;
}

/** The values of a column too long for its cell, as a problem line; undefined when there are none. */
async function findTooLong(tk: Toolkit, db: Db, column: SensitiveColumn): Promise<string | undefined> {
  const limit = plaintextByteLimit(column);
  const found = await tk.engine.columns.findTooLong(db, column, limit);
  if (found.count === 0) return undefined;
  return (
    `${columnLabel(column)}: ${found.count} value(s) longer than ` +
    `${limit} bytes of UTF-16 (nvarchar(${column.maxLength}), one ` +
    `8000-byte cell), e.g. ${column.primaryKey} ${found.examples.join(', ')}`
  );
}

export async function convertColumns(tk: Toolkit, options: ConvertOptions = {}): Promise<ColumnConversion[]> {
  const plans = options.plans ?? (await planConversion(tk));
  const pending = plans.filter((plan) => plan.state !== 'encrypted');
  if (pending.length === 0) return [];
  const { access } = await requireActive(tk);
  const results: ColumnConversion[] = [];
  for (const [i, plan] of pending.entries()) {
    results.push(await convertColumn(tk, access, plan, options));
    // Once per table, after its last column: a rebuild per column would rewrite it again.
    if (!pending.slice(i + 1).some((later) => later.column.table === plan.column.table))
      await reclaimSpace(tk, plan.column);
  }
  return results;
}

/**
 * The swap dropped the plaintext column, but its bytes stay in the table's pages (review WR1)
 * until the engine rewrites the table. The conversion is done either way, so a failure here is
 * logged with the way out rather than thrown.
 */
async function reclaimSpace(tk: Toolkit, column: SensitiveColumn): Promise<void> {
  const backups = 'older backups and transaction log (WAL) files still hold the plaintext';
  try {
    const done = await tk.engine.columns.reclaimSpace(tk.engine.knex, column);
    tk.reporter.log(`${done}; ${backups}`);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    tk.reporter.log(
      `${column.table}: the dropped plaintext is still in the table's pages (${reason}); ` +
        `rebuild the table (SQL Server: ALTER TABLE … REBUILD; PostgreSQL: VACUUM FULL) when it can be ` +
        `locked; ${backups}`,
    );
  }
}

async function convertColumn(
  tk: Toolkit,
  access: KeyAccess,
  plan: ColumnPlan,
  options: ConvertOptions,
): Promise<ColumnConversion> {
  const { columns } = tk.engine;
  const { column, sizeBytes } = plan;
  const label = columnLabel(column);
  const keyGuid = access.current.keyGuid;
  if (plan.state === 'plaintext') {
    await tk.engine.knex.transaction(async (trx) => {
      await columns.addShadow(trx, column, sizeBytes);
      await writeLedger(trx, { table: column.table, column: column.column, state: 'converting', sizeBytes, keyGuid });
    });
  } else {
    tk.reporter.log(`${label}: resuming an interrupted conversion`);
  }

  const batchSize = options.batchSize ?? DEFAULT_CONVERSION_BATCH;
  const progress = tk.reporter.progress(`encrypting ${label}`, plan.values);
  let after: string | undefined;
  for (;;) {
    const batch = await withOpenKeys(tk, access, async (trx) => {
      const result = await columns.encryptBatch(trx, column, keyGuid, batchSize, after);
      if (result.lost > 0) throw lostCells(label, result.lost);
      return result;
    });
    after = batch.last ?? after;
    progress.tick(batch.written);
    if (batch.written === 0) break;
    await options.afterBatch?.(column, batch.written);
    if (batch.written < batchSize) break;
  }
  progress.done();

  const cells = await withOpenKeys(tk, access, async (trx) => {
    await columns.lockTable(trx, column);
    // Planning counted outside the lock; a value written since then would be cut by the
    // encryption and lost with the plaintext (review DL2). Under the lock nothing can change it.
    const tooLong = await findTooLong(tk, trx, column);
    if (tooLong)
      throw new CellcryptError('CellcryptValueTooLong', `${tooLong}; written since the plan: nothing was swapped`, {
        exitCode: 1,
        hint: 'shorten or clear those values, then run the command again (the conversion resumes)',
      });
    if ((await columns.countShadowMismatches(trx, column)) > 0) {
      await columns.reconcile(trx, column, keyGuid);
      const left = await columns.countShadowMismatches(trx, column);
      if (left > 0)
        throw new CellcryptError(
          'SqlEncryptionEncryptionDecryptionTestError',
          `${label}: ${left} value(s) did not round-trip through encryption; nothing was swapped`,
          { exitCode: 1 },
        );
    }
    const largest = await columns.maxShadowBytes(trx, column);
    if (largest > sizeBytes)
      throw new CellcryptError(
        'CellcryptConversionFailed',
        `${label}: a cell of ${largest} bytes exceeds varbinary(${sizeBytes}); nothing was swapped`,
      );
    const encrypted = await columns.countNonNull(trx, column, 'shadow');
    await columns.swap(trx, column);
    await writeLedger(trx, {
      table: column.table,
      column: column.column,
      state: 'encrypted',
      sizeBytes,
      keyGuid,
      cells: encrypted,
    });
    return encrypted;
  });
  tk.reporter.log(`${label}: ${cells} cell(s) encrypted as varbinary(${sizeBytes})`);
  return { table: column.table, column: column.column, before: plan.state, cells, sizeBytes };
}

function lostCells(label: string, lost: number): CellcryptError {
  return new CellcryptError(
    'SqlEncryptionSymmetricKeyDoesNotExistOrNoPermission',
    `${label}: ${lost} non-null value(s) encrypted to NULL (key not open); the batch was rolled back`,
    { exitCode: 1 },
  );
}
