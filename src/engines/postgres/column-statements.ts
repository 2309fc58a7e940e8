import type { ColumnRef } from '../engine';
import { quotePgIdentifier as q, quotePgLiteral } from './quote';

/**
 * The SQL of conversion and re-encryption for one registered column on PostgreSQL/PGlite,
 * shared by the engine (which runs it with bound values) and `--dry-run` (which prints it).
 * Names go through the one quoting helper; every value is a `?` parameter.
 */
export const shadowName = (ref: ColumnRef): string => `${ref.column}__cellcrypt`;

export function names(ref: ColumnRef) {
  return { t: q(ref.table), c: q(ref.column), s: q(shadowName(ref)), pk: q(ref.primaryKey) };
}

/** Pages per re-encryption statement: 8 MB of table, a progress tick every few thousand cells. */
export const CHUNK_PAGES = 1024;

export const columnStatements = {
  addShadow: (ref: ColumnRef, sizeBytes: number): string[] => {
    const { t, s } = names(ref);
    // PostgreSQL's bytea has no declared size; record the varbinary(N) it stands for.
    const comment = `cellcrypt: nvarchar(${ref.maxLength}) encrypted as varbinary(${sizeBytes})`;
    return [`alter table ${t} add column ${s} bytea`, `comment on column ${t}.${s} is ${quotePgLiteral(comment)}`];
  },

  /** Values: after, after, limit, key GUID bytes. */
  encryptBatch: (ref: ColumnRef): string => {
    const { t, c, s, pk } = names(ref);
    // Keyset: the batch starts after the last key written, so the primary-key index scan does
    // not walk the rows already done; the rows are then updated by their row addresses (a TID
    // scan). Joining the batch on the primary key made the planner hash the whole table for
    // every batch: both were quadratic in the table size (issue 7 profile).
    return `with batch as (
           select ctid as row_ref, ${pk} as id from ${t}
            where (?::uuid is null or ${pk} > ?::uuid) and ${c} is not null and ${s} is null
            order by ${pk} limit ? for update
         ), written as (
           update ${t} as row set ${s} = cellcrypt.encrypt_text(?::bytea, row.${c}, row.${pk})
            where row.ctid = any(array(select row_ref from batch))
           returning row.${s} is null as lost
         )
         select count(*)::int as written, count(*) filter (where lost)::int as lost,
                (select batch.id from batch order by batch.id desc limit 1)::text as last
           from written`;
  },

  countShadowMismatches: (ref: ColumnRef): string => {
    const { t, c, s, pk } = names(ref);
    return `select count(*)::int as n from ${t}
          where (${c} is null) <> (${s} is null)
             or (${c} is not null and cellcrypt.decrypt_text(${s}, ${pk}) is distinct from ${c})`;
  },

  lockTable: (ref: ColumnRef): string => `lock table ${q(ref.table)} in access exclusive mode`,

  swap: (ref: ColumnRef): string[] => {
    const { t, c, s } = names(ref);
    return [`alter table ${t} drop column ${c}`, `alter table ${t} rename column ${s} to ${c}`];
  },

  census: (ref: ColumnRef, decrypt: boolean): string => {
    const { t, c, pk } = names(ref);
    // Bytes, not text: "decrypts" needs no UTF-16 decoding, which cost 40% of the census (issue 7 profile).
    const doesNotDecrypt = decrypt
      ? `cellcrypt.decrypt_by_key(${c}, cellcrypt.guid_bytes(${pk})) is null`
      : 'null::boolean';
    // OFFSET 0 keeps each row down to (key GUID, flag) before grouping: without it the planner,
    // which cannot know there are only a few GUIDs, sorted every whole cell (on disk at 200k
    // cells) and decrypted after the sort; with it, the scan decrypts in parallel workers and
    // a hash aggregate counts (issue 7 profile: 0.9 s -> 0.69 s for 200k cells).
    return (
      `select key_guid, count(*)::int as cells, (count(*) filter (where bad))::int as undecryptable
           from (select cellcrypt.cell_key_guid(${c}) as key_guid, ${doesNotDecrypt} as bad ` +
      `from ${t} where ${c} is not null offset 0) as cells
          group by 1`
    );
  },

  /**
   * The cells the decrypting census counts as undecryptable, by primary key. The window count
   * is computed before the LIMIT, so one statement gives the full count and the first ids.
   * Values: limit.
   */
  findUndecryptable: (ref: ColumnRef): string => {
    const { t, c, pk } = names(ref);
    return `select ${pk}::text as id, (count(*) over ())::int as n from ${t}
          where ${c} is not null and cellcrypt.decrypt_by_key(${c}, cellcrypt.guid_bytes(${pk})) is null
          order by ${pk} limit ?`;
  },

  /**
   * One batch of a batched key change: old key to new key without the plaintext leaving the
   * server, decrypt_by_key and encrypt_by_key in one UPDATE, the row's uuid as authenticator on
   * both sides. A cell that does not decrypt is never overwritten (it would become NULL); it is
   * counted so the caller can stop.
   *
   * It walks a window of `limit` rows in primary-key order after the cursor (an index range
   * scan) and re-encrypts those of the window on the old key: the statement it replaced took the
   * first `limit` rows on the old key from a sequential scan that re-read every row already moved,
   * for every batch (quadratic). The key filter is applied to the window, not in WHERE, for the
   * reason readCellsOnKey gives (the planner chose a full scan and a sort). `walked` and `last`
   * (the window's largest key) let the caller continue; a window of fewer than `limit` rows is
   * the end of the column.
   */
  /** Values: new key GUID, old key GUID, [after,] limit (`after` with `{ after: true }`). */
  reencryptBatch: (ref: ColumnRef, options: { after?: boolean } = {}): string => {
    const { t, c, pk } = names(ref);
    return (
      `with keys as (select ?::bytea as new_key, ?::bytea as old_key), walked as (
    select ctid as row_ref, ${pk} as id, ${c} as cell from ${t}` +
      `${options.after ? ` where ${pk} > ?::uuid` : ''} order by ${pk} limit ? for update
  ), batch as (
    select walked.row_ref, cellcrypt.encrypt_by_key(keys.new_key, ` +
      `cellcrypt.decrypt_by_key(walked.cell, cellcrypt.guid_bytes(walked.id)), cellcrypt.guid_bytes(walked.id)) as cell
      from walked cross join keys where substring(walked.cell from 1 for 16) = keys.old_key
  ), written as (
    update ${t} as row set ${c} = batch.cell from batch ` +
      `where row.ctid = batch.row_ref and batch.cell is not null returning 1
  )
  select (select count(*) from written)::int as written, ` +
      `(select count(*) from batch where cell is null)::int as undecryptable, ` +
      `(select count(*) from walked)::int as walked, (select id::text from walked order by id desc limit 1) as last`
    );
  },

  /**
   * One chunk of the one-transaction key change: cells in pages [first, end) still on the old key
   * get the new key through cellcrypt.reencrypt_cell (two pgcrypto calls, inlined). Each key is
   * fetched once per statement by open_key_bytes, which raises if it is not open (never a NULL
   * cell). Cells of a length no cell can have are left on the old key for the proof to report.
   */
  /** Values: old key GUID, new key GUID, new key GUID, first page, end page, old key GUID. */
  reencryptChunk: (ref: ColumnRef): string => {
    const { t, c } = names(ref);
    return (
      `update ${t} set ${c} = cellcrypt.reencrypt_cell(${c}, (select cellcrypt.open_key_bytes(?::bytea)), ` +
      `(select cellcrypt.open_key_bytes(?::bytea)), ?::bytea)
   where ctid >= ?::tid and ctid < ?::tid and substring(${c} from 1 for 16) = ?::bytea ` +
      `and length(${c}) >= 52 and (length(${c}) - 36) % 16 = 0`
    );
  },
};
