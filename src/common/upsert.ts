import type { Knex } from 'knex';
/** A knex instance or one of its transactions: whatever a statement may run on. */
export type Db = Knex | Knex.Transaction;

/**
 * Insert or update one row by its key, atomically. PostgreSQL does it in one statement
 * (`ON CONFLICT ... DO UPDATE`); knex has no `onConflict` for SQL Server, so there the update
 * and the insert run in one transaction (the caller's, when it is already in one). Found by
 * running the core over knex's real mssql client: both the ledger and the key store used
 * `onConflict`.
 */
export async function upsert(
  db: Db,
  target: { schema?: string; table: string },
  key: Record<string, unknown>,
  values: Record<string, unknown>,
): Promise<void> {
  const table = (q: Db) => (target.schema ? q.withSchema(target.schema).table(target.table) : q.table(target.table));
  if (db.client.dialect !== 'mssql') {
    await table(db)
      .insert({ ...key, ...values })
      .onConflict(Object.keys(key))
      .merge(values);
    return;
  }
  const run = async (trx: Db) => {
    const updated = await table(trx).where(key).update(values);
    if (!updated) await table(trx).insert({ ...key, ...values });
  };
  if ((db as Knex.Transaction).isTransaction) await run(db);
  else await (db as Knex).transaction(run);
}
