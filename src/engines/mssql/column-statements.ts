import type { ColumnRef } from '../engine';
import { quoteTsqlIdentifier as q, tsqlInteger, tsqlLiteral } from './quote';

/**
 * The T-SQL of conversion and re-encryption for one registered column, shared by the engine
 * and `cellcrypt script`. Values are inlined as literals (names, GUIDs, integers) because the
 * same text must run under sqlcmd; none of them is a secret.
 *
 * Two SQL Server traps shape these statements:
 * - comparing nvarchar values uses the column's collation, usually case- and trailing-space-
 *   insensitive, so "round-trips" is proven by comparing the UTF-16 bytes (varbinary), never text;
 * - ENCRYPTBYKEY returns NULL when its key is not open, so every write reports how many
 *   non-null values came out NULL, and the caller stops on any.
 */
/** Cells per re-encryption statement in the one-transaction key change (the engine loops until none is left). */
export const REENCRYPT_STEP = 5000;

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

const authenticator = (pk: string) => `CONVERT(varbinary(16), ${pk})`;
const plaintextBytes = (ref: ColumnRef, expr: string) =>
  `CONVERT(varbinary(max), CONVERT(nvarchar(${tsqlInteger(ref.maxLength)}), ${expr}))`;
const encrypt = (ref: ColumnRef, key: KeyGuidExpr, c: string, pk: string) =>
  `ENCRYPTBYKEY(${key}, CONVERT(nvarchar(${tsqlInteger(ref.maxLength)}), ${c}), 1, ${authenticator(pk)})`;
const decrypt = (cell: string, pk: string) => `DECRYPTBYKEY(${cell}, 1, ${authenticator(pk)})`;

export const columnStatements = {
  describe: (ref: ColumnRef) =>
    `SELECT c.name, ty.name AS type_name FROM sys.columns AS c ` +
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

  addShadow: (ref: ColumnRef, sizeBytes: number) => {
    const { t, s } = names(ref);
    return `ALTER TABLE ${t} ADD ${s} varbinary(${tsqlInteger(sizeBytes)}) NULL`;
  },

  encryptBatch: (ref: ColumnRef, key: KeyGuidExpr, limit: number) => {
    const { t, c, s, pk } = names(ref);
    return (
      `DECLARE @written TABLE (lost bit NOT NULL); ` +
      `UPDATE TOP (${tsqlInteger(limit)}) ${t} SET ${s} = ${encrypt(ref, key, c, pk)} ` +
      `OUTPUT CASE WHEN inserted.${s} IS NULL THEN 1 ELSE 0 END INTO @written (lost) ` +
      `WHERE ${c} IS NOT NULL AND ${s} IS NULL; ` +
      `SELECT COUNT(*) AS written, COALESCE(SUM(CONVERT(int, lost)), 0) AS lost FROM @written`
    );
  },

  reconcile: (ref: ColumnRef, key: KeyGuidExpr) => {
    const { t, c, s, pk } = names(ref);
    return (
      `DECLARE @n int; ` +
      `UPDATE ${t} SET ${s} = ${encrypt(ref, key, c, pk)} WHERE ${c} IS NOT NULL AND ` +
      `(${s} IS NULL OR ${decrypt(s, pk)} IS NULL OR ${decrypt(s, pk)} ` +
      `<> ${plaintextBytes(ref, c)}); SET @n = @@ROWCOUNT; ` +
      `UPDATE ${t} SET ${s} = NULL WHERE ${c} IS NULL AND ${s} IS NOT NULL; SET @n = @n + @@ROWCOUNT; ` +
      `SELECT @n AS n`
    );
  },

  countShadowMismatches: (ref: ColumnRef) => {
    const { t, c, s, pk } = names(ref);
    return (
      `SELECT COUNT(*) AS n FROM ${t} WHERE (${c} IS NULL AND ` +
      `${s} IS NOT NULL) OR (${c} IS NOT NULL AND ${s} IS NULL) ` +
      `OR (${c} IS NOT NULL AND (${decrypt(s, pk)} IS NULL OR ${decrypt(s, pk)} <> ${plaintextBytes(ref, c)}))`
    );
  },

  maxShadowBytes: (ref: ColumnRef) => `SELECT COALESCE(MAX(DATALENGTH(${names(ref).s})), 0) AS n FROM ${names(ref).t}`,

  lockTable: (ref: ColumnRef) => `SELECT TOP (0) 1 AS locked FROM ${q(ref.table)} WITH (TABLOCKX, HOLDLOCK)`,

  swap: (ref: ColumnRef) => {
    const { t, c, s } = names(ref);
    return (
      `ALTER TABLE ${t} DROP COLUMN ${c}; EXEC sys.sp_rename ` +
      `${tsqlLiteral(`${t}.${s}`)}, ${tsqlLiteral(ref.column)}, N'COLUMN'`
    );
  },

  /**
   * Per key GUID (the first 16 bytes of a cell); with `decrypt`, how many no open key opens with
   * the row's authenticator.
   */
  census: (ref: ColumnRef, withDecrypt: boolean) => {
    const { t, c, pk } = names(ref);
    const undecryptable = withDecrypt ? `SUM(CASE WHEN ${decrypt(c, pk)} IS NULL THEN 1 ELSE 0 END)` : 'NULL';
    return (
      `SELECT SUBSTRING(${c}, 1, 16) AS key_guid, COUNT(*) AS cells, ${undecryptable} ` +
      `AS undecryptable FROM ${t} WHERE ${c} IS NOT NULL GROUP BY SUBSTRING(${c}, 1, 16)`
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
   * Old key to new key inside the server: the decrypted bytes go straight back into
   * ENCRYPTBYKEY (no text conversion, so every byte of every cell is kept), the row's GUID as
   * authenticator on both sides. Cells that do not decrypt are never overwritten; they are
   * counted so the caller stops.
   */
  reencryptBatch: (ref: ColumnRef, from: KeyGuidExpr, to: KeyGuidExpr, limit: number) => {
    const { t, c, pk } = names(ref);
    return (
      `DECLARE @batch TABLE (id uniqueidentifier NOT NULL PRIMARY KEY, cell varbinary(max) NULL); ` +
      `INSERT INTO @batch (id, cell) SELECT TOP (${tsqlInteger(limit)}) ` +
      `${pk}, ENCRYPTBYKEY(${to}, ${decrypt(c, pk)}, 1, ${authenticator(pk)}) ` +
      `FROM ${t} WITH (UPDLOCK) WHERE SUBSTRING(${c}, 1, 16) = CONVERT(varbinary(16), ${from}); ` +
      `UPDATE target SET ${c} = b.cell FROM ${t} AS target JOIN ` +
      `@batch AS b ON target.${pk} = b.id WHERE b.cell IS NOT NULL; ` +
      `SELECT (SELECT COUNT(*) FROM @batch WHERE cell IS NOT NULL) AS written, ` +
      `(SELECT COUNT(*) FROM @batch WHERE cell IS NULL) AS undecryptable`
    );
  },

  cellBytes: (ref: ColumnRef) =>
    `SELECT COALESCE(SUM(CONVERT(bigint, DATALENGTH(${names(ref).c}))), 0) AS n FROM ${names(ref).t}`,

  sampleCells: (ref: ColumnRef, limit: number) => {
    const { t, c, pk } = names(ref);
    return (
      `SELECT TOP (${tsqlInteger(limit)}) CONVERT(nvarchar(36), ${pk}) AS id, ` +
      `${c} AS cell FROM ${t} WHERE ${c} IS NOT NULL ORDER BY NEWID()`
    );
  },
};
