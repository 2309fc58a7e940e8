import { keyGuidFor } from '../cellcrypt/key-identity';
import { CellcryptError, isCellcryptError } from '../common/errors';
import { generationOf, keyName } from '../common/key-names';
import type { Secret } from '../common/secret';
import { applyBatched } from './change-key-batched';
import { applyInOneTransaction } from './change-key-one-transaction';
import { dryRunStatements, planColumns } from './change-key-plan';
import type { KeyChangePlan, Target } from './change-key-steps';
import { assessActivity, type KeyAccess } from './key-access';
import { withOrgLock } from './org-lock';
import { generatePassphrase, validatePassphrase } from './passphrase';
import { requirePermission } from './permissions';
import { requireCurrentSchema } from './schema-version';
import { requireOwnKeyStore } from './key-store-check';
import { requireSecretsStayOutOfServerLog } from './secret-logging';
import { forgetGeneration, recordGeneration, retireGeneration } from './key-history';
import type { Toolkit } from './toolkit';
import { countRecentAudits, recordingRefusals, writeFailureAudit } from './toolkit-tables';

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
  /** `guid` is null in a dry run of `--generate`: the real run generates another key. */
  newKey: { name: string; guid: string | null };
  /** Cells this run moves: on a resumed change, only those still on the old key. */
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
  // A dry run takes the org lock too: a real run now would be refused while another change
  // holds it, and a dry run says what the real run would do.
  return withOrgLock(tk, 'change-key', () => changeKeyLocked(tk, options, requested));
}

async function changeKeyLocked(
  tk: Toolkit,
  options: ChangeKeyOptions,
  requested: Secret | undefined,
): Promise<ChangeKeyResult> {
  const started = Date.now();
  const { access, target, work } = await recordingRefusals(
    tk.engine.knex,
    { createdBy: tk.actor, operation: 'change-key' },
    !options.dryRun,
    () => prepare(tk, options, requested),
  );
  const columns = work.map((w) => {
    // Only the cells still on the old key move (a resumed change committed the others).
    const cells = w.byKey[target.from.keyGuid] ?? 0;
    const bytes = w.cells ? Math.round((w.bytes * cells) / w.cells) : 0;
    return { table: w.column.table, column: w.column.column, cells, bytes };
  });
  const generatedInDryRun = options.dryRun && options.generate;
  const summary = {
    mode: options.batchSize ? ('batched' as const) : ('one-transaction' as const),
    oldKey: { name: target.from.name, guid: target.from.keyGuid },
    newKey: { name: target.name, guid: generatedInDryRun ? null : target.keyGuid },
    cells: columns.reduce((sum, c) => sum + c.cells, 0),
    bytes: columns.reduce((sum, c) => sum + c.bytes, 0),
    columns,
  };
  if (options.dryRun) {
    const to = { ...target, keyGuid: generatedInDryRun ? undefined : target.keyGuid };
    const statements = dryRunStatements(tk, target.from, to, work, options.batchSize, access.certificate);
    return { ...summary, dryRun: true, durationMs: Date.now() - started, statements };
  }

  const keystore = await tk.keystore();
  if (!options.resume) {
    await keystore.put('passphrase.pending', target.passphrase);
    // Into the key history before the database has the key, like the pending value.
    await recordGeneration(keystore, generationOf(target.name)!, target.passphrase);
  }
  try {
    const plan: KeyChangePlan = {
      target,
      work,
      batchSize: options.batchSize,
      path: options.path ?? 'server',
      started,
      afterBatch: options.afterBatch,
    };
    if (plan.batchSize) await applyBatched(tk, access, plan);
    else await applyInOneTransaction(tk, access, plan);
  } catch (error) {
    // One new transaction: rolled back, the data is on the old key, the pending key means nothing.
    // Batched, or resuming a batched change: batches that committed are on the new key, whose
    // passphrase is the pending one; removing it would lose those cells.
    if (!options.batchSize && !target.exists) {
      await keystore.remove('passphrase.pending').catch(() => undefined);
      await forgetGeneration(keystore, generationOf(target.name)!).catch(() => undefined);
    }
    // The one transaction checks the cells only in its proof; if that (or the move) found cells
    // that do not decrypt, say so as the batched check would have, before anything changed:
    // the rollback left every cell as it was (refused, exit 3).
    const refusal = !options.batchSize && mayBeDamagedCells(error) ? await damagedCells(tk, access) : undefined;
    await writeFailureAudit(
      tk.engine.knex,
      {
        createdBy: tk.actor,
        operation: 'change-key',
        outcome: refusal ? 'refused' : 'failed',
        oldKeyGuid: target.from.keyGuid,
        newKeyGuid: target.keyGuid,
        durationMs: Date.now() - started,
      },
      refusal ?? error,
      options.batchSize ? '' : 'rolled back, every cell as it was: ',
    );
    throw refusal ?? failed(error, options.batchSize !== undefined);
  }
  await keystore.put('passphrase', target.passphrase);
  await keystore.remove('passphrase.pending');
  await retireGeneration(keystore, generationOf(target.from.name)!);
  return { ...summary, dryRun: false, durationMs: Date.now() - started };
}

/**
 * Everything the change needs, read before anything is written; every refusal the real run
 * would make is made here, in a dry run too (the quota, the cells that do not decrypt).
 */
async function prepare(tk: Toolkit, options: ChangeKeyOptions, requested: Secret | undefined) {
  const activity = await assessActivity(tk);
  if (!activity.active) {
    throw new CellcryptError(
      'SqlEncryptionIsInactiveCannotChangeEncryptionKey',
      `encryption is inactive, so the key cannot be changed: ${activity.reason}`,
      { exitCode: 2, hint: activity.hint },
    );
  }
  // After the activity check: an org that is not installed has no migration table to read.
  await requireCurrentSchema(tk, 'change-key');
  await requireOwnKeyStore(tk);
  await requireSecretsStayOutOfServerLog(tk);
  const { access } = activity;
  const target = targetOf(access, requested, options);
  // Batches commit, so a batched change must know every cell decrypts before the first one; a
  // dry run checks it too, since the one transaction would be rolled back and refused for it.
  const decrypt = options.batchSize !== undefined || Boolean(options.dryRun);
  const work = await planColumns(tk, access, { decrypt });
  if (!options.resume) await checkQuota(tk);
  return { access, target, work };
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

/**
 * planColumns' refusal (exit 3) if cells on the current key do not decrypt; undefined for any
 * other outcome, which leaves the original error to be reported.
 */
async function damagedCells(tk: Toolkit, access: KeyAccess): Promise<CellcryptError | undefined> {
  try {
    await planColumns(tk, access, { decrypt: true });
  } catch (check) {
    if (isCellcryptError(check) && check.code === 'CellcryptCellsNotDecryptable') return check;
  }
  return undefined;
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
