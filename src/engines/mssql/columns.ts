import { CellcryptError } from '../../common/errors';
import { guidBytesToString } from '../../cellcrypt';
import { columnShape } from '../column-shape';
import type { CellCensus, ColumnKind, ColumnOps, ColumnRef, ColumnShape, Db } from '../engine';
import { columnStatements as S, guidLiteral, REENCRYPT_STEP, shadowName } from './column-statements';
import { query, queryLong, type Row } from './execute';

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

const unsupported = (what: string) =>
  new CellcryptError('CellcryptEngineUnsupported', `the SQL Server engine has no ${what}`, {
    exitCode: 2,
    hint: 'use the server-side path (the default)',
  });

export function mssqlColumns(longTimeoutMs: number): ColumnOps {
  const long = (db: Db, sql: string, where: string) => queryLong(db, sql, where, longTimeoutMs);
  return {
    async describe(db: Db, ref: ColumnRef): Promise<ColumnShape> {
      if (number(await query(db, S.tableExists(ref), `describe ${ref.table}`), 'present') !== 1)
        return { tableExists: false, shadowExists: false };
      const columns = await query(db, S.describe(ref), `describe ${ref.table}`);
      const byName = new Map(columns.map((row) => [String(row.name), String(row.type_name)]));
      const primary = (await query(db, S.primaryKeyColumns(ref), `describe ${ref.table}`)).map((row) =>
        String(row.name),
      );
      return columnShape(ref, {
        types: byName,
        primaryKeyColumns: primary,
        shadow: shadowName(ref),
        kindOf,
        uuidType: 'uniqueidentifier',
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

    countNonNull: async (db, ref, which) => number(await query(db, S.countNonNull(ref, which), `count ${ref.table}`)),

    async addShadow(trx, ref, sizeBytes) {
      await query(trx, S.addShadow(ref, sizeBytes), `add encrypted column to ${ref.table}`);
    },

    async encryptBatch(trx, ref, keyGuid, limit) {
      const rows = await long(
        trx,
        S.encryptBatch(ref, guidLiteral(keyGuid), limit),
        `encrypt ${ref.table}.${ref.column}`,
      );
      return { written: number(rows, 'written'), lost: number(rows, 'lost') };
    },

    reconcile: async (trx, ref, keyGuid) =>
      number(await long(trx, S.reconcile(ref, guidLiteral(keyGuid)), `reconcile ${ref.table}.${ref.column}`)),

    countShadowMismatches: async (trx, ref) =>
      number(await long(trx, S.countShadowMismatches(ref), `prove ${ref.table}.${ref.column}`)),

    maxShadowBytes: async (trx, ref) =>
      number(await query(trx, S.maxShadowBytes(ref), `measure ${ref.table}.${ref.column}`)),

    async lockTable(trx, ref) {
      await query(trx, S.lockTable(ref), `lock ${ref.table}`);
    },

    async swap(trx, ref) {
      await query(trx, S.swap(ref), `swap ${ref.table}.${ref.column}`);
    },

    async census(db, ref, options): Promise<CellCensus> {
      return summarize(await long(db, S.census(ref, options.decrypt), `census ${ref.table}.${ref.column}`));
    },

    async findUndecryptable(db, ref, limit) {
      const rows = await long(db, S.findUndecryptable(ref, limit), `find cells that do not decrypt in ${ref.table}`);
      // Lower case, as PostgreSQL prints a uuid and as sampleCells reports ids.
      return { count: number(rows), ids: rows.map((row) => String(row.id).toLowerCase()) };
    },

    async reencryptBatch(trx, ref, fromGuid, toGuid, limit) {
      const rows = await long(
        trx,
        S.reencryptBatch(ref, guidLiteral(fromGuid), guidLiteral(toGuid), limit),
        `re-encrypt ${ref.table}.${ref.column}`,
      );
      return { written: number(rows, 'written'), undecryptable: number(rows, 'undecryptable') };
    },

    /** TOP (5000) steps until none is left, stopping at a step that found cells that do not decrypt. */
    async reencryptColumn(trx, ref, fromGuid, toGuid, onStep) {
      let moved = 0;
      for (;;) {
        const step = await this.reencryptBatch(trx, ref, fromGuid, toGuid, REENCRYPT_STEP);
        moved += step.written;
        onStep(step.written);
        if (step.undecryptable > 0) return { moved, undecryptable: step.undecryptable };
        if (step.written < REENCRYPT_STEP) return { moved, undecryptable: 0 };
      }
    },

    // Not checked on SQL Server yet: what blocks DROP COLUMN or sp_rename there (schema-bound
    // views, index keys, statistics, constraints: review findings BR2, BR3) is issue 14's work.
    findBlockers: async () => [],

    readCellsOnKey: () => Promise.reject(unsupported('the client-side path of change-key')),
    writeCells: () => Promise.reject(unsupported('the client-side path of change-key')),

    cellBytes: async (db, ref) => number(await query(db, S.cellBytes(ref), `measure ${ref.table}.${ref.column}`)),

    async sampleCells(db, ref, limit) {
      const rows = await query(db, S.sampleCells(ref, limit), `sample ${ref.table}.${ref.column}`);
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
