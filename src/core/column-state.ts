import { cipherLength, MAX_CELL_BYTES, maxPlaintextBytes } from '../cellcrypt';
import type { ColumnShape } from '../engines/engine';
import { columnLabel, MAX_REGISTRY_LENGTH, REGISTRY_HASH as HASH, type SensitiveColumn } from './registry';

/**
 * What a registered column is, from its shape alone (pure, so planning is unit-testable):
 * - plaintext: still the original text column;
 * - converting: text column plus its shadow column (a conversion was interrupted: resumable);
 * - encrypted: the binary column that replaced the text;
 * - a problem: missing table/column/primary key, a type cellcrypt cannot handle, or a text
 *   column whose declared length is not the registry's.
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
    case 'text': {
      const declared = shape.column.maxLength;
      // Encryption converts to nvarchar(registry length) and the cell is sized from it: a wider
      // column would have its longer values cut (review DL2), so the two must agree.
      if (declared !== undefined && declared !== column.maxLength) {
        return {
          problem:
            `${label}: the column is ${shape.column.dataType}(${declared ?? 'max'}) but the registry says ` +
            `maxLength ${column.maxLength}; set maxLength to the column's length in CELLCRYPT_REGISTRY` +
            (declared === null || declared > MAX_REGISTRY_LENGTH
              ? ` (a column wider than ${MAX_REGISTRY_LENGTH} cannot be encrypted into one 8000-byte cell)`
              : ''),
        };
      }
      return { state: shape.shadowExists ? 'converting' : 'plaintext' };
    }
    case 'binary':
      if (shape.shadowExists)
        return { problem: `${label}: is binary and also has a shadow column; inspect it by hand before going on` };
      return { state: 'encrypted' };
    default:
      return { problem: `${label}: type ${shape.column.dataType} is neither text (nvarchar) nor binary (varbinary)` };
  }
}

/**
 * varbinary(N) for an nvarchar(maxLength) column, sized for a 32-byte hash to be safe on
 * version-2 readers; never more than ENCRYPTBYKEY returns (8000: varbinary(n) allows no more).
 */
export function encryptedColumnBytes(column: SensitiveColumn): number {
  return Math.min(MAX_CELL_BYTES, cipherLength(2 * column.maxLength, HASH));
}

/** The most UTF-16 bytes a value may have: its nvarchar(n), and one 8000-byte cell with a 32-byte hash. */
export function plaintextByteLimit(column: SensitiveColumn): number {
  return Math.min(2 * column.maxLength, maxPlaintextBytes(HASH));
}
