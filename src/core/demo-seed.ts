import { classifyColumn } from './column-state';
import { refuse } from '../common/errors';
import type { Toolkit } from './toolkit';

/**
 * `cellcrypt demo seed`: creates the Dynamics-shaped tables when missing and adds plaintext
 * rows, i.e. an org as it looks before install/upgrade. Refused once a table is encrypted:
 * plaintext cannot go into an encrypted column (that would be the application's job).
 */
export interface SeedResult {
  tables: Array<{ table: string; inserted: number }>;
}

export async function seedDemo(tk: Toolkit, rows: number): Promise<SeedResult> {
  const { engine } = tk;
  const db = engine.knex;
  for (const spec of engine.demo.tables) await engine.demo.createTable(db, spec);
  const encrypted = [];
  for (const column of tk.registry) {
    if (!engine.demo.tables.some((t) => t.table === column.table)) continue;
    const verdict = classifyColumn(column, await engine.columns.describe(db, column));
    if ('state' in verdict && verdict.state !== 'plaintext')
      encrypted.push(`${column.table}.${column.column} (${verdict.state})`);
  }
  if (encrypted.length) {
    throw refuse(
      'CellcryptUsage',
      `demo seed adds plaintext rows to an org that is not installed yet; already converted: ${encrypted.join(', ')}`,
      'seed a fresh database (e.g. --database-url pglite:/tmp/demo), then run `cellcrypt install`',
    );
  }
  const tables = [];
  for (const spec of engine.demo.tables) {
    tk.reporter.log(`seeding ${spec.table}: ${rows} row(s)`);
    tables.push({ table: spec.table, inserted: await engine.demo.insertRows(db, spec, rows) });
  }
  return { tables };
}
