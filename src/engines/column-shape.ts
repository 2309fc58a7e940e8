import type { ColumnKind, ColumnRef, ColumnShape } from './engine';

/**
 * The engine-neutral half of `describe`: each engine reads its catalog (column types by name,
 * the primary key's columns) and this turns them into the shape core classifies.
 */
export interface CatalogFacts {
  /** Data type by column name, for the column, its shadow and the primary key. */
  readonly types: ReadonlyMap<string, string>;
  readonly primaryKeyColumns: readonly string[];
  readonly shadow: string;
  readonly kindOf: (dataType: string) => ColumnKind;
  /** The engine's name for a uniqueidentifier (uuid, uniqueidentifier). */
  readonly uuidType: string;
  /** Declared length by column name, in characters (UTF-16 units for nvarchar); null = unbounded. */
  readonly lengths: ReadonlyMap<string, number | null>;
}

export function columnShape(ref: ColumnRef, facts: CatalogFacts): ColumnShape {
  const columnType = facts.types.get(ref.column);
  const pkType = facts.types.get(ref.primaryKey);
  return {
    tableExists: true,
    column:
      columnType === undefined
        ? undefined
        : { dataType: columnType, kind: facts.kindOf(columnType), maxLength: facts.lengths.get(ref.column) ?? null },
    shadowExists: facts.types.has(facts.shadow),
    primaryKey:
      pkType === undefined
        ? undefined
        : {
            dataType: pkType,
            isUuid: pkType === facts.uuidType,
            isPrimaryKey: facts.primaryKeyColumns.length === 1 && facts.primaryKeyColumns[0] === ref.primaryKey,
          },
  };
}
