import { CellcryptError } from '../../common/errors';
import { guidBytesToString } from '../../cellcrypt';
import { columnShape } from '../column-shape';
import type { CellCensus, ColumnKind, ColumnOps, ColumnRef, ColumnShape, Db } from '../engine';
import { blockersQuery, describeBlockers } from './blockers';
import { columnStatements as S, guidLiteral, shadowName } from './column-statements';
import { DEFAULT_TIMEOUTS } from './connect';
import { refreshDependentModules } from './dependent-modules';
import { query, queryLong, queryScoped, type Row } from './execute';

/**
 * ColumnOps on SQL Server: each method sends one statement of column-statements.ts (the same
 * text `cellcrypt script` prints) and reads its numbers back.
 */
const TEXT_TYPES = new Set(['nvarchar', 'varchar', 'nchar', 'char', 'ntext', 'text']);
const BINARY_TYPES = new Set(['varbinary', 'binary']);

function kindOf(typeName: string): ColumnKind {
  if (TEXT_TYPES.has(typeName)) return 'text';
  return BINARY_TYPES.has(typeName) ? 'binary' : 'other';
}

const number = (rows: Row[], field = 'n'): number => Number(rows[0]?.[field] ?? 0);

/** sys.columns.max_length is bytes: nvarchar and nchar hold two per UTF-16 unit; -1 is (max). */
function declaredLength(typeName: string, maxLength: unknown): number | null {
  const bytes = Number(maxLength);
  if (maxLength === null || maxLength === undefined || bytes === -1 || typeName === 'text' || typeName === 'ntext')
    return null;
  return typeName === 'nvarchar' || typeName === 'nchar' ? bytes / 2 : bytes;
}

/** A cursor SQL Server returned (CONVERT(nvarchar(36), MAX(id))): undefined when the batch was empty. */
const cursorOf = (rows: Row[]): string | undefined =>
  rows[0]?.last === null || rows[0]?.last === undefined ? undefined : String(rows[0].last);

/** The long request timeout of whole-column statements, and how long a table lock may be waited for. */
export interface ColumnTimeouts {
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs?: number;
}

const unsupported = (what: string) =>
  new CellcryptError('CellcryptEngineUnsupported', `the SQL Server engine has no ${what}`, {
    exitCode: 2,
    hint: 'use the server-side path (the default)',
  });

export function mssqlColumns(timeouts: number | ColumnTimeouts): ColumnOps {
  const { statementTimeoutMs: longTimeoutMs, lockTimeoutMs = DEFAULT_TIMEOUTS.lockTimeoutMs } =
    typeof timeouts === 'number' ? { statementTimeoutMs: timeouts } : timeouts;
  // Every statement that reads or writes a whole table (review BR7): the connection's short
  // request timeout is for catalog queries.
  const long = (db: Db, sql: string, where: string) => queryLong(db, sql, where, longTimeoutMs);
  // Statements that wait for a table lock carry their own SET LOCK_TIMEOUT (lockTimeoutMs), sent
  // so that it ends with them; the long request timeout leaves the lock timeout to fire first.
  const locking = (db: Db, sql: string, where: string) => queryScoped(db, sql, where, longTimeoutMs);
  return {
    async describe(db: Db, ref: ColumnRef): Promise<ColumnShape> {
      if (number(await query(db, S.tableExists(ref), `describe ${ref.table}`), 'present') !== 1)
        return { tableExists: false, shadowExists: false };
      const columns = await query(db, S.describe(ref), `describe ${ref.table}`);
      const byName = new Map(columns.map((row) => [String(row.name), String(row.type_name)]));
      const lengths = new Map(
        columns.map((row) => [String(row.name), declaredLength(String(row.type_name), row.max_length)]),
      );
      const primary = (await query(db, S.primaryKeyColumns(ref), `describe ${ref.table}`)).map((row) =>
        String(row.name),
      );
      return columnShape(ref, {
        types: byName,
        primaryKeyColumns: primary,
        shadow: shadowName(ref),
        kindOf,
        uuidType: 'uniqueidentifier',
        lengths,
      });
    },

    async findTooLong(db, ref, maxBytes) {
      const [row] = await long(db, S.findTooLong(ref, maxBytes), `check lengths in ${ref.table}`);
      return {
        count: Number(row?.n ?? 0),
        examples: String(row?.examples ?? '')
          .split(' ')
          .filter(Boolean),
      };
    },

    countNonNull: async (db, ref, which) => number(await long(db, S.countNonNull(ref, which), `count ${ref.table}`)),

    async addShadow(trx, ref, sizeBytes) {
      await query(trx, S.addShadow(ref, sizeBytes), `add encrypted column to ${ref.table}`);
    },

    /** The next `limit` rows after `after` by primary key; `last` (from SQL Server) starts the next batch. */
    async encryptBatch(trx, ref, keyGuid, limit, after) {
      const rows = await long(
        trx,
        S.encryptBatch(ref, guidLiteral(keyGuid), limit, after === undefined ? undefined : guidLiteral(after)),
        `encrypt ${ref.table}.${ref.column}`,
      );
      return { written: number(rows, 'written'), lost: number(rows, 'lost'), last: cursorOf(rows) };
    },

    reconcile: async (trx, ref, keyGuid) =>
      number(await long(trx, S.reconcile(ref, guidLiteral(keyGuid)), `reconcile ${ref.table}.${ref.column}`)),

    countShadowMismatches: async (trx, ref) =>
      number(await long(trx, S.countShadowMismatches(ref), `prove ${ref.table}.${ref.column}`)),

    maxShadowBytes: async (trx, ref) =>
      number(await long(trx, S.maxShadowBytes(ref), `measure ${ref.table}.${ref.column}`)),

    async lockTable(trx, ref) {
      await locking(trx, S.lockTable(ref, lockTimeoutMs), `lock ${ref.table}`);
    },

    async swap(trx, ref) {
      await locking(trx, S.swap(ref, lockTimeoutMs), `swap ${ref.table}.${ref.column}`);
      // Same transaction: views and modules over the table still describe the dropped nvarchar
      // column until refreshed, and one that no longer compiles rolls the swap back (review WR2).
      const refresh = refreshDependentModules(ref, lockTimeoutMs);
      await locking(trx, refresh, `refresh the views and modules over ${ref.table}`);
    },

    async census(db, ref, options): Promise<CellCensus> {
      return summarize(await long(db, S.census(ref, options.decrypt), `census ${ref.table}.${ref.column}`));
    },

    async findUndecryptable(db, ref, limit) {
      const rows = await long(db, S.findUndecryptable(ref, limit), `find cells that do not decrypt in ${ref.table}`);
      // Lower case, as PostgreSQL prints a uuid and as sampleCells reports ids.
      return { count: number(rows), ids: rows.map((row) => String(row.id).toLowerCase()) };
    },

    /**
     * TOP (limit) cells on the old key after `after`: a batch of fewer than `limit` reached the
     * end of the column, so it returns no cursor.
     */
    async reencryptBatch(trx, ref, fromGuid, toGuid, limit, after) {
      const rows = await long(
        trx,
        S.reencryptBatch(
          ref,
          guidLiteral(fromGuid),
          guidLiteral(toGuid),
          limit,
          after === undefined ? undefined : guidLiteral(after),
        ),
        `re-encrypt ${ref.table}.${ref.column}`,
      );
      const written = number(rows, 'written');
      const undecryptable = number(rows, 'undecryptable');
      return { written, undecryptable, last: written + undecryptable < limit ? undefined : cursorOf(rows) };
    },

    /**
     * One set-based UPDATE (the table is locked, so no batch has to keep locks few): one pass,
     * one decryption per cell, progress from its @@ROWCOUNT.
     */
    async reencryptColumn(trx, ref, fromGuid, toGuid, onStep) {
      const rows = await long(
        trx,
        S.reencryptColumn(ref, guidLiteral(fromGuid), guidLiteral(toGuid)),
        `re-encrypt ${ref.table}.${ref.column}`,
      );
      const moved = number(rows, 'written');
      onStep(moved);
      return { moved, undecryptable: number(rows, 'undecryptable') };
    },

    async reclaimSpace(db, ref) {
      await locking(db, S.reclaimSpace(ref, lockTimeoutMs), `rebuild ${ref.table}`);
      return `rebuilt ${ref.table} (ALTER TABLE … REBUILD): its pages no longer hold the dropped plaintext`;
    },

    // What DROP COLUMN or sp_rename would refuse, or what would keep the plaintext (review BR2,
    // BR3, WR1): named with its way out, so planning refuses before any change.
    async findBlockers(db, ref) {
      const rows = await long(db, blockersQuery(ref), `check what uses ${ref.table}.${ref.column}`);
      return describeBlockers(rows.map((row) => ({ kind: String(row.kind), blocker: String(row.blocker) })));
    },

    readCellsOnKey: () => Promise.reject(unsupported('the client-side path of change-key')),
    writeCells: () => Promise.reject(unsupported('the client-side path of change-key')),

    cellBytes: async (db, ref) => number(await long(db, S.cellBytes(ref), `measure ${ref.table}.${ref.column}`)),

    async sampleCells(db, ref, limit) {
      const rows = await long(db, S.sampleCells(ref, limit), `sample ${ref.table}.${ref.column}`);
      return rows.map((row) => ({ id: String(row.id).toLowerCase(), cell: Buffer.from(row.cell as Uint8Array) }));
    },
  };
}

function summarize(rows: Row[]): CellCensus {
  const byKey: Record<string, number> = {};
  let cells = 0;
  let undecryptable: number | null = null;
  for (const row of rows) {
    const head = row.key_guid ? Buffer.from(row.key_guid as Uint8Array) : undefined;
    const guid = head && head.length === 16 ? guidBytesToString(head) : 'malformed';
    const count = Number(row.cells);
    byKey[guid] = (byKey[guid] ?? 0) + count;
    cells += count;
    if (row.undecryptable !== null && row.undecryptable !== undefined)
      undecryptable = (undecryptable ?? 0) + Number(row.undecryptable);
  }
  return { cells, byKey, undecryptable };
}
