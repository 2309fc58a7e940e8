import type { SymmetricKeyInfo } from '../engines/engine';
import { CellcryptError } from '../common/errors';
import { classifyColumn } from './column-state';
import { withOpenKeys, type KeyAccess } from './key-access';
import { CERTIFICATE_NAME } from '../common/key-names';
import { columnLabel, type SensitiveColumn } from './registry';
import type { Toolkit } from './toolkit';

/** Rows per window of the client-side path of a key change (read, re-encrypted in Node, written back). */
export const CLIENT_SIDE_WINDOW = 5000;

/**
 * What a key change will rewrite, read before anything is locked or written: every registered
 * column must be encrypted (not plaintext, not half-converted) and, with `decrypt`, every cell
 * must decrypt now, because a cell that does not decrypt cannot be moved to the new key and
 * would be lost with the old one. A batched change needs that check first (its batches commit);
 * the one-transaction change proves every cell before its commit and, if that fails, runs this
 * check after the rollback to name the damaged cells (see change-key.ts). The `--dry-run`
 * statements are the engine's to render.
 */
export interface ColumnWork {
  readonly column: SensitiveColumn;
  readonly cells: number;
  /** Cells per key GUID: a resumed change has only those on the old key left to move. */
  readonly byKey: Readonly<Record<string, number>>;
  readonly bytes: number;
}

export async function planColumns(
  tk: Toolkit,
  access: KeyAccess,
  options: { decrypt: boolean },
): Promise<ColumnWork[]> {
  const { engine } = tk;
  const problems: string[] = [];
  const encrypted: SensitiveColumn[] = [];
  for (const column of tk.registry) {
    const verdict = classifyColumn(column, await engine.columns.describe(engine.knex, column));
    if ('state' in verdict && verdict.state === 'encrypted') encrypted.push(column);
    else problems.push(`${columnLabel(column)} is ${'state' in verdict ? verdict.state : verdict.problem}`);
  }
  let undecryptable = 0;
  const work = await withOpenKeys(tk, access, async (trx) => {
    const found: ColumnWork[] = [];
    for (const column of encrypted) {
      const census = await engine.columns.census(trx, column, { decrypt: options.decrypt });
      undecryptable += census.undecryptable ?? 0;
      if (census.undecryptable)
        problems.push(`${columnLabel(column)} has ${census.undecryptable} cell(s) that do not decrypt`);
      found.push({
        column,
        cells: census.cells,
        byKey: { ...census.byKey },
        bytes: await engine.columns.cellBytes(trx, column),
      });
    }
    return found;
  });
  if (problems.length) {
    throw new CellcryptError(
      undecryptable ? 'CellcryptCellsNotDecryptable' : 'CellcryptUsage',
      `the key cannot be changed yet:\n  - ${problems.join('\n  - ')}`,
      {
        exitCode: undecryptable ? 3 : 2,
        hint: undecryptable
          ? 'run `cellcrypt verify` to see which cells, and restore them before changing the key'
          : 'run `cellcrypt install` to finish encrypting every registered column',
      },
    );
  }
  return work;
}

/**
 * The statements a key change would send, in the engine's own SQL, secrets as `***`. The
 * certificate is the org's (`access.certificate`: a rewrap renames it); the first generation's
 * name when the caller does not give it.
 */
export function dryRunStatements(
  tk: Toolkit,
  from: SymmetricKeyInfo,
  to: { name: string; keyGuid?: string; exists: boolean },
  work: readonly ColumnWork[],
  batchSize: number | undefined,
  certificate: string = CERTIFICATE_NAME,
): string[] {
  return tk.engine.dryRun.changeKey({
    certificate,
    from: { name: from.name, keyGuid: from.keyGuid },
    to: { name: to.name, keyGuid: to.keyGuid, exists: to.exists },
    columns: work.map((w) => w.column),
    batchSize,
  });
}
