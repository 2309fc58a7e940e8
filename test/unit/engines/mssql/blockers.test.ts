import { expect } from 'chai';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import type { ColumnRef } from '../../../../src/engines/engine';
import { BLOCKER_HINTS, BLOCKER_KINDS, blockersQuery, describeBlockers } from '../../../../src/engines/mssql/blockers';
import { shadowName } from '../../../../src/engines/mssql/column-statements';
import { escapeForKnex, quoteTsqlIdentifier, tsqlLiteral } from '../../../../src/engines/mssql/quote';
import { parseTsql } from '../../../support/tsql-grammar';
import { allStatementRules, tokenizeSql, tokenValue } from '../../../support/tsql-rules';

/**
 * Issue 14 (review BR2, BR3, WR1): the one SELECT that names what would stop DROP COLUMN /
 * sp_rename or keep the plaintext. No SQL Server runs here, so the text is proven with the
 * real T-SQL grammar and our rules, and its sources are checked one by one.
 */
const HOSTILE: ColumnRef[] = [
  { table: "T]'?; --", column: "C]'?;--", primaryKey: 'Id', maxLength: 50 },
  { table: 'Tab 😀 ]]', column: "O'Brien ? 𝄞", primaryKey: 'Id', maxLength: 50 },
];
const REFS = [...DYNAMICS_DEFAULT_COLUMNS, ...HOSTILE];

describe('mssql: what blocks the swap (blockersQuery)', () => {
  it('parses alone and inside IF EXISTS (...) THROW, and keeps our rules, hostile names included', () => {
    for (const ref of REFS) {
      const sql = blockersQuery(ref);
      const guarded = `IF EXISTS (${sql}) THROW 50000, N'blocked', 1;`;
      for (const text of [sql, guarded]) {
        expect(parseTsql(text), text.slice(0, 200)).to.deep.equal([]);
        expect(allStatementRules(text, { knex: false }), text.slice(0, 200)).to.deep.equal([]);
        // Also as knex would carry it (findBlockers sends it directly, a script may not).
        expect(allStatementRules(escapeForKnex(text)), text.slice(0, 200)).to.deep.equal([]);
      }
    }
  });

  it('is one SELECT usable as a subquery: no ORDER BY, DECLARE, CTE or statement separator', () => {
    const code = tokenizeSql(blockersQuery(HOSTILE[0])).filter((t) => t.kind === 'word' || t.kind === 'punct');
    const words = code.map((t) => t.text.toUpperCase());
    expect(words[0]).to.equal('SELECT');
    for (const banned of ['ORDER', 'DECLARE', 'WITH', 'EXEC', 'INSERT', 'UPDATE', 'DELETE', 'ALTER', 'DROP'])
      expect(words, banned).not.to.include(banned);
    expect(code.some((t) => t.text === ';')).to.equal(false);
  });

  it(
    'names reach the text only through the quoting helpers: ' +
      'the table as [..] in a literal, the column as a literal',
    () => {
      for (const ref of HOSTILE) {
        const tokens = tokenizeSql(blockersQuery(ref));
        const literals = tokens.filter((t) => t.kind === 'string').map(tokenValue);
        expect(literals).to.include(quoteTsqlIdentifier(ref.table)); // OBJECT_ID(N'[T]', N'U')
        expect(literals).to.include(ref.column); // COLUMNPROPERTY(..., N'C', 'ColumnId')
        expect(literals).to.include(quoteTsqlIdentifier(ref.column)); // CHARINDEX(N'[C]', definition)
        expect(blockersQuery(ref)).to.contain(tsqlLiteral(ref.column));
        // Nothing else carries the names: no bare or bracketed name in the code itself.
        const code = tokens.filter((t) => t.kind === 'word' || t.kind === 'quoted').map(tokenValue);
        expect(code).not.to.include(ref.table);
        expect(code).not.to.include(ref.column);
      }
    },
  );

  it('never looks at the shadow column, and the primary key only through the plaintext column', () => {
    for (const ref of REFS) {
      const sql = blockersQuery(ref);
      expect(sql).not.to.contain(shadowName(ref));
      expect(sql).not.to.contain(tsqlLiteral(ref.primaryKey));
    }
  });

  it('reads every source of the review: each kind has a branch, and each catalog view is read', () => {
    const sql = blockersQuery(DYNAMICS_DEFAULT_COLUMNS[0]);
    const branches = sql.split(' UNION ALL ');
    const kinds = branches.map((b) => /^SELECT CONVERT\(nvarchar\(20\), N'([a-z-]+)'\) AS kind/.exec(b)?.[1]);
    expect([...new Set(kinds)].sort()).to.deep.equal([...BLOCKER_KINDS].sort());
    const sources = [
      'sys.index_columns AS ic',
      'i.filter_definition',
      'sys.stats_columns AS sc',
      's.user_created = 1',
      'sys.default_constraints AS d',
      'c.default_object_id <> 0',
      'c.rule_object_id <> 0',
      'sys.check_constraints AS k',
      'sys.foreign_key_columns AS fc',
      'fc.referenced_column_id',
      'sys.computed_columns AS cc',
      'sd.is_schema_bound_reference = 1',
      'sys.fulltext_index_columns AS ft',
      'c.is_replicated = 1',
      'c.is_merge_published = 1',
      't.is_published = 1',
      't.is_tracked_by_cdc = 1',
      't.temporal_type <> 0',
      "N'AS_TRANSACTION_ID_START'",
    ];
    for (const source of sources) expect(sql, source).to.contain(source);
    // Auto-created statistics are dropped with the column: only user-created ones are listed.
    expect(sql).not.to.contain('auto_created');
  });

  it('compiles on SQL Server 2017/2019: no reference to 2022-only catalog columns (ledger_type)', () => {
    const words = tokenizeSql(blockersQuery(DYNAMICS_DEFAULT_COLUMNS[0])).map((t) => t.text.toLowerCase());
    for (const newer of ['ledger_type', 'ledger_type_desc', 'ledger_view_id', 'is_dropped_ledger_table'])
      expect(words, newer).not.to.include(`t.${newer}`).and.not.to.include(newer);
  });

  it('describeBlockers: the names of one kind together, then the way out of that kind', () => {
    const described = describeBlockers([
      { kind: 'index', blocker: 'index IX_a' },
      { kind: 'statistics', blocker: 'statistics _dta_stat_1' },
      { kind: 'index', blocker: 'unique constraint UQ_b' },
      { kind: 'index', blocker: 'index IX_a' },
      { kind: 'replication', blocker: 'replication (published table)' },
    ]);
    expect(described).to.deep.equal([
      `index IX_a, unique constraint UQ_b (${BLOCKER_HINTS.index})`,
      `statistics _dta_stat_1 (${BLOCKER_HINTS.statistics})`,
      `replication (published table) (${BLOCKER_HINTS.replication})`,
    ]);
    expect(BLOCKER_HINTS.replication).to.match(/sp_droparticle/);
    expect(BLOCKER_HINTS.cdc).to.match(/sp_cdc_disable_table/);
    expect(BLOCKER_HINTS.statistics).to.match(/DROP STATISTICS/);
    expect(describeBlockers([])).to.deep.equal([]);
  });
});
