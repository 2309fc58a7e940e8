import { randomUUID } from 'node:crypto';
import type { Db } from '../../src/engines/engine';
import { requireActive, withOpenKeys } from '../../src/core/key-access';
import type { SensitiveColumn } from '../../src/core/registry';
import type { Toolkit } from '../../src/core/toolkit';

/** Test helpers that look at an org's data directly (never through the code under test's census). */

export const q = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** A checksum of every row of the given tables, for "nothing changed" assertions. */
export async function tableChecksums(db: Db, tables: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const table of tables) {
    const present = await db.raw('select to_regclass(?) is not null as present', [q(table)]);
    if (!present.rows[0].present) {
      out[table] = 'absent';
      continue;
    }
    const columns = await db.raw(
      `select string_agg(column_name || ':' || data_type, ',' order by ordinal_position) as shape
         from information_schema.columns where table_schema = current_schema() and table_name = ?`,
      [table],
    );
    const rows = await db.raw(
      `select md5(coalesce(string_agg(t::text, '|' order by ` +
        `t::text), '')) as sum, count(*)::int as n from ${q(table)} t`,
    );
    out[table] = `${columns.rows[0].shape} rows=${rows.rows[0].n} md5=${rows.rows[0].sum}`;
  }
  return out;
}

export const DEMO_TABLE_NAMES = ['EmailServerProfileBase', 'MailboxBase', 'QueueBase', 'UserSettingsBase'];

/** Plaintext rows an upgraded org might hold: every case conversion must get right. */
export const TRICKY_VALUES: ReadonlyArray<string | null> = [
  null,
  '',
  'x'.repeat(200),
  'plain-ascii-Passw0rd!',
  'Pässwörd-пароль-密码',
  '😀𝐀 non-BMP 🔑',
  "quote ' bracket ] question ? semicolon ; dash --",
  'e\u0301 combining, \u05E9\u05DC\u05D5\u05DD RTL',
];

export async function insertRows(
  db: Db,
  column: SensitiveColumn,
  values: ReadonlyArray<string | null>,
): Promise<Map<string, string | null>> {
  const expected = new Map<string, string | null>();
  for (const value of values) {
    const id = randomUUID();
    const extra = column.table === 'UserSettingsBase' ? {} : { Name: 'test row' };
    await db.table(column.table).insert({ [column.primaryKey]: id, [column.column]: value, ...extra });
    expected.set(id, value);
  }
  return expected;
}

/** Every row's value as the database decrypts it with the row's authenticator. */
export async function decryptedValues(tk: Toolkit, column: SensitiveColumn): Promise<Map<string, string | null>> {
  const { access } = await requireActive(tk);
  const rows = await withOpenKeys(tk, access, (trx) =>
    trx.raw(
      `select ${q(column.primaryKey)}::text as id, ${q(column.column)} is null as is_null, ` +
        `cellcrypt.decrypt_text(${q(column.column)}, ${q(column.primaryKey)}) as value from ${q(column.table)}`,
    ),
  );
  return new Map(
    rows.rows.map((r: { id: string; is_null: boolean; value: string | null }) => [
      r.id,
      r.is_null ? null : (r.value ?? '<undecryptable>'),
    ]),
  );
}

/** The raw cells of a column by primary key. */
export async function rawCells(db: Db, column: SensitiveColumn): Promise<Map<string, Buffer | null>> {
  const rows = await db.raw(
    `select ${q(column.primaryKey)}::text as id, ${q(column.column)} as cell from ${q(column.table)}`,
  );
  return new Map(
    rows.rows.map((r: { id: string; cell: Uint8Array | null }) => [r.id, r.cell ? Buffer.from(r.cell) : null]),
  );
}

/**
 * Drops the demo's entity and Filtered views of a Base table, as an administrator must before
 * changing a column type the views use (PostgreSQL refuses otherwise).
 */
export async function dropDemoViews(db: Db, table: string): Promise<void> {
  const entity = table.replace(/Base$/, '');
  await db.raw(`drop view if exists ${q(`Filtered${entity}`)}, ${q(entity)}`);
}
