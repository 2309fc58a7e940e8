import { guidStringToBytes } from '../cellcrypt';
import type { Secret } from '../common/secret';
import type { SymmetricKeyInfo } from '../engines/engine';
import { CellcryptError } from '../common/errors';
import { classifyColumn } from './column-state';
import { withOpenKeys, type KeyAccess } from './key-access';
import { CERTIFICATE_NAME } from '../common/key-names';
import { columnLabel, type SensitiveColumn } from './registry';
import type { Toolkit } from './toolkit';

/** Cells per re-encryption statement inside the one transaction, where the engine has no whole-column move. */
export const ONE_TRANSACTION_STEP = 5000;

/**
 * What a key change will rewrite, read before anything is locked or written: every registered
 * column must be encrypted (not plaintext, not half-converted) and, with `decrypt`, every cell
 * must decrypt now, because a cell that does not decrypt cannot be moved to the new key and
 * would be lost with the old one. A batched change needs that check first (its batches commit);
 * the one-transaction change proves every cell before its commit and, if that fails, runs this
 * check after the rollback to name the damaged cells (see change-key.ts). Also renders the
 * `--dry-run` statements, secrets as `***`.
 */
export interface ColumnWork {
  readonly column: SensitiveColumn;
  readonly cells: number;
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
      found.push({ column, cells: census.cells, bytes: await engine.columns.cellBytes(trx, column) });
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

/** One statement with its values; secrets print as *** (never their text). */
export function renderStatement(sql: string, values: ReadonlyArray<string | number | Secret>): string {
  let index = 0;
  return sql.replace(/\?/g, () => {
    const value = values[index++];
    if (value === undefined) return '?';
    if (typeof value === 'number') return String(value);
    if (typeof value === 'string') return `'${value.replace(/'/g, "''")}'`;
    return `'***'`;
  });
}

export function dryRunStatements(
  tk: Toolkit,
  secrets: { masterPassword: Secret; passphrase: Secret; identityValue: Secret },
  from: SymmetricKeyInfo,
  to: { name: string; keyGuid: string; exists: boolean },
  work: readonly ColumnWork[],
  batchSize: number | undefined,
): string[] {
  const { statements } = tk.engine.keys;
  // A bytea literal of the 16 GUID bytes as stored in the cells (mixed-endian).
  const cellsBinding = (guid: string) => `\\x${guidStringToBytes(guid).toString('hex')}`;
  return [
    'begin',
    renderStatement(statements.openMasterKey, [secrets.masterPassword]),
    renderStatement(statements.openSymmetricKey, [from.name, CERTIFICATE_NAME]),
    // A resumed change's key already exists (its first batch committed it).
    ...(to.exists
      ? []
      : [
          renderStatement(statements.createSymmetricKey, [
            to.name,
            secrets.passphrase,
            secrets.identityValue,
            CERTIFICATE_NAME,
            'sql2017',
          ]),
        ]),
    renderStatement(statements.openSymmetricKey, [to.name, CERTIFICATE_NAME]),
    ...work.map(({ column }) => moveStatement(tk, column, from.keyGuid, to.keyGuid, batchSize, cellsBinding)),
    `-- verify: 0 cells on ${from.keyGuid}, cell count unchanged, every cell decrypts under ${to.keyGuid}`,
    renderStatement(statements.dropSymmetricKey, [from.name]),
    'commit',
  ];
}

/** The re-encryption statement of one column as the chosen mode runs it. */
function moveStatement(
  tk: Toolkit,
  column: SensitiveColumn,
  fromGuid: string,
  toGuid: string,
  batchSize: number | undefined,
  cellsBinding: (guid: string) => string,
): string {
  const { columns } = tk.engine;
  if (batchSize === undefined && columns.reencryptColumnStatement) {
    const sql = columns.reencryptColumnStatement(column);
    return (
      `-- ${columnLabel(column)}, once per range of pages (the table is locked)\n` +
      `${renderStatement(sql, [
        cellsBinding(fromGuid),
        cellsBinding(toGuid),
        cellsBinding(toGuid),
        '(first,0)',
        '(end,0)',
        cellsBinding(fromGuid),
      ])}`
    );
  }
  const sql = columns.reencryptStatement(column);
  return (
    `-- ${columnLabel(column)}, repeated until no cell is left on ${fromGuid}\n` +
    `${renderStatement(sql, [cellsBinding(toGuid), cellsBinding(fromGuid), batchSize ?? ONE_TRANSACTION_STEP])}`
  );
}
