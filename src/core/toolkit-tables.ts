import { isCellcryptError } from '../common/errors';
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Db, TableDefinition } from '../engines/engine';
import { upsert } from '../common/upsert';

/**
 * cellcrypt's own tables in the org database (schema `cellcrypt`, created by the engine):
 * - organization: one row, the id under which the key store keeps this org's secrets. It
 *   travels with a backup, so a restored org finds (or knowingly lacks) its key;
 * - audit: one row per install/change/activation (Dynamics' SqlEncryptionAudit: who, when),
 *   counted for the change quota, and per saved copy of the key (show-key); never a secret;
 * - ledger: one row per converted column: when, how many cells, which varbinary size.
 * Portable knex schema, so the SQL Server engine gets the same tables.
 */
export const SCHEMA = 'cellcrypt';
export const TABLES = { organization: 'organization', audit: 'audit', ledger: 'ledger' } as const;

/** The table definitions, also rendered as T-SQL by `cellcrypt script install` (knex's mssql schema builder). */
export const TOOLKIT_TABLE_DEFINITIONS: ReadonlyArray<readonly [string, TableDefinition]> = [
  [
    TABLES.organization,
    (t, knex) => {
      t.string('id', 36).primary();
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    },
  ],
  [
    TABLES.audit,
    (t, knex) => {
      t.increments('id');
      t.timestamp('created_on', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.string('created_by', 256).notNullable();
      t.string('operation', 32).notNullable();
      t.string('outcome', 16).notNullable();
      t.string('old_key_guid', 36);
      t.string('new_key_guid', 36);
      t.bigInteger('cells');
      t.integer('duration_ms');
      t.string('detail', 1000);
      t.index(['operation', 'created_on']);
    },
  ],
  [
    TABLES.ledger,
    (t, knex) => {
      t.string('table_name', 128).notNullable();
      t.string('column_name', 128).notNullable();
      t.string('state', 16).notNullable();
      t.integer('size_bytes').notNullable();
      t.string('key_guid', 36);
      t.bigInteger('cells');
      t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('finished_at', { useTz: true });
      t.primary(['table_name', 'column_name']);
    },
  ],
];

export async function createToolkitTables(knex: Knex): Promise<void> {
  for (const [name, define] of TOOLKIT_TABLE_DEFINITIONS) {
    if (!(await knex.schema.withSchema(SCHEMA).hasTable(name)))
      await knex.schema.withSchema(SCHEMA).createTable(name, (t) => define(t, knex));
  }
  const existing = await knex.withSchema(SCHEMA).table(TABLES.organization).first('id');
  if (!existing) await knex.withSchema(SCHEMA).table(TABLES.organization).insert({ id: randomUUID() });
}

/** The organization id, or undefined before the first install. */
export async function readOrganizationId(db: Db): Promise<string | undefined> {
  if (!(await db.schema.withSchema(SCHEMA).hasTable(TABLES.organization))) return undefined;
  const row = await db.withSchema(SCHEMA).table(TABLES.organization).first('id');
  return row?.id;
}

/** Gives the org a new id (a copy activated as an organization of its own). */
export async function writeOrganizationId(db: Db, id: string): Promise<void> {
  await db.withSchema(SCHEMA).table(TABLES.organization).update({ id });
}

export interface AuditEntry {
  createdBy: string;
  /**
   * `show-key`: the key was saved (--out, --shares); `detail` says how, never the key.
   * `rewrap`: a new certificate and master-key password; no key GUID, since no key changes.
   */
  operation: 'install' | 'change-key' | 'activate' | 'show-key' | 'rewrap';
  /** `refused`: stopped before any change (a refusal's exit 2 or 3); `failed`: stopped after. */
  outcome: 'succeeded' | 'failed' | 'refused';
  oldKeyGuid?: string;
  newKeyGuid?: string;
  cells?: number;
  durationMs?: number;
  detail?: string;
}

export async function writeAudit(db: Db, entry: AuditEntry): Promise<void> {
  await db
    .withSchema(SCHEMA)
    .table(TABLES.audit)
    .insert({
      created_by: entry.createdBy.slice(0, 256),
      operation: entry.operation,
      outcome: entry.outcome,
      old_key_guid: entry.oldKeyGuid ?? null,
      new_key_guid: entry.newKeyGuid ?? null,
      cells: entry.cells ?? null,
      duration_ms: entry.durationMs ?? null,
      detail: entry.detail?.slice(0, 1000) ?? null,
    });
}

export interface LedgerEntry {
  table: string;
  column: string;
  state: 'converting' | 'encrypted';
  sizeBytes: number;
  keyGuid?: string;
  cells?: number;
}

export async function writeLedger(db: Db, entry: LedgerEntry): Promise<void> {
  const row = {
    table_name: entry.table,
    column_name: entry.column,
    state: entry.state,
    size_bytes: entry.sizeBytes,
    key_guid: entry.keyGuid ?? null,
    cells: entry.cells ?? null,
  };
  const finished = entry.state === 'encrypted' ? { finished_at: db.fn.now() } : {};
  const { table_name, column_name, ...values } = row;
  await upsert(db, { schema: SCHEMA, table: TABLES.ledger }, { table_name, column_name }, { ...values, ...finished });
}

/**
 * The audit row of an operation that was refused or failed: the error's code and message (never
 * SQL: a statement that carried a secret is already cut from its error). Best effort: an org that
 * is not installed has no audit table to record in, and the error itself is what gets reported.
 */
export async function writeFailureAudit(
  db: Db,
  entry: Omit<AuditEntry, 'outcome' | 'detail'> & { outcome: 'failed' | 'refused' },
  error: unknown,
  detailPrefix = '',
): Promise<void> {
  const reason = isCellcryptError(error)
    ? `${error.code}: ${error.message}`
    : 'unexpected error (see the command output)';
  await writeAudit(db, { ...entry, detail: `${detailPrefix}${reason}` }).catch(() => undefined);
}

/**
 * Runs the read-only preparation of an operation: a refusal (exit 2 or 3) changes nothing but
 * leaves an audit row (who tried, what, why), as a failure does. A dry run (`record` false)
 * records nothing.
 */
export async function recordingRefusals<T>(
  db: Db,
  who: { createdBy: string; operation: AuditEntry['operation'] },
  record: boolean,
  work: () => Promise<T>,
): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } catch (error) {
    if (record && isCellcryptError(error) && error.exitCode !== 1)
      await writeFailureAudit(db, { ...who, outcome: 'refused', durationMs: Date.now() - started }, error);
    throw error;
  }
}

/** Successful operations of one kind in the last `minutes` (the change-key quota). */
export async function countRecentAudits(db: Db, operation: AuditEntry['operation'], minutes: number): Promise<number> {
  const row = await db
    .withSchema(SCHEMA)
    .table(TABLES.audit)
    .where({ operation, outcome: 'succeeded' })
    .andWhere('created_on', '>', new Date(Date.now() - minutes * 60_000))
    .count<{ n: string | number }>({ n: '*' })
    .first();
  return Number(row?.n ?? 0);
}

/**
 * When each key GUID was first created, from the audit rows of the installs and key changes
 * that created it. `activate` re-creates the key (SQL Server stamps a new create_date, as does
 * our PostgreSQL table), so the hierarchy alone dates a key from its last activation.
 */
export async function keyCreationTimes(db: Db): Promise<Map<string, Date>> {
  const rows = (await db
    .withSchema(SCHEMA)
    .table(TABLES.audit)
    .whereIn('operation', ['install', 'change-key'])
    .andWhere({ outcome: 'succeeded' })
    .whereNotNull('new_key_guid')
    .groupBy('new_key_guid')
    .select({ guid: 'new_key_guid' })
    .min({ first: 'created_on' })) as unknown as Array<{ guid: string; first: Date | string }>;
  return new Map(rows.map((row) => [String(row.guid).toUpperCase(), new Date(row.first)]));
}

/**
 * When the key with this GUID was last saved (`show-key --out` or `--shares`), or undefined: a
 * key nobody saved is lost with the key store, so doctor and status say so.
 */
export async function lastKeySave(db: Db, keyGuid: string): Promise<Date | undefined> {
  const row = (await db
    .withSchema(SCHEMA)
    .table(TABLES.audit)
    .where({ operation: 'show-key', outcome: 'succeeded', new_key_guid: keyGuid.toUpperCase() })
    .max({ last: 'created_on' })
    .first()) as { last?: Date | string | null } | undefined;
  return row?.last ? new Date(row.last) : undefined;
}
