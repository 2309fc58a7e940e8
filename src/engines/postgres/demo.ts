import type { Db, DemoOps, DemoTableSpec } from '../engine';
import { DEMO_TABLES } from '../demo-tables';
import { quotePgIdentifier as q } from './quote';

/**
 * Dynamics-shaped org tables with plaintext rows, for trying the tool (`cellcrypt demo seed`).
 * Rows are generated inside the database (generate_series), so 100k rows take seconds. The
 * values mix the cases conversion must get right: NULLs, empty strings, values at the
 * declared maximum length, non-ASCII and non-BMP text.
 */
type DemoTable = DemoTableSpec;

export async function createDemoTable(db: Db, spec: DemoTable): Promise<void> {
  const columns = spec.secrets.map((s) => `${q(s.column)} varchar(${s.maxLength})`).join(', ');
  await db.raw(
    `create table if not exists ${q(spec.table)} (${q(spec.primaryKey)} ` +
      `uuid primary key, "Name" varchar(100) not null, ${columns})`,
  );
  // As in a real org: an entity view over the Base table and a Filtered view over that, with a
  // grant and a comment, so every demo exercises the swap around dependent views.
  const entity = entityViewName(spec);
  const filtered = `Filtered${entity}`;
  const exists = await db.raw('select to_regclass(?) is not null as present', [q(entity)]);
  if (exists.rows[0].present) return;
  await db.raw(`create view ${q(entity)} as select * from ${q(spec.table)}`);
  await db.raw(`create view ${q(filtered)} as select * from ${q(entity)}`);
  await db.raw(`grant select on ${q(filtered)} to public`);
  await db.raw(`comment on view ${q(filtered)} is 'Filtered view of ${entity} (cellcrypt demo)'`);
}

/** Dynamics names the entity view after its Base table: `Mailbox` over `MailboxBase`. */
export function entityViewName(spec: DemoTable): string {
  return spec.table.replace(/Base$/, '');
}

/** SQL expression for the i-th demo value of a column (i is the generate_series variable). */
function demoValue(maxLength: number): string {
  return `case
    when i % 10 = 0 then null
    when i % 20 = 1 then ''
    when i % 50 = 2 then repeat('x', ${maxLength})
    when i % 7 = 3 then 'Pässwörd-' || i || '-пароль-密码-😀𝐀'
    else 'Pw!' || substr(md5(i::text || clock_timestamp()::text), 1, 12 + i % 20)
  end`;
}

export async function insertDemoRows(db: Db, spec: DemoTable, rows: number): Promise<number> {
  const columns = spec.secrets.map((s) => q(s.column)).join(', ');
  const values = spec.secrets.map((s) => demoValue(s.maxLength)).join(', ');
  const result = await db.raw(
    `insert into ${q(spec.table)} (${q(spec.primaryKey)}, "Name", ${columns})
     select gen_random_uuid(), 'demo ' || i, ${values} from generate_series(1, ?::int) as i`,
    [rows],
  );
  return result.rowCount ?? rows;
}

export const postgresDemo: DemoOps = { tables: DEMO_TABLES, createTable: createDemoTable, insertRows: insertDemoRows };
