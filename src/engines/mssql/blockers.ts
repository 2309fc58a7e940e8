import type { ColumnRef } from '../engine';
import { quoteTsqlIdentifier as q, tsqlLiteral } from './quote';

/**
 * What stops the swap of one column on SQL Server (`ALTER TABLE T DROP COLUMN C`, then
 * `sp_rename` of the shadow), or what would keep the plaintext after it, as rows: one row per
 * blocking object, `blocker` (nvarchar) naming it and `kind` (one of BLOCKER_KINDS) choosing
 * the way out. Usable as a subquery (`IF EXISTS (<this>) THROW …` in the sqlcmd scripts): one
 * SELECT, no ORDER BY, no DECLARE, no CTE. Sources (review BR2, BR3, WR1; alter-table and
 * catalog-view docs):
 * - DROP COLUMN refuses a column in an index (key or INCLUDE, or a filtered index's WHERE), in
 *   user-created statistics (auto-created ones are dropped silently, so they are not listed),
 *   with a default (constraint or bound), a bound rule, a CHECK or FOREIGN KEY constraint, used
 *   by a computed column, by a schema-bound object (sys.sql_expression_dependencies tracks
 *   schema-bound references per column), by a full-text index, or partitioning the table;
 * - a replicated column cannot be renamed (4928), and the rename is not replicated;
 * - CDC, a system-versioned table's history and a ledger table keep the plaintext.
 * The primary key is the row's authenticator, never the plaintext column, so the PK index is not
 * matched; the shadow column is never looked at.
 *
 * Ledger tables: `sys.tables.ledger_type` exists only on SQL Server 2022+, and a static
 * reference to it does not compile on 2017/2019. Their GENERATED ALWAYS columns are read
 * instead: `sys.columns.generated_always_type_desc` exists since 2016, and its text
 * (AS_TRANSACTION_ID_START ...) is stable while the numbers differ between doc versions.
 */
export const BLOCKER_KINDS = [
  'index',
  'statistics',
  'default',
  'rule',
  'check',
  'foreign-key',
  'computed',
  'schema-bound',
  'full-text',
  'replication',
  'cdc',
  'temporal',
  'ledger',
] as const;
export type BlockerKind = (typeof BLOCKER_KINDS)[number];

/** Catalog names compared or joined in one UNION: one collation, so no branch conflicts with another. */
const name = (expr: string) => `${expr} COLLATE DATABASE_DEFAULT`;

export function blockersQuery(ref: ColumnRef): string {
  const table = `OBJECT_ID(${tsqlLiteral(q(ref.table))}, N'U')`;
  const column = `COLUMNPROPERTY(${table}, ${tsqlLiteral(ref.column)}, 'ColumnId')`;
  // SQL Server stores CHECK, computed-column and filter definitions with bracketed names.
  const inText = (definition: string) => `CHARINDEX(${tsqlLiteral(q(ref.column))}, ${definition}) > 0`;
  const row = (kind: BlockerKind, label: string, rest: string) =>
    `SELECT CONVERT(nvarchar(20), N'${kind}') AS kind, CONVERT(nvarchar(400), ${label}) AS blocker ${rest}`;
  const qualified = (id: string) => `${name(`OBJECT_SCHEMA_NAME(${id})`)} + N'.' + ${name(`OBJECT_NAME(${id})`)}`;
  const flags = `FROM sys.tables AS t WHERE t.object_id = ${table} AND`;

  return [
    row(
      'index',
      `CASE WHEN i.is_primary_key = 1 THEN N'primary key ' WHEN i.is_unique_constraint = 1 ` +
        `THEN N'unique constraint ' WHEN i.index_id = 0 THEN N'table partitioning' ELSE N'index ' END + ` +
        `COALESCE(${name('i.name')}, N'')`,
      `FROM sys.indexes AS i WHERE i.object_id = ${table} AND (EXISTS (SELECT 1 FROM sys.index_columns AS ic ` +
        `WHERE ic.object_id = i.object_id AND ic.index_id = i.index_id AND ic.column_id = ${column}) ` +
        `OR (i.has_filter = 1 AND ${inText('i.filter_definition')}))`,
    ),
    row(
      'statistics',
      `N'statistics ' + ${name('s.name')}`,
      `FROM sys.stats AS s WHERE s.object_id = ${table} AND s.user_created = 1 AND (EXISTS (SELECT 1 ` +
        `FROM sys.stats_columns AS sc WHERE sc.object_id = s.object_id AND sc.stats_id = s.stats_id ` +
        `AND sc.column_id = ${column}) OR (s.has_filter = 1 AND ${inText('s.filter_definition')}))`,
    ),
    row(
      'default',
      `N'default constraint ' + ${name('d.name')}`,
      `FROM sys.default_constraints AS d WHERE d.parent_object_id = ${table} AND d.parent_column_id = ${column}`,
    ),
    // sp_bindefault / sp_bindrule: stand-alone objects, not in sys.default_constraints.
    row(
      'default',
      `N'bound default ' + ${qualified('c.default_object_id')}`,
      `FROM sys.columns AS c WHERE c.object_id = ${table} AND c.column_id = ${column} AND ` +
        `c.default_object_id <> 0 AND NOT EXISTS (SELECT 1 FROM sys.default_constraints AS dc ` +
        `WHERE dc.object_id = c.default_object_id)`,
    ),
    row(
      'rule',
      `N'bound rule ' + ${qualified('c.rule_object_id')}`,
      `FROM sys.columns AS c WHERE c.object_id = ${table} AND c.column_id = ${column} AND c.rule_object_id <> 0`,
    ),
    row(
      'check',
      `N'check constraint ' + ${name('k.name')}`,
      `FROM sys.check_constraints AS k WHERE k.parent_object_id = ${table} AND ` +
        `(k.parent_column_id = ${column} OR ${inText('k.definition')})`,
    ),
    row(
      'foreign-key',
      `N'foreign key ' + ${qualified('f.object_id')}`,
      `FROM sys.foreign_keys AS f WHERE EXISTS (SELECT 1 FROM sys.foreign_key_columns AS fc ` +
        `WHERE fc.constraint_object_id = f.object_id AND ((fc.parent_object_id = ${table} AND ` +
        `fc.parent_column_id = ${column}) OR (fc.referenced_object_id = ${table} AND ` +
        `fc.referenced_column_id = ${column})))`,
    ),
    row(
      'computed',
      `N'computed column ' + ${name('cc.name')}`,
      `FROM sys.computed_columns AS cc WHERE cc.object_id = ${table} AND ` +
        `(cc.column_id = ${column} OR ${inText('cc.definition')})`,
    ),
    // Views, functions and the like; constraints and the table's own computed columns are listed above.
    row(
      'schema-bound',
      `CASE WHEN o.type = 'V' THEN N'schema-bound view ' WHEN o.type IN ('FN', 'IF', 'TF') ` +
        `THEN N'schema-bound function ' ELSE N'schema-bound object ' END + ${qualified('o.object_id')}`,
      `FROM sys.objects AS o WHERE o.object_id <> ${table} AND o.type NOT IN ('C', 'D') AND EXISTS ` +
        `(SELECT 1 FROM sys.sql_expression_dependencies AS sd WHERE sd.referencing_id = o.object_id ` +
        `AND sd.referenced_id = ${table} AND sd.referenced_minor_id = ${column} AND ` +
        `sd.is_schema_bound_reference = 1)`,
    ),
    row(
      'full-text',
      `N'full-text index'`,
      `FROM sys.fulltext_index_columns AS ft WHERE ft.object_id = ${table} AND ` +
        `(ft.column_id = ${column} OR ft.type_column_id = ${column})`,
    ),
    row(
      'replication',
      `CASE WHEN c.is_merge_published = 1 THEN N'replication (merge-published column)' ` +
        `ELSE N'replication (replicated column)' END`,
      `FROM sys.columns AS c WHERE c.object_id = ${table} AND c.column_id = ${column} AND ` +
        `(c.is_replicated = 1 OR c.is_merge_published = 1 OR c.is_non_sql_subscribed = 1 OR c.is_dts_replicated = 1)`,
    ),
    row(
      'replication',
      `CASE WHEN t.is_merge_published = 1 THEN N'replication (merge-published table)' WHEN t.is_published = 1 ` +
        `THEN N'replication (published table)' WHEN t.is_sync_tran_subscribed = 1 ` +
        `THEN N'replication (updatable subscription)' ELSE N'replication (replicated table)' END`,
      `${flags} (t.is_replicated = 1 OR t.is_published = 1 OR t.is_merge_published = 1 ` +
        `OR t.is_sync_tran_subscribed = 1)`,
    ),
    row('cdc', `N'change data capture'`, `${flags} t.is_tracked_by_cdc = 1`),
    row(
      'temporal',
      `CASE WHEN t.temporal_type = 1 THEN N'history table of a system-versioned (temporal) table' ` +
        `ELSE N'system-versioned (temporal) table' END`,
      `${flags} t.temporal_type <> 0`,
    ),
    row(
      'ledger',
      `N'ledger table'`,
      `FROM sys.tables AS t WHERE t.object_id = ${table} AND EXISTS (SELECT 1 FROM sys.columns AS lc ` +
        `WHERE lc.object_id = t.object_id AND lc.generated_always_type_desc IN (N'AS_TRANSACTION_ID_START', ` +
        `N'AS_TRANSACTION_ID_END', N'AS_SEQUENCE_NUMBER_START', N'AS_SEQUENCE_NUMBER_END'))`,
    ),
  ].join(' UNION ALL ');
}

/** The way out of each kind, for the refusal (planning refuses before any change). */
export const BLOCKER_HINTS: Record<BlockerKind, string> = {
  index:
    'drop it (or take the column out of it) before install; an index over ciphertext serves no ' +
    'lookup by value, and a table partitioned on the column cannot be converted',
  statistics: 'DROP STATISTICS before install; statistics over ciphertext are of no use',
  default: 'drop the default (ALTER TABLE … DROP CONSTRAINT, or sp_unbindefault): a default cannot be encrypted',
  rule: 'unbind it (sp_unbindrule) before install',
  check: 'drop the constraint: a check on the plaintext cannot hold for ciphertext',
  'foreign-key': 'drop the foreign key: an encrypted column cannot be a key',
  computed: 'drop the computed column or change it not to use this column',
  'schema-bound': 'ALTER it without WITH SCHEMABINDING, or without this column, before install',
  'full-text': 'remove the column from the full-text index (ALTER FULLTEXT INDEX … DROP (column)) before install',
  replication:
    'remove the table from its publication (sp_droparticle / sp_dropmergearticle), install, ' +
    'then add it back and reinitialize the subscriptions',
  cdc:
    'disable change data capture on the table (sys.sp_cdc_disable_table) before install, and ' +
    'purge its capture table: it holds the plaintext',
  temporal: 'SET (SYSTEM_VERSIONING = OFF) before install; the history table keeps every plaintext version, clear it',
  ledger: 'a ledger table keeps every dropped value for ever: its column cannot be encrypted in place',
};

/** "index IX_a, index IX_b (drop it …)": the blockers of one kind, then its way out. */
export function describeBlockers(rows: ReadonlyArray<{ kind: string; blocker: string }>): string[] {
  const byKind = new Map<string, string[]>();
  for (const { kind, blocker } of rows) byKind.set(kind, [...(byKind.get(kind) ?? []), blocker]);
  return [...byKind].map(([kind, names]) => {
    const hint = BLOCKER_HINTS[kind as BlockerKind];
    return `${[...new Set(names)].join(', ')}${hint ? ` (${hint})` : ''}`;
  });
}
