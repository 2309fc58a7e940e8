import type { Db, DemoOps, DemoTableSpec } from '../engine';
import { DEMO_TABLES } from '../demo-tables';
import { query } from './execute';
import { quoteTsqlIdentifier as q, tsqlInteger, tsqlLiteral } from './quote';

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

/** Dynamics names the entity view after its Base table: `Mailbox` over `MailboxBase`. */
const entityViewName = (spec: DemoTableSpec) => spec.table.replace(/Base$/, '');

/**
 * As in a real org: an entity view over the Base table and a Filtered view over that (granted to
 * public), so every demo meets the views the swap must keep working (sp_refreshview). CREATE VIEW
 * must start its batch, hence EXEC of a literal.
 */
export const createViewStatements = (spec: DemoTableSpec): string[] => {
  const entity = entityViewName(spec);
  const filtered = `Filtered${entity}`;
  const view = (name: string, over: string) =>
    `IF OBJECT_ID(${tsqlLiteral(q(name))}, N'V') IS NULL ` +
    `EXEC (${tsqlLiteral(`CREATE VIEW ${q(name)} AS SELECT * FROM ${q(over)}`)})`;
  return [view(entity, spec.table), view(filtered, entity), `GRANT SELECT ON ${q(filtered)} TO public`];
};

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
    for (const sql of createViewStatements(spec)) await query(db, sql, `create the views over ${spec.table}`);
  },
  async insertRows(db: Db, spec, rows) {
    await query(db, insertRowsStatement(spec, rows), `seed ${spec.table}`);
    return rows;
  },
};
