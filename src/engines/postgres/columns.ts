import { CellcryptError } from '../../common/errors';
import { guidBytesToString, guidStringToBytes } from '../../cellcrypt';
import { columnShape } from '../column-shape';
import type { CellCensus, ColumnKind, ColumnOps, ColumnRef, ColumnShape, Db } from '../engine';
import { findDependentViews, viewBlockers, viewStatements } from './dependent-views';
import { mapKeyError } from './errors';
import { columnStatements as S, CHUNK_PAGES, names, shadowName } from './column-statements';
import { quotePgIdentifier as q } from './quote';

/**
 * Conversion and census SQL for one registered column. The plaintext column is encrypted into a
 * shadow column (`<column>__cellcrypt`), verified, then swapped in; the shadow's existence is
 * the resumable "half-converted" state. All values are bound parameters; all names go
 * through the one quoting helper.
 */
const TEXT_TYPES = new Set(['text', 'character varying', 'character']);

function kindOf(dataType: string): ColumnKind {
  if (TEXT_TYPES.has(dataType)) return 'text';
  return dataType === 'bytea' ? 'binary' : 'other';
}

const count = (rows: Array<Record<string, unknown>>, field = 'n'): number => Number(rows[0]?.[field] ?? 0);

export interface PostgresColumnOptions {
  /** Pages per statement of the one-transaction key change (tests use 1 to cross many chunks). */
  chunkPages?: number;
}

export function postgresColumns(options: PostgresColumnOptions = {}): ColumnOps {
  const chunkPages = options.chunkPages ?? CHUNK_PAGES;
  return {
    async describe(db: Db, ref: ColumnRef): Promise<ColumnShape> {
      // character_maximum_length: n of varchar(n), in characters; null for text and bare varchar.
      const columns = await db.raw(
        `select column_name, data_type, character_maximum_length as max_length from information_schema.columns
          where table_schema = current_schema() and table_name = ? and column_name in (?, ?, ?)`,
        [ref.table, ref.column, shadowName(ref), ref.primaryKey],
      );
      type Row = { column_name: string; data_type: string; max_length: number | null };
      const byName = new Map<string, string>(columns.rows.map((r: Row) => [r.column_name, r.data_type]));
      const lengths = new Map<string, number | null>(
        columns.rows.map((r: Row) => [r.column_name, r.max_length === null ? null : Number(r.max_length)]),
      );
      const table = await db.raw('select to_regclass(?) is not null as present', [q(ref.table)]);
      if (!table.rows[0].present) return { tableExists: false, shadowExists: false };
      const primary = await db.raw(
        `select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
          where i.indrelid = to_regclass(?) and i.indisprimary`,
        [q(ref.table)],
      );
      const primaryColumns: string[] = primary.rows.map((r: { attname: string }) => r.attname);
      return columnShape(ref, {
        types: byName,
        primaryKeyColumns: primaryColumns,
        shadow: shadowName(ref),
        kindOf,
        uuidType: 'uuid',
        lengths,
      });
    },

    async findTooLong(db, ref, maxBytes) {
      const { t, c, pk } = names(ref);
      // Plain SQL, not cellcrypt.utf16le: install checks lengths before it creates anything.
      // UTF-16 units = characters + characters outside the BMP (each needs a surrogate pair).
      const utf16Bytes =
        `2 * (char_length(${c}) + char_length(regexp_replace(${c}, ` + `'[^\\U00010000-\\U0010FFFF]', '', 'g')))`;
      // A UTF-16 form is at most twice the UTF-8 bytes (1 byte -> 2, 2 -> 2, 3 -> 2, 4 -> 4), so
      // the regexp runs only for values that might be too long: it cost 2.7 s per 200k values,
      // twice per install (issue 7 profile), for passwords far below any limit.
      const tooLong = `2 * octet_length(${c}) > ? and ${utf16Bytes} > ?`;
      const total = await db.raw(`select count(*)::int as n from ${t} where ${tooLong}`, [maxBytes, maxBytes]);
      const found = count(total.rows);
      if (found === 0) return { count: 0, examples: [] };
      const examples = await db.raw(`select ${pk}::text as id from ${t} where ${tooLong} order by ${pk} limit 5`, [
        maxBytes,
        maxBytes,
      ]);
      return { count: found, examples: examples.rows.map((r: { id: string }) => r.id) };
    },

    async countNonNull(db, ref, which) {
      const { t, c, s } = names(ref);
      const result = await db.raw(`select count(${which === 'plaintext' ? c : s})::int as n from ${t}`);
      return count(result.rows);
    },

    async addShadow(trx, ref, sizeBytes) {
      for (const sql of S.addShadow(ref, sizeBytes)) await trx.raw(sql);
    },

    async encryptBatch(trx, ref, keyGuid, limit, after) {
      const result = await trx.raw(S.encryptBatch(ref), [
        after ?? null,
        after ?? null,
        limit,
        guidStringToBytes(keyGuid),
      ]);
      const row = result.rows[0] as { written: number; lost: number; last: string | null };
      return { written: row.written, lost: row.lost, last: row.last ?? undefined };
    },

    async reconcile(trx, ref, keyGuid) {
      const { t, c, s, pk } = names(ref);
      const stale = await trx.raw(
        `update ${t} set ${s} = cellcrypt.encrypt_text(?::bytea, ${c}, ${pk})
          where ${c} is not null and cellcrypt.decrypt_text(${s}, ${pk}) is distinct from ${c}`,
        [guidStringToBytes(keyGuid)],
      );
      const orphaned = await trx.raw(`update ${t} set ${s} = null where ${c} is null and ${s} is not null`);
      return (stale.rowCount ?? 0) + (orphaned.rowCount ?? 0);
    },

    async countShadowMismatches(trx, ref) {
      const result = await trx.raw(S.countShadowMismatches(ref));
      return count(result.rows);
    },

    async maxShadowBytes(trx, ref) {
      const { t, s } = names(ref);
      const result = await trx.raw(`select coalesce(max(octet_length(${s})), 0)::int as n from ${t}`);
      return count(result.rows);
    },

    async lockTable(trx, ref) {
      await trx.raw(S.lockTable(ref));
    },

    async findBlockers(db, ref) {
      return viewBlockers(await findDependentViews(db, ref.table, ref.column));
    },

    /** Entity and Filtered views over the column are dropped and re-created around the swap (dependent-views.ts). */
    async swap(trx, ref) {
      const views = await findDependentViews(trx, ref.table, ref.column);
      const blockers = viewBlockers(views);
      if (blockers.length) {
        throw new CellcryptError(
          'CellcryptUnsupportedColumn',
          `${ref.table}.${ref.column} is used by ${blockers.join(', ')}, created since the plan; nothing was swapped`,
          { exitCode: 1, hint: 'drop it (re-create it after install), then run install again' },
        );
      }
      const { drop, create } = viewStatements(views);
      for (const sql of drop) await trx.raw(sql);
      for (const sql of S.swap(ref)) await trx.raw(sql);
      for (const sql of create) await trx.raw(sql);
    },

    async census(db, ref, options): Promise<CellCensus> {
      const result = await db.raw(S.census(ref, options.decrypt));
      return summarize(result.rows, options.decrypt);
    },

    async findUndecryptable(db, ref, limit) {
      const result = await db.raw(S.findUndecryptable(ref), [limit]);
      const rows = result.rows as Array<{ id: string; n: number }>;
      return { count: rows[0]?.n ?? 0, ids: rows.map((row) => row.id) };
    },

    async reencryptColumn(trx, ref, fromGuid, toGuid, onStep) {
      const size = await trx.raw(
        `select (pg_relation_size(to_regclass(?)) / current_setting('block_size')::int)::int as pages`,
        [q(ref.table)],
      );
      const pages = count(size.rows, 'pages');
      const from = guidStringToBytes(fromGuid);
      const to = guidStringToBytes(toGuid);
      let moved = 0;
      // The table is locked, so nothing but this change writes it: the cells on the old key are
      // all within its first `pages` pages, and each chunk reads only its own pages (a TID range
      // scan), where a LIMIT loop re-read every row it had already moved (quadratic).
      for (let first = 0; first < pages; first += chunkPages) {
        const result = await trx
          .raw(S.reencryptChunk(ref), [from, to, to, `(${first},0)`, `(${first + chunkPages},0)`, from])
          .catch((error: unknown) => mapKeyError(error, `re-encrypt ${ref.table}.${ref.column}`));
        const written = result.rowCount ?? 0;
        moved += written;
        onStep(written);
      }
      return { moved, undecryptable: 0 };
    },

    async reencryptBatch(trx, ref, fromGuid, toGuid, limit, after) {
      const keys = [guidStringToBytes(toGuid), guidStringToBytes(fromGuid)];
      const result = await trx.raw(
        S.reencryptBatch(ref, { after: after !== undefined }),
        after === undefined ? [...keys, limit] : [...keys, after, limit],
      );
      const row = result.rows[0] as { written: number; undecryptable: number; walked: number; last: string | null };
      return {
        written: row.written,
        undecryptable: row.undecryptable,
        last: row.walked < limit || row.last === null ? undefined : row.last,
      };
    },

    async readCellsOnKey(trx, ref, keyGuid, afterId, limit) {
      const { t, c, pk } = names(ref);
      // A window of rows in primary-key order, filtered here and not in WHERE: with the key
      // filter in WHERE the planner (which guesses 0.5% of rows match) chose a full scan and a
      // sort for every window, so the walk re-read the whole table per batch (issue 7 profile).
      const result = await trx.raw(
        `select ${pk}::text as id, case when substring(${c} from 1 for 16) = ?::bytea then ${c} end as cell from ${t}
          where (?::uuid is null or ${pk} > ?::uuid)
          order by ${pk} limit ? for update`,
        [guidStringToBytes(keyGuid), afterId ?? null, afterId ?? null, limit],
      );
      const rows = result.rows as Array<{ id: string; cell: Uint8Array | null }>;
      const cells = rows
        .filter((row) => row.cell !== null)
        .map((row) => ({ id: row.id, cell: Buffer.from(row.cell!) }));
      return { cells, last: rows.length === limit ? rows[rows.length - 1].id : undefined };
    },

    async writeCells(trx, ref, cells) {
      if (cells.length === 0) return 0;
      const { t, c, pk } = names(ref);
      const result = await trx.raw(
        `update ${t} as row set ${c} = v.cell from unnest(?::uuid[], ?::bytea[]) as v(id, cell) where row.${pk} = v.id`,
        [cells.map((x) => x.id), cells.map((x) => x.cell)],
      );
      return result.rowCount ?? 0;
    },

    /**
     * VACUUM FULL writes a new copy of the table and drops the old file: the copy keeps no value
     * of a dropped column (cluster.c reform_and_rewrite_tuple stores NULL for every attisdropped
     * attribute). It cannot run in a transaction block, and holds an ACCESS EXCLUSIVE lock while
     * it runs.
     */
    async reclaimSpace(db, ref) {
      await db.raw(`vacuum full ${q(ref.table)}`);
      return `VACUUM FULL ${ref.table}: rewrote the table without the dropped plaintext`;
    },

    async cellBytes(db, ref) {
      const { t, c } = names(ref);
      const result = await db.raw(`select coalesce(sum(octet_length(${c})), 0)::bigint as n from ${t}`);
      return count(result.rows);
    },

    async sampleCells(db, ref, limit) {
      const { t, c, pk } = names(ref);
      const result = await db.raw(
        `select ${pk}::text as id, ${c} as cell from ${t} where ${c} is not null order by random() limit ?`,
        [limit],
      );
      return result.rows.map((row: { id: string; cell: Uint8Array }) => ({ id: row.id, cell: Buffer.from(row.cell) }));
    },
  };
}

function summarize(
  rows: Array<{ key_guid: Uint8Array | null; cells: number; undecryptable: number }>,
  decrypted: boolean,
): CellCensus {
  const byKey: Record<string, number> = {};
  let cells = 0;
  let undecryptable = 0;
  for (const row of rows) {
    const guid =
      row.key_guid && row.key_guid.length === 16 ? guidBytesToString(Buffer.from(row.key_guid)) : 'malformed';
    byKey[guid] = (byKey[guid] ?? 0) + row.cells;
    cells += row.cells;
    undecryptable += row.undecryptable;
  }
  return { cells, byKey, undecryptable: decrypted ? undecryptable : null };
}
