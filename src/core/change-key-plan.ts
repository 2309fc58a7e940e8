import { guidStringToBytes } from '../cellcrypt';
import type { Secret } from '../config/secret';
import type { SymmetricKeyInfo } from '../engines/engine';
import { CellcryptError } from './errors';
import { classifyColumn } from './column-state';
import { withOpenKeys, type KeyAccess } from './key-access';
import { CERTIFICATE_NAME } from './key-identity';
import { columnLabel, type SensitiveColumn } from './registry';
import type { Toolkit } from './toolkit';

/**
 * What a key change will rewrite, read before anything is locked or written: every registered
 * column must be encrypted (not plaintext, not half-converted) and every cell must decrypt now,
 * because a cell that does not decrypt cannot be moved to the new key and would be lost with
 * the old one. Also renders the `--dry-run` statements, secrets as `***`.
 */
export interface ColumnWork {
  readonly column: SensitiveColumn;
  readonly cells: number;
  readonly bytes: number;
}

export async function planColumns(tk: Toolkit, access: KeyAccess): Promise<ColumnWork[]> {
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
      const census = await engine.columns.census(trx, column, { decrypt: true });
      undecryptable += census.undecryptable ?? 0;
      if (census.undecryptable) problems.push(`${columnLabel(column)} has ${census.undecryptable} cell(s) that do not decrypt`);
      found.push({ column, cells: census.cells, bytes: await engine.columns.cellBytes(trx, column) });
    }
    return found;
  });
  if (problems.length) {
    throw new CellcryptError(undecryptable ? 'CellcryptCellsNotDecryptable' : 'CellcryptUsage', `the key cannot be changed yet:\n  - ${problems.join('\n  - ')}`, {
      exitCode: undecryptable ? 3 : 2,
      hint: undecryptable ? 'run `cellcrypt verify` to see which cells, and restore them before changing the key' : 'run `cellcrypt install` to finish encrypting every registered column',
    });
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
  to: { name: string; keyGuid: string },
  work: readonly ColumnWork[],
  batchSize: number,
): string[] {
  const { statements } = tk.engine.keys;
  // A bytea literal of the 16 GUID bytes as stored in the cells (mixed-endian).
  const cellsBinding = (guid: string) => `\\x${guidStringToBytes(guid).toString('hex')}`;
  return [
    'begin',
    renderStatement(statements.openMasterKey, [secrets.masterPassword]),
    renderStatement(statements.openSymmetricKey, [from.name, CERTIFICATE_NAME]),
    renderStatement(statements.createSymmetricKey, [to.name, secrets.passphrase, secrets.identityValue, CERTIFICATE_NAME, 'sql2017']),
    renderStatement(statements.openSymmetricKey, [to.name, CERTIFICATE_NAME]),
    ...work.map(({ column }) => `-- ${columnLabel(column)}, repeated until no cell is left on ${from.keyGuid}\n${renderStatement(tk.engine.columns.reencryptStatement(column), [cellsBinding(to.keyGuid), cellsBinding(from.keyGuid), batchSize])}`),
    `-- verify: 0 cells on ${from.keyGuid}, cell count unchanged, every cell decrypts under ${to.keyGuid}`,
    renderStatement(statements.dropSymmetricKey, [from.name]),
    'commit',
  ];
}
