import type { ColumnRef } from '../engine';
import { quoteTsqlIdentifier as q, tsqlInteger, tsqlLiteral } from './quote';

/** The error number the refresh raises when a view or module over the table no longer compiles. */
export const REFRESH_FAILED = 51014;

/**
 * T-SQL, one batch-safe statement list (no GO, no CREATE), run right after the swap in the same
 * transaction: refreshes every view (sp_refreshview) and module (sp_refreshsqlmodule) that
 * references the table, so entity and Filtered views see the new varbinary column instead of
 * the metadata of the dropped nvarchar one (review WR2; sp-refreshview, sp-rename docs).
 *
 * - Found through sys.sql_expression_dependencies, transitively (a Filtered view over an entity
 *   view over the Base table), plus the table's own DML triggers; a reference by name whose id
 *   SQL Server could not resolve (`referenced_id` NULL) counts too: one refresh too many is harmless.
 * - Refreshed in dependency order (the longest path from the table first), so a view over a
 *   view sees its base already refreshed.
 * - Schema-bound modules cannot be refreshed (and need not be: one that uses the column blocks
 *   the swap, see blockers.ts); CLR modules have no sys.sql_modules row and are skipped.
 * - Database DDL triggers need @namespace = N'DATABASE_DDL_TRIGGER' and a one-part name.
 * - Names reach the procedures as parameters built with QUOTENAME, never as SQL text.
 * - A module that no longer compiles raises REFRESH_FAILED naming it, which ends the batch and
 *   rolls the swap back: the column stays plaintext, the encrypted copy is kept.
 * - A lock wait or a deadlock (1222, 1205) is raised as itself: it is no module's fault.
 * `lockTimeoutMs` (the engine's; the scripts pass none) starts it with SET LOCK_TIMEOUT, as the
 * swap before it: sp_refreshview waits for every reader of the view (0 = no limit).
 * Ends with `SELECT … AS refreshed`, the number refreshed. No secret is involved.
 */
export function refreshDependentModules(ref: ColumnRef, lockTimeoutMs?: number): string {
  const table = `OBJECT_ID(${tsqlLiteral(q(ref.table))}, N'U')`;
  const dependency = 'sys.sql_expression_dependencies AS d';
  const modules = 'd.referencing_class IN (1, 12) AND d.referencing_id <> @refresh_table';
  const lockTimeout =
    lockTimeoutMs === undefined ? [] : [`SET LOCK_TIMEOUT ${lockTimeoutMs === 0 ? '-1' : tsqlInteger(lockTimeoutMs)}`];
  return [
    ...lockTimeout,
    `DECLARE @refresh_table int = ${table}, @refresh_level int = 1, @refresh_added int, @refresh_rc int`,
    `DECLARE @refresh_n int, @refresh_name nvarchar(776), @refresh_kind char(2), @refresh_count int = 0`,
    `DECLARE @refresh_why nvarchar(2048)`,
    `DECLARE @refresh_found TABLE (id int NOT NULL PRIMARY KEY, class tinyint NOT NULL, depth int NOT NULL)`,
    `DECLARE @refresh_todo TABLE (n int IDENTITY(1, 1) PRIMARY KEY, depth int NOT NULL, ` +
      `name nvarchar(776) NOT NULL, kind char(2) NOT NULL)`,
    // Direct references: by id, or by a name SQL Server did not resolve; and the table's triggers.
    `INSERT INTO @refresh_found (id, class, depth) SELECT DISTINCT d.referencing_id, d.referencing_class, 1 ` +
      `FROM ${dependency} WHERE ${modules} AND (d.referenced_id = @refresh_table OR (d.referenced_id IS NULL ` +
      `AND d.referenced_server_name IS NULL AND d.referenced_database_name IS NULL AND ` +
      `d.referenced_entity_name = ${tsqlLiteral(ref.table)} AND (d.referenced_schema_name IS NULL OR ` +
      `d.referenced_schema_name = OBJECT_SCHEMA_NAME(@refresh_table)))) ` +
      `UNION SELECT tr.object_id, 1, 1 FROM sys.triggers AS tr WHERE tr.parent_id = @refresh_table`,
    `SET @refresh_added = @@ROWCOUNT`,
    // What references those, level by level (each module once; bounded against cycles).
    `WHILE @refresh_added > 0 AND @refresh_level < 32 BEGIN ` +
      `SET @refresh_level = @refresh_level + 1; ` +
      `INSERT INTO @refresh_found (id, class, depth) SELECT DISTINCT d.referencing_id, d.referencing_class, ` +
      `@refresh_level FROM ${dependency} JOIN @refresh_found AS f ON f.id = d.referenced_id ` +
      `WHERE f.depth = @refresh_level - 1 AND ${modules} AND NOT EXISTS ` +
      `(SELECT 1 FROM @refresh_found AS x WHERE x.id = d.referencing_id); ` +
      `SET @refresh_added = @@ROWCOUNT; END`,
    // Depth = the longest path from the table, so every module comes after all it depends on.
    `SET @refresh_added = 1`,
    `SET @refresh_level = 0`,
    `WHILE @refresh_added > 0 AND @refresh_level < 32 BEGIN ` +
      `SET @refresh_level = @refresh_level + 1; ` +
      `UPDATE m SET depth = p.depth + 1 FROM @refresh_found AS m JOIN ${dependency} ON d.referencing_id = m.id ` +
      `JOIN @refresh_found AS p ON p.id = d.referenced_id WHERE p.id <> m.id AND p.depth >= m.depth; ` +
      `SET @refresh_added = @@ROWCOUNT; END`,
    `INSERT INTO @refresh_todo (depth, name, kind) ` +
      `SELECT f.depth, QUOTENAME(SCHEMA_NAME(o.schema_id)) + N'.' + QUOTENAME(o.name), o.type ` +
      `FROM @refresh_found AS f JOIN sys.objects AS o ON o.object_id = f.id JOIN sys.sql_modules AS s ` +
      `ON s.object_id = f.id WHERE f.class = 1 AND s.is_schema_bound = 0 ` +
      `AND o.type IN ('V', 'P', 'FN', 'IF', 'TF', 'TR') ` +
      `UNION ALL SELECT f.depth, QUOTENAME(tr.name), 'DT' FROM @refresh_found AS f JOIN sys.triggers AS tr ` +
      `ON tr.object_id = f.id JOIN sys.sql_modules AS s ON s.object_id = f.id ` +
      `WHERE f.class = 12 AND tr.parent_class = 0 AND s.is_schema_bound = 0`,
    `WHILE 1 = 1 BEGIN ` +
      `SET @refresh_n = NULL; ` +
      `SELECT TOP (1) @refresh_n = n, @refresh_name = name, @refresh_kind = kind FROM @refresh_todo ` +
      `ORDER BY depth, n; ` +
      `IF @refresh_n IS NULL BREAK; ` +
      `DELETE FROM @refresh_todo WHERE n = @refresh_n; ` +
      `BEGIN TRY ` +
      `IF @refresh_kind = 'V' EXEC @refresh_rc = sys.sp_refreshview @viewname = @refresh_name; ` +
      `ELSE IF @refresh_kind = 'DT' EXEC @refresh_rc = sys.sp_refreshsqlmodule @name = @refresh_name, ` +
      `@namespace = N'DATABASE_DDL_TRIGGER'; ` +
      `ELSE EXEC @refresh_rc = sys.sp_refreshsqlmodule @name = @refresh_name; ` +
      `END TRY BEGIN CATCH ` +
      `IF ERROR_NUMBER() IN (1205, 1222) THROW; ` +
      `SET @refresh_why = CONCAT(N'cannot refresh ', @refresh_name, N' over the encrypted column (error ', ` +
      `ERROR_NUMBER(), N'): ', ERROR_MESSAGE()); ` +
      `THROW ${REFRESH_FAILED}, @refresh_why, 1; ` +
      `END CATCH; ` +
      `IF @refresh_rc <> 0 BEGIN ` +
      `SET @refresh_why = CONCAT(N'cannot refresh ', @refresh_name, N' over the encrypted column (return code ', ` +
      `@refresh_rc, N')'); ` +
      `THROW ${REFRESH_FAILED}, @refresh_why, 1; END; ` +
      `SET @refresh_count = @refresh_count + 1; END`,
    `SELECT @refresh_count AS refreshed`,
  ].join('; ');
}
