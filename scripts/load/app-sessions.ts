// Application sessions for the load test: writers and readers that use only the application
// contract (cellcrypt.open_keys, cellcrypt.current_key_guid) and the cell functions, the way an
// application would, never cellcrypt's own code.
import { randomUUID } from 'node:crypto';
import { Pool, type PoolClient } from 'pg';
import { pause } from '../support/seeded-random';

/** One column the applications write: `encrypted` once the column is varbinary (bytea) in the database. */
export interface AppColumn {
  readonly table: string;
  readonly column: string;
  readonly primaryKey: string;
}

/** Every value a row's cell ever held or may hold: committed ones in order, plus the one in flight. */
interface RowHistory {
  readonly column: AppColumn;
  committed: string[];
  pending?: string;
}

export interface Sample {
  /** Milliseconds since the run started, when the statement finished. */
  readonly at: number;
  /** How long the transaction took, waiting on locks included. */
  readonly ms: number;
}

export interface SessionTally {
  writes: Sample[];
  reads: Sample[];
  failedWrites: number;
  failedReads: number;
  /** Reads that met a cell on a key opened after open_keys, and opened the keys again. */
  reopened: number;
  /** A non-null cell read back as NULL, or as a value its row never held. */
  badReads: Array<{ row: string; got: string | null; why: string }>;
  errors: Map<string, number>;
}

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteLiteral = (text: string) => `'${text.replace(/'/g, "''")}'`;

export class AppWorkload {
  private readonly pool: Pool;
  private readonly rows = new Map<string, RowHistory>();
  private stopped = false;
  private readonly suspects: Array<{ row: string; got: string }> = [];
  readonly tally: SessionTally = {
    writes: [],
    reads: [],
    failedWrites: 0,
    failedReads: 0,
    reopened: 0,
    badReads: [],
    errors: new Map(),
  };

  constructor(
    url: string,
    private readonly masterKeyPassword: () => string,
    private readonly columns: readonly AppColumn[],
    private readonly started: number,
    sessions: number,
  ) {
    this.pool = new Pool({ connectionString: url, max: sessions + 1 });
    // pg emits an idle client's error on the pool (the throw-away database is dropped with its
    // connections at the end); without a listener that is an uncaught exception after the report.
    this.pool.on('error', (error) => this.count(error));
  }

  stop(): void {
    this.stopped = true;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Keys live for one transaction on PostgreSQL: every application transaction opens them first. */
  private async openKeys(client: PoolClient): Promise<void> {
    await client.query('select cellcrypt.open_keys($1)', [this.masterKeyPassword()]);
  }

  private async isEncrypted(client: PoolClient, column: AppColumn): Promise<boolean> {
    const result = await client.query(
      `select data_type from information_schema.columns
        where table_schema = current_schema() and table_name = $1 and column_name = $2`,
      [column.table, column.column],
    );
    return result.rows[0]?.data_type === 'bytea';
  }

  /** Inserts or updates one of this writer's rows; the value is recorded as committed only after COMMIT returns. */
  async writer(id: number, random: () => number): Promise<void> {
    // This writer's rows, per column: only this writer touches them, so a row's history is a plain sequence.
    const mine: string[][] = this.columns.map(() => []);
    let n = 0;
    while (!this.stopped) {
      const which = Math.floor(random() * this.columns.length);
      const column = this.columns[which];
      const update = mine[which].length > 0 && random() < 0.6;
      const rowId = update ? mine[which][Math.floor(random() * mine[which].length)] : randomUUID();
      const key = `${column.table}.${column.column}:${rowId}`;
      const history = this.rows.get(key) ?? { column, committed: [] };
      const value = `w${id}-${n++}-Pässwörd-😀-${randomUUID().slice(0, 8 + (n % 20))}`;
      history.pending = value;
      this.rows.set(key, history);
      const begun = Date.now();
      const client = await this.pool.connect();
      try {
        await client.query('begin');
        await this.openKeys(client);
        const encrypted = await this.isEncrypted(client, column);
        // The documented write (README, "For applications"): the cell is computed inside the
        // statement, after its locks, and written only if it is not NULL; 0 rows means the current
        // key is not open here (a key change committed since open_keys): roll back and retry.
        const cell = encrypted ? `cellcrypt.encrypt_text(cellcrypt.current_key_guid(), $1, $2::uuid)` : `$1::text`;
        const { table, column: col, primaryKey } = column;
        const sql = update
          ? `update ${q(table)} as t set ${q(col)} = x.cell from (select ${cell} as cell) as x ` +
            `where t.${q(primaryKey)} = $2::uuid and x.cell is not null`
          : `insert into ${q(table)} (${q(primaryKey)}, "Name", ${q(col)}) ` +
            `select $2::uuid, 'load', x.cell from (select ${cell} as cell) as x where x.cell is not null`;
        const result = await client.query(sql, [value, rowId]);
        if (result.rowCount !== 1) throw new Error(`wrote ${result.rowCount} rows: the current key is not open`);
        await client.query('commit');
        history.committed.push(value);
        if (!update) mine[which].push(rowId);
        this.tally.writes.push({ at: Date.now() - this.started, ms: Date.now() - begun });
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        this.count(error);
        this.tally.failedWrites++;
        if (!update && history.committed.length === 0) this.rows.delete(key);
        await pause(20);
      } finally {
        history.pending = undefined;
        client.release();
      }
    }
  }

  /** Reads random rows back; each read must return a value the row held (or was being given). */
  async reader(random: () => number): Promise<void> {
    while (!this.stopped) {
      const keys = [...this.rows.keys()];
      if (keys.length === 0) {
        await pause(20);
        continue;
      }
      const key = keys[Math.floor(random() * keys.length)];
      const history = this.rows.get(key);
      if (!history || history.committed.length === 0) {
        await pause(5); // never spin: the writers run on this same event loop
        continue;
      }
      const acceptable = new Set([...history.committed, ...(history.pending ? [history.pending] : [])]);
      const rowId = key.slice(key.lastIndexOf(':') + 1);
      const begun = Date.now();
      const client = await this.pool.connect();
      try {
        await client.query('begin');
        await this.openKeys(client);
        const { table, column, primaryKey } = history.column;
        const encrypted = await this.isEncrypted(client, history.column);
        const read = encrypted
          ? `select ${q(column)} is null as is_null, cellcrypt.decrypt_text(${q(column)}, ${q(primaryKey)}) as value`
          : `select ${q(column)} is null as is_null, ${q(column)}::text as value`;
        const sql = `${read} from ${q(table)} where ${q(primaryKey)} = $1::uuid`;
        let result = await client.query(sql, [rowId]);
        // A NULL for a non-null cell: the cell moved to a key opened after open_keys ran (a key
        // change committed meanwhile); the documented read opens the keys again and reads again.
        if (encrypted && result.rows[0] && !result.rows[0].is_null && result.rows[0].value === null) {
          this.tally.reopened++;
          await this.openKeys(client);
          result = await client.query(sql, [rowId]);
        }
        // The column's type changed between the check and the read (its install swapped it): not a read of it.
        if ((await this.isEncrypted(client, history.column)) !== encrypted) {
          await client.query('commit');
          continue;
        }
        await client.query('commit');
        this.tally.reads.push({ at: Date.now() - this.started, ms: Date.now() - begun });
        const row = result.rows[0];
        const got: string | null = row ? row.value : null;
        if (!row) this.tally.badReads.push({ row: key, got, why: 'row missing' });
        else if (!row.is_null && got === null)
          this.tally.badReads.push({ row: key, got, why: 'non-null cell read as NULL' });
        else if (got !== null && !acceptable.has(got)) this.suspects.push({ row: key, got });
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        this.count(error);
        this.tally.failedReads++;
        await pause(20);
      } finally {
        client.release();
      }
    }
  }

  /**
   * Reads of a value that was not yet recorded when the read started: the writer's COMMIT may have
   * returned after the reader's SELECT, on another socket. Judged once every writer has stopped:
   * a value any committed write gave the row is fine (a rolled-back value is never visible).
   */
  judgeSuspectReads(): void {
    for (const { row, got } of this.suspects.splice(0))
      if (!this.rows.get(row)?.committed.includes(got))
        this.tally.badReads.push({ row, got, why: 'a value the row never held' });
  }

  private count(error: unknown): void {
    const text = (error instanceof Error ? error.message : String(error)).replace(/[0-9a-f-]{36}|\d+/g, 'N');
    this.tally.errors.set(text, (this.tally.errors.get(text) ?? 0) + 1);
  }

  /**
   * After the run: every committed write is there and decrypts to what its writer recorded last.
   * Read through the same application contract, one transaction per column.
   */
  async lostWrites(): Promise<{ checked: number; lost: Array<{ row: string; want: string; got: string | null }> }> {
    const lost: Array<{ row: string; want: string; got: string | null }> = [];
    let checked = 0;
    const client = await this.pool.connect();
    try {
      for (const column of this.columns) {
        const wanted = [...this.rows.entries()].filter(([, h]) => h.column === column && h.committed.length > 0);
        if (wanted.length === 0) continue;
        await client.query('begin');
        await this.openKeys(client);
        const encrypted = await this.isEncrypted(client, column);
        const value = encrypted
          ? `cellcrypt.decrypt_text(${q(column.column)}, ${q(column.primaryKey)})`
          : `${q(column.column)}::text`;
        const ids = wanted.map(([key]) => quoteLiteral(key.slice(key.lastIndexOf(':') + 1))).join(', ');
        const result = await client.query(
          `select ${q(column.primaryKey)}::text as id, ${value} as value from ${q(column.table)} ` +
            `where ${q(column.primaryKey)} in (${ids})`,
        );
        await client.query('commit');
        const found = new Map(result.rows.map((row) => [String(row.id), row.value as string | null]));
        for (const [key, history] of wanted) {
          checked++;
          const want = history.committed[history.committed.length - 1];
          const got = found.get(key.slice(key.lastIndexOf(':') + 1)) ?? null;
          if (got !== want) lost.push({ row: key, want, got });
        }
      }
    } finally {
      client.release();
    }
    return { checked, lost };
  }
}
