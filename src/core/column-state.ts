import { cipherLength, maxPlaintextBytes } from '../cellcrypt';
import type { ColumnShape } from '../engines/engine';
import { columnLabel, type SensitiveColumn } from './registry';

/**
 * What a registered column is, from its shape alone (pure, so planning is unit-testable):
 * - plaintext: still the original text column;
 * - converting: text column plus its shadow column (a conversion was interrupted: resumable);
 * - encrypted: the binary column that replaced the text;
 * - a problem: missing table/column/primary key, or a type cellcrypt cannot handle.
 */
export type ColumnState = 'plaintext' | 'converting' | 'encrypted';
export type Classification = { state: ColumnState } | { problem: string };

export function classifyColumn(column: SensitiveColumn, shape: ColumnShape): Classification {
  const label = columnLabel(column);
  if (!shape.tableExists) return { problem: `${label}: table ${column.table} does not exist` };
  if (!shape.column) return { problem: `${label}: column ${column.column} does not exist` };
  if (!shape.primaryKey) return { problem: `${label}: primary key column ${column.primaryKey} does not exist` };
  if (!shape.primaryKey.isPrimaryKey)
    return { problem: `${label}: ${column.primaryKey} is not the (single-column) primary key of ${column.table}` };
  if (!shape.primaryKey.isUuid) {
    return {
      problem:
        `${label}: primary key ${column.primaryKey} is ${shape.primaryKey.dataType}, ` +
        `not a uniqueidentifier/uuid (its 16 bytes authenticate each cell)`,
    };
  }
  switch (shape.column.kind) {
    case 'text':
      return { state: shape.shadowExists ? 'converting' : 'plaintext' };
    case 'binary':
      if (shape.shadowExists)
        return { problem: `${label}: is binary and also has a shadow column; inspect it by hand before going on` };
      return { state: 'encrypted' };
    default:
      return { problem: `${label}: type ${shape.column.dataType} is neither text (nvarchar) nor binary (varbinary)` };
  }
}

/** varbinary(N) for an nvarchar(maxLength) column; sized for a 32-byte hash to be safe on version-2 readers. */
export function encryptedColumnBytes(column: SensitiveColumn): number {
  return cipherLength(2 * column.maxLength, { authenticator: true, hashLength: 32 });
}

/** The most UTF-16 bytes a value may have: its nvarchar(n) and one 8000-byte cell. */
export function plaintextByteLimit(column: SensitiveColumn): number {
  return Math.min(2 * column.maxLength, maxPlaintextBytes({ authenticator: true }));
}
