import type { Db, DemoOps, DemoTableSpec } from '../engine';
import { DEMO_TABLES } from '../demo-tables';
import { query } from './execute';
import { quoteTsqlIdentifier as q, tsqlInteger } from './quote';

/**
 * The same Dynamics-shaped demo tables on SQL Server: uniqueidentifier keys, nvarchar secrets,
 * rows generated inside the server from a numbers CTE, with the same mix of NULLs, empty
 * strings, values at the declared length, and non-BMP text.
 */
export const createTableStatement = (spec: DemoTableSpec) =>
  `IF OBJECT_ID(N'${q(spec.table).replace(/'/g, "''")}', N'U') IS NULL CREATE TABLE ${q(spec.table)} ` +
  `(${q(spec.primaryKey)} uniqueidentifier NOT NULL PRIMARY KEY, [Name] nvarchar(100) NOT NULL, ` +
  spec.secrets.map((s) => `${q(s.column)} nvarchar(${tsqlInteger(s.maxLength)}) NULL`).join(', ') +
  ')';

function demoValue(maxLength: number): string {
  return (
    `CASE WHEN i % 10 = 0 THEN NULL WHEN i % 20 = 1 THEN N'' WHEN ` +
    `i % 50 = 2 THEN REPLICATE(N'x', ${tsqlInteger(maxLength)}) ` +
    `WHEN i % 7 = 3 THEN N'Pässwörd-' + CONVERT(nvarchar(12), i) + N'-пароль-密码-😀𝐀' ` +
    `ELSE N'Pw!' + LEFT(CONVERT(nvarchar(64), NEWID()), 12 + i % 20) END`
  );
}

export const insertRowsStatement = (spec: DemoTableSpec, rows: number) =>
  `WITH digits AS (SELECT d FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS v(d)), ` +
  `numbers AS (SELECT TOP (${tsqlInteger(rows)}) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS i ` +
  `FROM digits a, digits b, digits c, digits d, digits e, digits f, digits g) ` +
  `INSERT INTO ${q(spec.table)} (${q(spec.primaryKey)}, [Name], ${spec.secrets.map((s) => q(s.column)).join(', ')}) ` +
  `SELECT NEWID(), N'demo ' + CONVERT(nvarchar(12), i), ` +
  `${spec.secrets.map((s) => demoValue(s.maxLength)).join(', ')} FROM numbers`;

export const mssqlDemo: DemoOps = {
  tables: DEMO_TABLES,
  async createTable(db: Db, spec) {
    await query(db, createTableStatement(spec), `create ${spec.table}`);
  },
  async insertRows(db: Db, spec, rows) {
    await query(db, insertRowsStatement(spec, rows), `seed ${spec.table}`);
    return rows;
  },
};
