import type { Knex } from 'knex';
import { identityValueFor } from '../cellcrypt/key-identity';
import { CellcryptError } from '../common/errors';
import type { Secret } from '../common/secret';
import type { SymmetricKeyInfo } from '../engines/engine';
import type { ColumnWork } from './change-key-plan';
import type { KeyAccess } from './key-access';
import { columnLabel } from './registry';
import type { Toolkit } from './toolkit';
import { writeAudit } from './toolkit-tables';

/**
 * The steps both appliers of a key change share (change-key-one-transaction.ts and
 * change-key-batched.ts): open the keys, create the new one, prove the move, finish. The plan
 * is what change-key.ts decided before anything was written.
 */
export interface KeyChangePlan {
  readonly target: Target;
  readonly work: readonly ColumnWork[];
  /** Cells per transaction; undefined: the whole change in one transaction. */
  readonly batchSize?: number;
  /** One transaction only: re-encrypt in the database (server) or through the TypeScript codec. */
  readonly path: 'server' | 'client';
  /** When the operation started, for the audit row's duration. */
  readonly started: number;
  /** Test hook: runs after each committed batch (batched mode only). */
  readonly afterBatch?: (written: number) => void | Promise<void>;
}

export interface Target {
  from: SymmetricKeyInfo;
  name: string;
  keyGuid: string;
  passphrase: Secret;
  /** The new key generation already exists in the database (resume). */
  exists: boolean;
}

export async function openKeys(
  tk: Toolkit,
  trx: Knex.Transaction,
  access: KeyAccess,
  names: readonly string[],
): Promise<void> {
  await tk.engine.keys.openMasterKey(trx, access.masterPassword);
  for (const name of names) await tk.engine.keys.openSymmetricKey(trx, name, access.certificate);
}

/** The new key goes under the org's certificate, whose name a rewrap changes (`access.certificate`). */
export async function createNewKey(
  tk: Toolkit,
  trx: Knex.Transaction,
  target: Target,
  certificate: string,
): Promise<void> {
  const guid = await tk.engine.keys.createSymmetricKey(trx, {
    name: target.name,
    certificate,
    keySource: target.passphrase,
    identityValue: identityValueFor(target.passphrase),
  });
  if (guid !== target.keyGuid)
    throw new CellcryptError('CellcryptInternal', `the database derived key GUID ${guid}, expected ${target.keyGuid}`);
}

export function notDecryptable(work: ColumnWork, cells: number, target: Target): CellcryptError {
  return new CellcryptError(
    'CellcryptCellsNotDecryptable',
    `${columnLabel(work.column)}: ${cells} cell(s) on ${target.from.keyGuid} do not decrypt; they were not rewritten`,
    { exitCode: 3, hint: 'run `cellcrypt verify` to find them' },
  );
}

/** Before commit: no cell left on the old key, as many cells as before, every cell decrypts. */
export async function proveMoved(
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

export async function finish(
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
