import type { Knex } from 'knex';
import { decryptByKey, deriveKey, encryptByKey, guidStringToBytes, type CellKey, type Derivation } from '../cellcrypt';
import type { Secret } from '../common/secret';
import type { ColumnRef, Engine } from '../engines/engine';
import { CellcryptError } from '../common/errors';
import { columnLabel } from './registry';

/**
 * The client-side path of a key change: rows stream through the TypeScript codec in windows
 * of primary-key order (each read once, no re-scan; cells on other keys or NULL are skipped), are
 * re-encrypted here and written back in one
 * statement per batch, inside the caller's transaction. The decrypted bytes exist only in this
 * process's buffers for the length of a batch (never as text, never logged); the server still
 * proves every cell before commit. A cell that does not decrypt stops the move: it is never
 * overwritten.
 */
export function cellKeyFor(passphrase: Secret, keyGuid: string, derivation: Derivation = 'sql2017'): CellKey {
  return { keyGuid: guidStringToBytes(keyGuid), key: deriveKey(passphrase.reveal(), derivation) };
}

export function supportsClientSide(engine: Engine): boolean {
  return engine.capabilities.clientSideReencrypt;
}

export async function moveCellsInClient(
  engine: Engine,
  trx: Knex.Transaction,
  column: ColumnRef,
  from: { keyGuid: string; key: CellKey },
  to: CellKey,
  limit: number,
  onStep: (n: number) => void,
): Promise<number> {
  let moved = 0;
  let afterId: string | undefined;
  for (;;) {
    const { cells, last } = await engine.columns.readCellsOnKey(trx, column, from.keyGuid, afterId, limit);
    const rewritten = cells.map(({ id, cell }) => {
      const authenticator = guidStringToBytes(id);
      const plaintext = decryptByKey(cell, from.key, authenticator);
      if (!plaintext) {
        throw new CellcryptError(
          'CellcryptCellsNotDecryptable',
          `${columnLabel(column)}: the cell of row ${id} on ${from.keyGuid} does not decrypt; it was not rewritten`,
          {
            exitCode: 3,
            hint: 'run `cellcrypt verify` to find such cells',
          },
        );
      }
      const next = encryptByKey(to, plaintext, { authenticator });
      plaintext.fill(0);
      return { id, cell: next };
    });
    const written = rewritten.length ? await engine.columns.writeCells(trx, column, rewritten) : 0;
    if (written !== rewritten.length)
      throw new CellcryptError(
        'CellcryptInternal',
        `${columnLabel(column)}: wrote ${written} of ${rewritten.length} cells`,
      );
    moved += written;
    onStep(written);
    if (last === undefined) return moved;
    afterId = last;
  }
}
