import { expect } from 'chai';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import type { ColumnRef } from '../../../../src/engines/engine';
import { REFRESH_FAILED, refreshDependentModules } from '../../../../src/engines/mssql/dependent-modules';
import { escapeForKnex, quoteTsqlIdentifier, tsqlLiteral } from '../../../../src/engines/mssql/quote';
import { parseTsql } from '../../../support/tsql-grammar';
import { allStatementRules, tokenizeSql, tokenValue } from '../../../support/tsql-rules';

/**
 * Issue 14 (review WR2): the refresh of views and modules run in the swap's transaction. The
 * text is proven with the real T-SQL grammar and our rules; what it refreshes, in which order
 * and how it fails is read from the text, as no SQL Server runs here.
 */
const HOSTILE: ColumnRef[] = [
  { table: "T]'?; --", column: "C]'?", primaryKey: 'Id', maxLength: 50 },
  { table: 'Tab 😀 ]] 𝄞', column: 'C', primaryKey: 'Id', maxLength: 50 },
];

describe('mssql: refresh of dependent views and modules (refreshDependentModules)', () => {
  it('parses with the T-SQL grammar and keeps our rules, hostile table names included', () => {
    for (const ref of [...DYNAMICS_DEFAULT_COLUMNS, ...HOSTILE]) {
      const sql = refreshDependentModules(ref);
      expect(parseTsql(sql), sql.slice(0, 200)).to.deep.equal([]);
      expect(allStatementRules(sql, { knex: false }), sql.slice(0, 200)).to.deep.equal([]);
      expect(allStatementRules(escapeForKnex(sql)), sql.slice(0, 200)).to.deep.equal([]);
    }
  });

  it('the grammar does catch a broken batch (so the test above proves something)', () => {
    const sql = refreshDependentModules(DYNAMICS_DEFAULT_COLUMNS[0]);
    expect(parseTsql(sql.replace('END CATCH', 'END CATCHES'))).not.to.deep.equal([]);
    expect(parseTsql(sql.replace('BEGIN TRY', 'BEGIN TRY ('))).not.to.deep.equal([]);
  });

  it('the table name reaches the text only as a literal (OBJECT_ID and the by-name match), never as SQL', () => {
    for (const ref of HOSTILE) {
      const tokens = tokenizeSql(refreshDependentModules(ref));
      const literals = tokens.filter((t) => t.kind === 'string').map(tokenValue);
      expect(literals).to.include(quoteTsqlIdentifier(ref.table));
      expect(literals).to.include(ref.table);
      expect(refreshDependentModules(ref)).to.contain(tsqlLiteral(ref.table));
      const code = tokens.filter((t) => t.kind === 'word' || t.kind === 'quoted').map(tokenValue);
      expect(code).not.to.include(ref.table);
    }
  });

  it('views by sp_refreshview, other modules by sp_refreshsqlmodule, DDL triggers with their namespace', () => {
    const sql = refreshDependentModules(DYNAMICS_DEFAULT_COLUMNS[0]);
    expect(sql).to.contain("IF @refresh_kind = 'V' EXEC @refresh_rc = sys.sp_refreshview @viewname = @refresh_name");
    expect(sql).to.contain(
      "ELSE IF @refresh_kind = 'DT' EXEC @refresh_rc = sys.sp_refreshsqlmodule @name = @refresh_name, " +
        "@namespace = N'DATABASE_DDL_TRIGGER'",
    );
    expect(sql).to.contain('ELSE EXEC @refresh_rc = sys.sp_refreshsqlmodule @name = @refresh_name');
    // Only module types sp_refreshsqlmodule accepts, never schema-bound ones, never CLR (no sql_modules row).
    expect(sql).to.contain("o.type IN ('V', 'P', 'FN', 'IF', 'TF', 'TR')");
    expect(sql.match(/s\.is_schema_bound = 0/g)).to.have.length(2);
    expect(sql.match(/JOIN sys\.sql_modules AS s/g)).to.have.length(2);
    // Names built by QUOTENAME and passed as parameters: no dynamic SQL text at all.
    expect(sql).to.contain("QUOTENAME(SCHEMA_NAME(o.schema_id)) + N'.' + QUOTENAME(o.name)");
    expect(sql).not.to.match(/sp_executesql|EXEC\s*\(/i);
  });

  it('finds modules transitively and orders them by the longest path from the table', () => {
    const sql = refreshDependentModules(DYNAMICS_DEFAULT_COLUMNS[0]);
    expect(sql).to.contain('JOIN @refresh_found AS f ON f.id = d.referenced_id WHERE f.depth = @refresh_level - 1');
    expect(sql).to.contain('WHERE p.id <> m.id AND p.depth >= m.depth');
    expect(sql).to.contain('FROM sys.triggers AS tr WHERE tr.parent_id = @refresh_table');
    expect(sql).to.contain('ORDER BY depth, n');
    // Both loops are bounded, whatever cycles procedures have.
    expect(sql.match(/WHILE @refresh_added > 0 AND @refresh_level < 32/g)).to.have.length(2);
  });

  it(
    'a module that does not compile raises REFRESH_FAILED naming it ' +
      '(the swap rolls back), and it ends with the count',
    () => {
      const sql = refreshDependentModules(DYNAMICS_DEFAULT_COLUMNS[0]);
      expect(REFRESH_FAILED).to.be.at.least(50000); // THROW takes user numbers only
      expect(sql.match(new RegExp(`THROW ${REFRESH_FAILED}, @refresh_why, 1`, 'g'))).to.have.length(2);
      expect(sql).to.contain('BEGIN CATCH');
      expect(sql).to.contain('IF @refresh_rc <> 0');
      expect(sql.trimEnd()).to.match(/SELECT @refresh_count AS refreshed$/);
      // A lock wait or a deadlock is no module's fault: raised as itself, so errors.ts names its way out.
      expect(sql).to.contain('BEGIN CATCH IF ERROR_NUMBER() IN (1205, 1222) THROW; SET @refresh_why');
    },
  );

  it('lockTimeoutMs: starts with SET LOCK_TIMEOUT as the swap does (0 = no limit); none for the scripts', () => {
    const ref = DYNAMICS_DEFAULT_COLUMNS[0];
    expect(refreshDependentModules(ref, 5000)).to.match(/^SET LOCK_TIMEOUT 5000; DECLARE @refresh_table/);
    expect(refreshDependentModules(ref, 0)).to.match(/^SET LOCK_TIMEOUT -1; /);
    expect(refreshDependentModules(ref)).to.match(/^DECLARE @refresh_table/);
    expect(parseTsql(refreshDependentModules(ref, 5000))).to.deep.equal([]);
    expect(() => refreshDependentModules(ref, 1.5)).to.throw(/not a non-negative integer/);
  });
});
