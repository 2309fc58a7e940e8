import type { Knex } from 'knex';
import { mapSqlServerError } from './errors';
import { escapeForKnex } from './quote';

/**
 * Two ways a T-SQL statement leaves this engine:
 * - `query`: through knex (`raw`), for everything without a secret; knex wraps it in
 *   sp_executesql on the transaction's connection.
 * - `querySecret`: straight to the transaction's tedious connection (`execSqlBatch`), for DDL
 *   with an inlined secret: knex logs raw SQL under DEBUG=knex:* and would rewrite a `?` inside
 *   the secret's literal. The secret values are also removed from any error message.
 * - `queryLong`: the same direct path with a request timeout of its own (knex cannot set one
 *   per statement), for statements that touch every cell of a column or read a whole table.
 * - `queryScoped`: with a request timeout of its own too, but sent as tedious's execSql (an RPC
 *   to sp_executesql, as knex sends), so a SET in it (LOCK_TIMEOUT) ends with it instead of
 *   staying on the pooled session ("the value of the SET option is restored after control is
 *   returned from the batch", set-statements doc).
 */
export type Row = Record<string, unknown>;

export function rowsOf(result: unknown): Row[] {
  if (Array.isArray(result)) return result as Row[];
  const rows = (result as { rows?: unknown } | undefined)?.rows;
  return Array.isArray(rows) ? (rows as Row[]) : [];
}

export async function query(db: Knex | Knex.Transaction, sql: string, where: string): Promise<Row[]> {
  try {
    return rowsOf(await db.raw(escapeForKnex(sql)));
  } catch (error) {
    throw mapSqlServerError(error, where);
  }
}

interface TediousRequest {
  on(event: 'row', listener: (columns: unknown) => void): void;
  setTimeout?(ms: number): void;
}
interface TediousConnection {
  execSqlBatch(request: TediousRequest): void;
  execSql(request: TediousRequest): void;
}
interface TediousModule {
  Request: new (sql: string, callback: (error: Error | null | undefined, rowCount?: number) => void) => TediousRequest;
}

/** Runs one batch with inlined secrets on the transaction's own connection, never through knex. */
export async function querySecret(
  trx: Knex.Transaction,
  sql: string,
  where: string,
  secrets: readonly string[],
): Promise<Row[]> {
  try {
    return await sendBatch(trx, sql);
  } catch (error) {
    throw mapSqlServerError(error, where, secrets);
  }
}

/**
 * A statement that may run for minutes (encrypting, proving or re-encrypting a whole column):
 * sent with its own request timeout instead of the connection's short one, which is there to
 * notice a blocked catalog query quickly.
 */
export async function queryLong(
  db: Knex | Knex.Transaction,
  sql: string,
  where: string,
  timeoutMs: number,
): Promise<Row[]> {
  try {
    return await sendBatch(db, sql, timeoutMs);
  } catch (error) {
    throw mapSqlServerError(error, where);
  }
}

/**
 * A statement that waits for a table lock (lockTable, the swap, the rebuild after it): its
 * `SET LOCK_TIMEOUT` ends the wait with error 1222 before `timeoutMs` (the long one) would.
 */
export async function queryScoped(
  db: Knex | Knex.Transaction,
  sql: string,
  where: string,
  timeoutMs: number,
): Promise<Row[]> {
  try {
    return await sendBatch(db, sql, timeoutMs, 'rpc');
  } catch (error) {
    throw mapSqlServerError(error, where);
  }
}

async function sendBatch(
  db: Knex | Knex.Transaction,
  sql: string,
  timeoutMs?: number,
  how: 'batch' | 'rpc' = 'batch',
): Promise<Row[]> {
  const connection = await db.client.acquireConnection();
  try {
    return await runOnConnection(db, connection, sql, timeoutMs, how);
  } finally {
    await db.client.releaseConnection(connection);
  }
}

/** One batch on a connection the caller holds (the session lock keeps its own). */
export function runOnConnection(
  db: Knex | Knex.Transaction,
  connection: unknown,
  sql: string,
  timeoutMs?: number,
  how: 'batch' | 'rpc' = 'batch',
): Promise<Row[]> {
  const driver = (db.client as unknown as { driver: TediousModule }).driver;
  return new Promise<Row[]>((resolve, reject) => {
    const rows: Row[] = [];
    const request = new driver.Request(sql, (error) => (error ? reject(error) : resolve(rows)));
    if (timeoutMs !== undefined) request.setTimeout?.(timeoutMs);
    request.on('row', (columns) => rows.push(toRow(columns)));
    if (how === 'rpc') (connection as TediousConnection).execSql(request);
    else (connection as TediousConnection).execSqlBatch(request);
  });
}

/** tedious delivers a row as an array (or, with useColumnNames, an object) of { metadata, value }. */
function toRow(columns: unknown): Row {
  const row: Row = {};
  const list = Array.isArray(columns) ? columns : Object.values(columns as Record<string, unknown>);
  for (const column of list as Array<{ metadata: { colName: string }; value: unknown }>)
    row[column.metadata.colName] = column.value;
  return row;
}
