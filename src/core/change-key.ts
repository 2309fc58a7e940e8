import { keyTransaction } from './key-transaction';
import type { Knex } from 'knex';
import type { Secret } from '../common/secret';
import type { SymmetricKeyInfo } from '../engines/engine';
import { dryRunStatements, ONE_TRANSACTION_STEP as STEP, planColumns, type ColumnWork } from './change-key-plan';
import { cellKeyFor, moveCellsInClient, supportsClientSide } from './client-side-move';
import { CellcryptError, isCellcryptError } from '../common/errors';
import { assessActivity, type KeyAccess } from './key-access';
import { CERTIFICATE_NAME, generationOf, keyName } from '../common/key-names';
import { identityValueFor, keyGuidFor } from '../cellcrypt/key-identity';
import { generatePassphrase, validatePassphrase } from './passphrase';
import { withOrgLock } from './org-lock';
import { requirePermission } from './permissions';
import { requireCurrentSchema } from './schema-version';
import { columnLabel } from './registry';
import type { Toolkit } from './toolkit';
import { countRecentAudits, writeAudit } from './toolkit-tables';

/**
 * `change-key`: moves every cell of every registered column from the current key to a new key
 * generation, inside the database (plaintext never reaches Node).
 *
 * Two stores, no distributed transaction, so the order of writes is the design:
 *   1. key store: the new passphrase as `passphrase.pending` (the current one stays);
 *   2. database: new key, re-encrypt, prove, drop the old key, audit row; one commit;
 *   3. key store: promote `passphrase.pending` to `passphrase`.
 * A crash after 1 leaves the data on the old key and the old passphrase in place; a crash after
 * 2 leaves the new key in the database and its passphrase pending, which key-access promotes
 * (status repairs it). At no point does the key store lack the passphrase that opens the data.
 *
 * `batchSize` trades the one transaction for one per batch (tables too large to lock for the
 * whole change): the new key is committed first, both keys stay open, and a re-run with
 * `resume` continues from the per-GUID census; the old key goes when its census is zero.
 */
export interface ChangeKeyOptions {
  /** The new passphrase (from a key file), or undefined with `generate` / `resume`. */
  newKey?: Secret;
  generate?: boolean;
  /** Finish a batched change that was interrupted. */
  resume?: boolean;
  /** Cells per transaction; undefined: the whole change in one transaction. */
  batchSize?: number;
  dryRun?: boolean;
  /**
   * Where cells are re-encrypted in one-transaction mode: `server` (SQL inside the database,
   * the default) or `client` (streamed through the TypeScript codec; engines that support it).
   */
  path?: 'server' | 'client';
  /** Test hook: runs after each committed batch (batched mode only). */
  afterBatch?: (written: number) => void | Promise<void>;
}

export interface ChangeKeyResult {
  dryRun: boolean;
  mode: 'one-transaction' | 'batched';
  oldKey: { name: string; guid: string };
  newKey: { name: string; guid: string };
  cells: number;
  bytes: number;
  durationMs: number;
  columns: Array<{ table: string; column: string; cells: number; bytes: number }>;
  statements?: string[];
}

const QUOTA_MINUTES = 15;

export async function changeKey(tk: Toolkit, options: ChangeKeyOptions): Promise<ChangeKeyResult> {
  await requirePermission(tk, 'change-key');
  const requested = options.resume ? undefined : chooseKey(options);
  if (options.dryRun) return changeKeyLocked(tk, options, requested);
  return withOrgLock(tk, 'change-key', () => changeKeyLocked(tk, options, requested));
}

async function changeKeyLocked(
  tk: Toolkit,
  options: ChangeKeyOptions,
  requested: Secret | undefined,
): Promise<ChangeKeyResult> {
  const started = Date.now();
  const activity = await assessActivity(tk);
  if (!activity.active) {
    throw new CellcryptError(
      'SqlEncryptionIsInactiveCannotChangeEncryptionKey',
      `encryption is inactive, so the key cannot be changed: ${activity.reason}`,
      {
        exitCode: 2,
        hint: activity.hint,
      },
    );
  }
  // After the activity check: an org that is not installed has no migration table to read.
  await requireCurrentSchema(tk, 'change-key');
  const { access } = activity;
  const target = targetOf(access, requested, options);
  // Batches commit, so a batched change must know every cell decrypts before the first one.
  const work = await planColumns(tk, access, { decrypt: options.batchSize !== undefined });
  const summary = {
    mode: options.batchSize ? ('batched' as const) : ('one-transaction' as const),
    oldKey: { name: target.from.name, guid: target.from.keyGuid },
    newKey: { name: target.name, guid: target.keyGuid },
    cells: work.reduce((sum, w) => sum + w.cells, 0),
    bytes: work.reduce((sum, w) => sum + w.bytes, 0),
    columns: work.map((w) => ({ table: w.column.table, column: w.column.column, cells: w.cells, bytes: w.bytes })),
  };
  if (options.dryRun) {
    const statements = dryRunStatements(tk, target.from, target, work, options.batchSize);
    return { ...summary, dryRun: true, durationMs: Date.now() - started, statements };
  }

  if (!options.resume) await checkQuota(tk);
  const keystore = await tk.keystore();
  if (!options.resume) await keystore.put('passphrase.pending', target.passphrase);
  try {
    if (options.batchSize) await runBatched(tk, access, target, work, options, started);
    else await runInOneTransaction(tk, access, target, work, started, options.path ?? 'server');
  } catch (error) {
    // One new transaction: rolled back, the data is on the old key, the pending key means nothing.
    // Batched, or resuming a batched change: batches that committed are on the new key, whose
    // passphrase is the pending one; removing it would lose those cells.
    if (!options.batchSize && !target.exists) await keystore.remove('passphrase.pending').catch(() => undefined);
    // The one transaction checks the cells only in its proof; if that (or the move) found cells
    // that do not decrypt, say so as the batched check would have, before anything changed:
    // the rollback left every cell as it was (refused, exit 3, nothing recorded).
    if (!options.batchSize && mayBeDamagedCells(error)) await refuseDamagedCells(tk, access);
    await recordFailure(tk, target, error, Date.now() - started);
    throw failed(error, options.batchSize !== undefined);
  }
  await keystore.put('passphrase', target.passphrase);
  await keystore.remove('passphrase.pending');
  return { ...summary, dryRun: false, durationMs: Date.now() - started };
}

interface Target {
  from: SymmetricKeyInfo;
  name: string;
  keyGuid: string;
  passphrase: Secret;
  /** The new key generation already exists in the database (resume). */
  exists: boolean;
}

function chooseKey(options: ChangeKeyOptions): Secret {
  if (options.newKey && options.generate)
    throw new CellcryptError('CellcryptUsage', 'give either --key-file or --generate, not both', { exitCode: 2 });
  if (options.generate) return generatePassphrase();
  if (!options.newKey)
    throw new CellcryptError(
      'CellcryptUsage',
      'no new key: give --key-file F (or - for stdin), --generate, or --resume',
      { exitCode: 2 },
    );
  validatePassphrase(options.newKey);
  return options.newKey;
}

function targetOf(access: KeyAccess, requested: Secret | undefined, options: ChangeKeyOptions): Target {
  if (access.inFlight) {
    if (!options.resume) {
      throw new CellcryptError(
        'CellcryptKeyChangeInProgress',
        `a batched change from ${access.inFlight.from.name} to ` +
          `${access.current.name} (${access.current.keyGuid}) has not finished`,
        {
          exitCode: 2,
          hint: 'finish it with `cellcrypt change-key --resume --batch-size N`; start another change after that',
        },
      );
    }
    return {
      from: access.inFlight.from,
      name: access.current.name,
      keyGuid: access.current.keyGuid,
      passphrase: access.passphrase,
      exists: true,
    };
  }
  if (options.resume)
    throw new CellcryptError('CellcryptUsage', 'no key change is in progress: nothing to resume', {
      exitCode: 2,
      hint: 'start one with --key-file F or --generate',
    });
  const passphrase = requested!;
  const keyGuid = keyGuidFor(passphrase);
  if (access.readable.some((k) => k.keyGuid === keyGuid)) {
    throw new CellcryptError(
      'SqlEncryptionEncryptionKeyValidationError',
      `the new key is the key this organization already uses (${keyGuid})`,
      {
        exitCode: 2,
        hint: 'choose a different key, or use --generate',
      },
    );
  }
  const generation = Math.max(...access.readable.map((k) => generationOf(k.name) ?? 0)) + 1;
  return { from: access.current, name: keyName(generation), keyGuid, passphrase, exists: false };
}

async function checkQuota(tk: Toolkit): Promise<void> {
  const quota = tk.settings.changeQuota;
  const recent = await countRecentAudits(tk.engine.knex, 'change-key', QUOTA_MINUTES);
  if (recent >= quota) {
    throw new CellcryptError(
      'SqlEncryptionChangeEncryptionKeyExceededQuotaForTheInterval',
      `the key was changed ${recent} time(s) in the last ${QUOTA_MINUTES} minutes (quota ${quota})`,
      {
        exitCode: 2,
        hint:
          `wait until the oldest of those changes is ${QUOTA_MINUTES} ` +
          `minutes old (CELLCRYPT_CHANGE_QUOTA sets the quota)`,
      },
    );
  }
}

async function openKeys(
  tk: Toolkit,
  trx: Knex.Transaction,
  access: KeyAccess,
  names: readonly string[],
): Promise<void> {
  await tk.engine.keys.openMasterKey(trx, access.masterPassword);
  for (const name of names) await tk.engine.keys.openSymmetricKey(trx, name, CERTIFICATE_NAME);
}

async function createNewKey(tk: Toolkit, trx: Knex.Transaction, target: Target): Promise<void> {
  const guid = await tk.engine.keys.createSymmetricKey(trx, {
    name: target.name,
    certificate: CERTIFICATE_NAME,
    keySource: target.passphrase,
    identityValue: identityValueFor(target.passphrase),
  });
  if (guid !== target.keyGuid)
    throw new CellcryptError('CellcryptInternal', `the database derived key GUID ${guid}, expected ${target.keyGuid}`);
}

/** Moves cells of one column in steps of `limit` until none is left on the old key (or `once`). */
async function moveCells(
  tk: Toolkit,
  trx: Knex.Transaction,
  work: ColumnWork,
  target: Target,
  limit: number,
  once: boolean,
  onStep: (n: number) => void,
): Promise<number> {
  let moved = 0;
  for (;;) {
    const step = await tk.engine.columns.reencryptBatch(trx, work.column, target.from.keyGuid, target.keyGuid, limit);
    if (step.undecryptable > 0) {
      throw new CellcryptError(
        'CellcryptCellsNotDecryptable',
        `${columnLabel(work.column)}: ${step.undecryptable} cell(s) on ` +
          `${target.from.keyGuid} do not decrypt; they were not rewritten`,
        {
          exitCode: 3,
          hint: 'run `cellcrypt verify` to find them',
        },
      );
    }
    moved += step.written;
    onStep(step.written);
    if (step.written < limit || once) return moved;
  }
}

/** Before commit: no cell left on the old key, as many cells as before, every cell decrypts. */
async function proveMoved(
  tk: Toolkit,
  trx: Knex.Transaction,
  work: readonly ColumnWork[],
  target: Target,
  expectCounts: boolean,
): Promise<void> {
  const problems: string[] = [];
  for (const item of work) {
    const census = await tk.engine.columns.census(trx, item.column, { decrypt: true });
    const onOld = census.byKey[target.from.keyGuid] ?? 0;
    const onNew = census.byKey[target.keyGuid] ?? 0;
    if (onOld) problems.push(`${columnLabel(item.column)}: ${onOld} cell(s) still on ${target.from.keyGuid}`);
    if (census.undecryptable)
      problems.push(
        `${columnLabel(item.column)}: ${census.undecryptable} cell(s) do not decrypt under ${target.keyGuid}`,
      );
    if (onNew !== census.cells)
      problems.push(`${columnLabel(item.column)}: ${census.cells - onNew} cell(s) on neither key`);
    if (expectCounts && census.cells !== item.cells)
      problems.push(`${columnLabel(item.column)}: ${item.cells} cell(s) before, ${census.cells} after`);
  }
  if (problems.length)
    throw new CellcryptError(
      'SqlEncryptionEncryptionDecryptionTestError',
      `the re-encrypted data did not check out:\n  - ${problems.join('\n  - ')}`,
    );
}

async function runInOneTransaction(
  tk: Toolkit,
  access: KeyAccess,
  target: Target,
  work: readonly ColumnWork[],
  started: number,
  path: 'server' | 'client',
): Promise<void> {
  if (path === 'client' && !supportsClientSide(tk.engine)) {
    throw new CellcryptError('CellcryptUsage', `the ${tk.engine.kind} engine has no client-side path`, {
      exitCode: 2,
      hint: 'use the server-side path (the default)',
    });
  }
  const total = work.reduce((sum, w) => sum + w.cells, 0);
  const progress = tk.reporter.progress(`re-encrypting ${total} cell(s) under ${target.name}`, total);
  await keyTransaction(tk.engine, async (trx) => {
    await openKeys(tk, trx, access, [target.from.name]);
    // Resuming an interrupted batched change: its new key was committed by the first batch.
    if (!target.exists) await createNewKey(tk, trx, target);
    await tk.engine.keys.openSymmetricKey(trx, target.name, CERTIFICATE_NAME);
    // Nothing else may write these tables until commit, so the counts below are exact.
    for (const item of work) await tk.engine.columns.lockTable(trx, item.column);
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
      for (const item of work)
        await moveCellsInClient(tk.engine, trx, item.column, from, to, STEP, (n) => progress.tick(n));
    } else {
      const { columns } = tk.engine;
      for (const item of work) {
        if (columns.reencryptColumn)
          await columns.reencryptColumn(trx, item.column, target.from.keyGuid, target.keyGuid, (n) => progress.tick(n));
        else await moveCells(tk, trx, item, target, STEP, false, (n) => progress.tick(n));
      }
    }
    await proveMoved(tk, trx, work, target, true);
    await finish(tk, trx, target, total, Date.now() - started);
  });
  progress.done();
}

async function runBatched(
  tk: Toolkit,
  access: KeyAccess,
  target: Target,
  work: readonly ColumnWork[],
  options: ChangeKeyOptions,
  started: number,
): Promise<void> {
  const batchSize = options.batchSize!;
  if (!target.exists) {
    await keyTransaction(tk.engine, async (trx) => {
      await openKeys(tk, trx, access, [target.from.name]);
      await createNewKey(tk, trx, target);
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
        return moveCells(tk, trx, item, target, batchSize, true, (n) => progress.tick(n));
      });
      moved += written;
      if (written === 0) break;
      await options.afterBatch?.(written);
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

async function finish(
  tk: Toolkit,
  trx: Knex.Transaction,
  target: Target,
  cells: number,
  durationMs: number,
): Promise<void> {
  await tk.engine.keys.dropSymmetricKey(trx, target.from.name);
  await writeAudit(trx, {
    createdBy: tk.actor,
    operation: 'change-key',
    outcome: 'succeeded',
    oldKeyGuid: target.from.keyGuid,
    newKeyGuid: target.keyGuid,
    cells,
    durationMs,
  });
}

async function recordFailure(tk: Toolkit, target: Target, error: unknown, durationMs: number): Promise<void> {
  const reason = isCellcryptError(error)
    ? `${error.code}: ${error.message}`
    : 'unexpected error (see the command output)';
  await writeAudit(tk.engine.knex, {
    createdBy: tk.actor,
    operation: 'change-key',
    outcome: 'failed',
    oldKeyGuid: target.from.keyGuid,
    newKeyGuid: target.keyGuid,
    durationMs,
    detail: reason,
  }).catch(() => undefined);
}

/**
 * Throws planColumns' refusal (exit 3) if cells on the current key do not decrypt; any other
 * outcome leaves the original error to be reported.
 */
async function refuseDamagedCells(tk: Toolkit, access: KeyAccess): Promise<void> {
  await planColumns(tk, access, { decrypt: true }).catch((check: unknown) => {
    if (isCellcryptError(check) && check.code === 'CellcryptCellsNotDecryptable') throw check;
  });
}

function mayBeDamagedCells(error: unknown): boolean {
  return (
    isCellcryptError(error) &&
    (error.code === 'CellcryptCellsNotDecryptable' || error.code === 'SqlEncryptionEncryptionDecryptionTestError')
  );
}

function failed(error: unknown, batched: boolean): CellcryptError {
  const outcome = batched
    ? 'the batches that committed are on the new key and the rest ' +
      'on the old one; both keys are kept and the data stays readable'
    : 'the transaction was rolled back: every cell is as it was, on the old key';
  if (isCellcryptError(error)) {
    return new CellcryptError(error.code, `key change failed: ${error.message}\n${outcome}`, {
      exitCode: 1,
      hint: batched ? 'fix the cause, then `cellcrypt change-key --resume --batch-size N`' : error.hint,
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new CellcryptError('CellcryptInternal', `key change failed: ${message}\n${outcome}`, {
    exitCode: 1,
    hint: batched
      ? 'fix the cause, then `cellcrypt change-key --resume --batch-size N`'
      : 'fix the cause and run change-key again',
    cause: error,
  });
}
