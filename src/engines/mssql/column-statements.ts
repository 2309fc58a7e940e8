import type { ColumnRef } from '../engine';
import { quoteTsqlIdentifier as q, tsqlInteger, tsqlLiteral } from './quote';

/**
 * The T-SQL of conversion and re-encryption for one registered column, shared by the engine
 * and `cellcrypt script`. Values are inlined as literals (names, GUIDs, integers) because the
 * same text must run under sqlcmd; none of them is a secret.
 *
 * SQL Server traps that shape these statements:
 * - comparing nvarchar values uses the column's collation, usually case- and trailing-space-
 *   insensitive, so "round-trips" is proven by comparing the UTF-16 bytes (varbinary), never text;
 * - comparing varbinary ignores trailing 0x00 bytes (`0x = 0x00` is true), so the proofs compare
 *   DATALENGTH too (review WR5);
 * - CONVERT to a shorter type cuts silently, so the proofs compare against the whole value
 *   (nvarchar(max)): a cut cell is a mismatch (review DL2);
 * - ENCRYPTBYKEY returns NULL when its key is not open, so every write reports how many
 *   non-null values came out NULL, and the caller stops on any.
 * - a batch walks the primary key (`pk > last ORDER BY pk`, TOP (n) keys) instead of scanning
 *   from the first row for the rows not done yet, which re-read every row already done
 *   (quadratic, review SS1/SS2); `last` is computed by SQL Server, whose uniqueidentifier order
 *   (last six bytes first) is not the order of the strings.
 */

export const shadowName = (ref: ColumnRef): string => `${ref.column}__cellcrypt`;

function names(ref: ColumnRef) {
  return { t: q(ref.table), c: q(ref.column), s: q(shadowName(ref)), pk: q(ref.primaryKey) };
}

/** `CONVERT(uniqueidentifier, N'...')` for a known GUID, or `KEY_GUID(N'name')` in a script. */
export type KeyGuidExpr = string;
export const guidLiteral = (guid: string): KeyGuidExpr => {
  if (!/^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/.test(guid))
    throw new Error(`not a GUID: ${guid}`);
  return `CONVERT(uniqueidentifier, ${tsqlLiteral(guid)})`;
};
export const keyGuidOf = (keyName: string): KeyGuidExpr => `KEY_GUID(${tsqlLiteral(keyName)})`;

/**
 * `SET LOCK_TIMEOUT` for a statement that waits for a table lock, so a blocked lock ends as
 * error 1222 (errors.ts names the blocker's way out) instead of the request timeout. Sent in the
 * statement's own sp_executesql batch, the setting ends with it (set-statements doc: "the value of
 * the SET option is restored after control is returned from the batch"). 0 = no limit (-1). The
 * scripts pass none: sqlcmd waits, as a DBA running them expects.
 */
const lockTimeout = (ms: number | undefined): string =>
  ms === undefined ? '' : `SET LOCK_TIMEOUT ${ms === 0 ? '-1' : tsqlInteger(ms)}; `;

const authenticator = (pk: string) => `CONVERT(varbinary(16), ${pk})`;
/**
 * ref.maxLength is the column's declared width: classifyColumn refuses a registry that says
 * otherwise (describe reads sys.columns.max_length), so this CONVERT is nvarchar(n) to itself
 * and varchar to UTF-16, and cuts nothing that planning let through.
 */
const encrypt = (ref: ColumnRef, key: KeyGuidExpr, c: string, pk: string) =>
  `ENCRYPTBYKEY(${key}, CONVERT(nvarchar(${tsqlInteger(ref.maxLength)}), ${c}), 1, ${authenticator(pk)})`;
const decrypt = (cell: string, pk: string) => `DECRYPTBYKEY(${cell}, 1, ${authenticator(pk)})`;

/**
 * Each row's shadow decrypted once (x.d, review SS4) next to the whole plaintext's UTF-16 bytes
 * (x.p: nvarchar(max), so a value cut by the encryption can never equal it).
 */
const roundTrip = (ref: ColumnRef) => {
  const { c, s, pk } = names(ref);
  return (
    `CROSS APPLY (SELECT ${decrypt(`t.${s}`, `t.${pk}`)} AS d, ` +
    `CONVERT(varbinary(max), CONVERT(nvarchar(max), t.${c})) AS p) AS x`
  );
};
/** The shadow does not hold the plaintext: byte for byte, and as many bytes (0x = 0x00 is true). */
const differs = `(x.d IS NULL OR x.d <> x.p OR DATALENGTH(x.d) <> DATALENGTH(x.p))`;

export const columnStatements = {
  /** max_length is in bytes (nvarchar: two per UTF-16 unit), -1 for (max). */
  describe: (ref: ColumnRef) =>
    `SELECT c.name, ty.name AS type_name, c.max_length FROM sys.columns AS c ` +
    `JOIN sys.types AS ty ON ty.user_type_id = c.user_type_id ` +
    `WHERE c.object_id = OBJECT_ID(${tsqlLiteral(q(ref.table))}, N'U') AND c.name IN ` +
    `(${[ref.column, shadowName(ref), ref.primaryKey].map(tsqlLiteral).join(', ')})`,

  tableExists: (ref: ColumnRef) =>
    `SELECT CASE WHEN OBJECT_ID(${tsqlLiteral(q(ref.table))}, N'U') IS NULL THEN 0 ELSE 1 END AS present`,

  primaryKeyColumns: (ref: ColumnRef) =>
    `SELECT c.name FROM sys.indexes AS i ` +
    `JOIN sys.index_columns AS ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id ` +
    `JOIN sys.columns AS c ON c.object_id = ic.object_id AND c.column_id = ic.column_id ` +
    `WHERE i.object_id = OBJECT_ID(${tsqlLiteral(q(ref.table))}, N'U') AND i.is_primary_key = 1`,

  /** nvarchar's DATALENGTH is its UTF-16 byte count: exactly what ENCRYPTBYKEY will encrypt. */
  findTooLong: (ref: ColumnRef, maxBytes: number) => {
    const { t, c, pk } = names(ref);
    const tooLong = `DATALENGTH(CONVERT(nvarchar(max), ${c})) > ${tsqlInteger(maxBytes)}`;
    return (
      `SELECT (SELECT COUNT(*) FROM ${t} WHERE ${tooLong}) AS n, (SELECT TOP (5) CONVERT(nvarchar(36), ` +
      `${pk}) + N' ' FROM ${t} WHERE ${tooLong} ORDER BY ${pk} FOR XML PATH('')) AS examples`
    );
  },

  countNonNull: (ref: ColumnRef, which: 'plaintext' | 'shadow') => {
    const { t, c, s } = names(ref);
    return `SELECT COUNT(${which === 'plaintext' ? c : s}) AS n FROM ${t}`;
  },

  /** ENCRYPTBYKEY returns at most varbinary(8000), and no varbinary(n) is wider (review BR6). */
  addShadow: (ref: ColumnRef, sizeBytes: number) => {
    const { t, s } = names(ref);
    return `ALTER TABLE ${t} ADD ${s} varbinary(${tsqlInteger(Math.min(sizeBytes, 8000))}) NULL`;
  },

  /**
   * The next `limit` rows (by primary key, after `after` when given) whose plaintext has no cell
   * yet: @written holds each row's key and whether its cell came out NULL; `last` is the
   * largest key written, for the next batch's `after`. Without `after` (the first batch, and
   * the scripts' one whole-table statement) it starts at the first row.
   */
  encryptBatch: (ref: ColumnRef, key: KeyGuidExpr, limit: number, after?: KeyGuidExpr) => {
    const { t, c, s, pk } = names(ref);
    const cursor = after === undefined ? '' : `${pk} > ${after} AND `;
    return (
      `DECLARE @written TABLE (id uniqueidentifier NOT NULL, lost bit NOT NULL); ` +
      `UPDATE t SET ${s} = ${encrypt(ref, key, `t.${c}`, `t.${pk}`)} ` +
      `OUTPUT inserted.${pk}, CASE WHEN inserted.${s} IS NULL THEN 1 ELSE 0 END INTO @written (id, lost) ` +
      `FROM (SELECT TOP (${tsqlInteger(limit)}) ${pk} FROM ${t} ` +
      `WHERE ${cursor}${c} IS NOT NULL AND ${s} IS NULL ORDER BY ${pk}) AS k ` +
      `JOIN ${t} AS t ON t.${pk} = k.${pk}; ` +
      `SELECT COUNT(*) AS written, COALESCE(SUM(CONVERT(int, lost)), 0) AS lost, ` +
      `CONVERT(nvarchar(36), MAX(id)) AS last FROM @written`
    );
  },

  reconcile: (ref: ColumnRef, key: KeyGuidExpr) => {
    const { t, c, s, pk } = names(ref);
    return (
      `DECLARE @n int; ` +
      `UPDATE t SET ${s} = ${encrypt(ref, key, `t.${c}`, `t.${pk}`)} FROM ${t} AS t ${roundTrip(ref)} ` +
      `WHERE t.${c} IS NOT NULL AND ${differs}; SET @n = @@ROWCOUNT; ` +
      `UPDATE ${t} SET ${s} = NULL WHERE ${c} IS NULL AND ${s} IS NOT NULL; SET @n = @n + @@ROWCOUNT; ` +
      `SELECT @n AS n`
    );
  },

  countShadowMismatches: (ref: ColumnRef) => {
    const { t, c, s } = names(ref);
    return (
      `SELECT COUNT(*) AS n FROM ${t} AS t ${roundTrip(ref)} ` +
      `WHERE (t.${c} IS NULL AND t.${s} IS NOT NULL) OR (t.${c} IS NOT NULL AND ${differs})`
    );
  },

  maxShadowBytes: (ref: ColumnRef) => `SELECT COALESCE(MAX(DATALENGTH(${names(ref).s})), 0) AS n FROM ${names(ref).t}`,

  /**
   * TOP (1), not TOP (0): a plan that reads no row might not touch the table, and "table hints
   * are ignored if the table is not accessed by the query plan" (table-hints doc, review F).
   */
  lockTable: (ref: ColumnRef, lockTimeoutMs?: number) =>
    `${lockTimeout(lockTimeoutMs)}SELECT TOP (1) 1 AS locked FROM ${q(ref.table)} WITH (TABLOCKX, HOLDLOCK)`,

  /** DROP COLUMN waits for a schema lock behind every reader, NOLOCK ones too: `lockTimeoutMs` bounds it. */
  swap: (ref: ColumnRef, lockTimeoutMs?: number) => {
    const { t, c, s } = names(ref);
    return (
      `${lockTimeout(lockTimeoutMs)}ALTER TABLE ${t} DROP COLUMN ${c}; EXEC sys.sp_rename ` +
      `${tsqlLiteral(`${t}.${s}`)}, ${tsqlLiteral(ref.column)}, N'COLUMN'`
    );
  },

  /**
   * After the swap committed: DROP COLUMN leaves the plaintext's bytes in the data pages
   * ("Dropping a column doesn't reclaim the disk space of the column… Reclaim space by creating
   * a clustered index on the table or rebuilding an existing clustered index",
   * docs/t-sql/statements/alter-table-transact-sql.md). ALTER TABLE REBUILD rebuilds the
   * clustered index (or the heap) into new pages that hold only the live columns; DBCC
   * CLEANTABLE (docs/t-sql/database-console-commands/dbcc-cleantable-transact-sql.md) also
   * "reclaims space from dropped variable-length columns", but compacts the rows inside the
   * pages they are on, so nothing says the freed bytes are overwritten. ONLINE = OFF: every
   * edition has it; the table is locked while it runs.
   */
  reclaimSpace: (ref: ColumnRef, lockTimeoutMs?: number) =>
    `${lockTimeout(lockTimeoutMs)}ALTER TABLE ${q(ref.table)} REBUILD WITH (ONLINE = OFF)`,

  /**
   * Per key GUID (the first 16 bytes of a cell); with `decrypt`, how many no open key opens with
   * the row's authenticator. Grouped by the head's length too: a damaged cell shorter than 16
   * bytes would otherwise fall into the group of a GUID that ends in 0x00 (0x = 0x00).
   */
  census: (ref: ColumnRef, withDecrypt: boolean) => {
    const { t, c, pk } = names(ref);
    const undecryptable = withDecrypt ? `SUM(CASE WHEN ${decrypt(c, pk)} IS NULL THEN 1 ELSE 0 END)` : 'NULL';
    return (
      `SELECT SUBSTRING(${c}, 1, 16) AS key_guid, COUNT(*) AS cells, ${undecryptable} ` +
      `AS undecryptable FROM ${t} WHERE ${c} IS NOT NULL ` +
      `GROUP BY SUBSTRING(${c}, 1, 16), DATALENGTH(SUBSTRING(${c}, 1, 16))`
    );
  },

  /**
   * The cells the decrypting census counts as undecryptable, by primary key: COUNT(*) OVER ()
   * is computed before TOP, so one statement gives the full count and the first `limit` ids.
   */
  findUndecryptable: (ref: ColumnRef, limit: number) => {
    const { t, c, pk } = names(ref);
    return (
      `SELECT TOP (${tsqlInteger(limit)}) CONVERT(nvarchar(36), ${pk}) AS id, COUNT(*) OVER () AS n ` +
      `FROM ${t} WHERE ${c} IS NOT NULL AND ${decrypt(c, pk)} IS NULL ORDER BY ${pk}`
    );
  },

  /**
   * One batch of a batched key change: the next `limit` cells on `from` (by primary key, after
   * `after` when given), old key to new key inside the server: the decrypted bytes go straight
   * back into ENCRYPTBYKEY (no text conversion, so every byte of every cell is kept), the row's
   * GUID as authenticator on both sides. Cells that do not decrypt are never overwritten; they
   * are counted so the caller stops. `last` is the largest key of the batch.
   */
  reencryptBatch: (ref: ColumnRef, from: KeyGuidExpr, to: KeyGuidExpr, limit: number, after?: KeyGuidExpr) => {
    const { t, c, pk } = names(ref);
    const cursor = after === undefined ? '' : ` AND ${pk} > ${after}`;
    return (
      `DECLARE @batch TABLE (id uniqueidentifier NOT NULL PRIMARY KEY, cell varbinary(max) NULL); ` +
      `INSERT INTO @batch (id, cell) SELECT TOP (${tsqlInteger(limit)}) ` +
      `${pk}, ENCRYPTBYKEY(${to}, ${decrypt(c, pk)}, 1, ${authenticator(pk)}) ` +
      `FROM ${t} WITH (UPDLOCK) WHERE SUBSTRING(${c}, 1, 16) = CONVERT(varbinary(16), ${from})${cursor} ` +
      `ORDER BY ${pk}; ` +
      `UPDATE target SET ${c} = b.cell FROM ${t} AS target JOIN ` +
      `@batch AS b ON target.${pk} = b.id WHERE b.cell IS NOT NULL; ` +
      `SELECT (SELECT COUNT(*) FROM @batch WHERE cell IS NOT NULL) AS written, ` +
      `(SELECT COUNT(*) FROM @batch WHERE cell IS NULL) AS undecryptable, ` +
      `(SELECT CONVERT(nvarchar(36), MAX(id)) FROM @batch) AS last`
    );
  },

  /**
   * The one-transaction key change of one column (its table is locked): one set-based UPDATE.
   * Each cell is decrypted and re-encrypted once (x.e); a cell whose x.e is NULL (it does not
   * decrypt, or the new key is not open) is never written, and the cells still on `from`
   * afterwards are exactly those, counted so the caller stops (review SS2).
   */
  reencryptColumn: (ref: ColumnRef, from: KeyGuidExpr, to: KeyGuidExpr) => {
    const { t, c, pk } = names(ref);
    const onOld = (cell: string) => `SUBSTRING(${cell}, 1, 16) = CONVERT(varbinary(16), ${from})`;
    return (
      `DECLARE @moved int; ` +
      `UPDATE t SET ${c} = x.e FROM ${t} AS t CROSS APPLY (SELECT ` +
      `ENCRYPTBYKEY(${to}, ${decrypt(`t.${c}`, `t.${pk}`)}, 1, ${authenticator(`t.${pk}`)}) AS e) AS x ` +
      `WHERE ${onOld(`t.${c}`)} AND x.e IS NOT NULL; SET @moved = @@ROWCOUNT; ` +
      `SELECT @moved AS written, (SELECT COUNT(*) FROM ${t} WHERE ${onOld(c)}) AS undecryptable`
    );
  },

  cellBytes: (ref: ColumnRef) =>
    `SELECT COALESCE(SUM(CONVERT(bigint, DATALENGTH(${names(ref).c}))), 0) AS n FROM ${names(ref).t}`,

  /**
   * Up to `limit` cells from a random point of the primary key on (two seeks, no sort of the
   * table: ORDER BY NEWID() sorted every row, review SS4), wrapping round to the first keys
   * so a small table still gives `limit` cells. Consecutive keys of random GUIDs are random rows.
   */
  sampleCells: (ref: ColumnRef, limit: number) => {
    const { t, c, pk } = names(ref);
    const n = tsqlInteger(limit);
    const part = (which: number, where: string) =>
      `SELECT ${which} AS part, r.id, r.cell FROM (SELECT TOP (${n}) CONVERT(nvarchar(36), ${pk}) AS id, ` +
      `${c} AS cell FROM ${t} WHERE ${c} IS NOT NULL AND ${pk} ${where} @start ORDER BY ${pk}) AS r`;
    return (
      `DECLARE @start uniqueidentifier = NEWID(); ` +
      `SELECT TOP (${n}) s.id, s.cell FROM (${part(0, '>=')} UNION ALL ${part(1, '<')}) AS s ORDER BY s.part`
    );
  },
};
