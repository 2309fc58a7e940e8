import { EventEmitter } from 'node:events';
import knexFactory, { type Knex } from 'knex';
import { ConnectionError, ISOLATION_LEVEL, RequestError, TYPES } from 'tedious';

/**
 * A recording stand-in for the tedious driver, so knex's REAL mssql client runs in unit tests
 * without a SQL Server: it records every request a Connection would send (and on which
 * connection) and answers statements from a responder. Connections behave like tedious's: one
 * request at a time ('LoggedIn' / 'SentClientRequest'), answers arrive asynchronously as
 * `row` events of `{ metadata: { colName }, value }` cells, and the transaction state
 * (`inTransaction`) follows begin / save / commit / rollback as SQL Server would report it.
 */
export interface RecordedCall {
  connectionId: number;
  kind:
    | 'connect'
    | 'beginTransaction'
    | 'commitTransaction'
    | 'rollbackTransaction'
    | 'saveTransaction'
    | 'execSql'
    | 'execSqlBatch'
    | 'cancel'
    | 'close'
    | 'reset';
  sql?: string;
  parameters?: Array<{ name: string; type: string; value: unknown }>;
  timeout?: number;
  transactionName?: string;
  isolationLevel?: number;
}
type Row = Record<string, unknown>;
/**
 * An Error => the request fails with it (give it a `number`, e.g. 8152; `abortsTransaction: true`
 * for one that ends the transaction server-side, like deadlock 1205).
 */
export type Responder = (
  sql: string,
  parameters: RecordedCall['parameters'],
) => Row[] | { rows?: Row[]; rowCount?: number } | Error | undefined;
type TransactionKind = 'beginTransaction' | 'commitTransaction' | 'rollbackTransaction' | 'saveTransaction';
type Callback = (error: Error | null | undefined, rowCount?: number, rows?: unknown[]) => void;
type ConnectionConfig = Record<string, unknown> & { options?: { isolationLevel?: number; useColumnNames?: boolean } };
interface Recorder {
  calls: RecordedCall[];
  connectionOptions: Array<Record<string, unknown>>;
  responder: Responder;
  onTransaction?: (kind: TransactionKind, name: string | undefined) => Error | undefined;
}
interface Answer {
  rowCount: number;
  error?: Error;
}

export class FakeRequest extends EventEmitter {
  readonly parameters: Array<{ name: string; type: { name: string }; value: unknown }> = [];
  timeout: number | undefined;
  canceled = false;
  constructor(
    readonly sqlTextOrProcedure: string | undefined,
    private readonly userCallback: Callback,
  ) {
    super();
  }
  addParameter(name: string, type: { name: string }, value: unknown, options?: Record<string, unknown>): void {
    this.parameters.push({ ...options, name, type, value });
  }
  setTimeout(timeout?: number): void {
    this.timeout = timeout;
  }
  cancel(): void {
    this.canceled = true;
  }
  /** As tedious: the user's callback, then `requestCompleted`. */
  callback(error: Error | undefined, rowCount = 0): void {
    this.userCallback(error, rowCount, []);
    this.emit('requestCompleted');
  }
}

const serverError = (number: number, message: string) =>
  Object.assign(new RequestError(message, 'EREQUEST'), { number });
const detached: Recorder = { calls: [], connectionOptions: [], responder: () => undefined };

export class FakeConnection extends EventEmitter {
  readonly id: number;
  state = { name: 'Initialized' };
  inTransaction = false;
  private trancount = 0;
  private savepoints: string[] = [];
  private request: FakeRequest | undefined;

  constructor(
    readonly config: ConnectionConfig,
    private readonly recorder: Recorder = detached,
  ) {
    super();
    this.id = recorder.connectionOptions.push(config);
  }

  connect(callback?: (error?: Error) => void): void {
    this.record({ kind: 'connect' });
    this.state = { name: 'Connecting' };
    setImmediate(() => {
      this.state = { name: 'LoggedIn' };
      callback?.();
      this.emit('connect');
    });
  }
  execSql(request: FakeRequest): void {
    this.send(request, { kind: 'execSql', ...this.describe(request) }, () => this.answer(request, 'doneInProc'));
  }
  execSqlBatch(request: FakeRequest): void {
    this.send(request, { kind: 'execSqlBatch', ...this.describe(request) }, () => this.answer(request, 'done'));
  }
  beginTransaction(
    callback: Callback,
    name = '',
    isolationLevel = this.config.options?.isolationLevel ?? ISOLATION_LEVEL.READ_COMMITTED,
  ): void {
    this.transact(
      callback,
      'beginTransaction',
      name,
      () => void ((this.trancount += 1), (this.inTransaction = true)),
      isolationLevel,
    );
  }
  commitTransaction(callback: Callback, name = ''): void {
    this.transact(callback, 'commitTransaction', name, () => {
      if (!this.trancount)
        return serverError(3902, 'The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.');
      if (--this.trancount === 0) this.endTransaction();
    });
  }
  rollbackTransaction(callback: Callback, name = ''): void {
    this.transact(callback, 'rollbackTransaction', name, () => {
      if (!this.trancount)
        return serverError(3903, 'The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.');
      if (!name) return this.endTransaction();
      const at = this.savepoints.lastIndexOf(name);
      if (at < 0)
        return serverError(6401, `Cannot roll back ${name}. No transaction or savepoint of that name was found.`);
      this.savepoints.length = at + 1;
    });
  }
  saveTransaction(callback: Callback, name = ''): void {
    this.transact(callback, 'saveTransaction', name, () => {
      if (!this.trancount)
        return serverError(628, 'Cannot issue SAVE TRANSACTION when there is no active transaction.');
      this.savepoints.push(name);
    });
  }
  /** tedious resets the session with the next request: any open transaction is rolled back. */
  reset(callback: (error?: Error | null) => void): void {
    this.send(
      new FakeRequest(undefined, (error) => callback(error)),
      { kind: 'reset' },
      () => (this.endTransaction(), { rowCount: 0 }),
    );
  }
  cancel(): boolean {
    this.record({ kind: 'cancel' });
    if (!this.request || this.request.canceled) return false;
    this.request.cancel();
    return true;
  }
  close(): void {
    if (this.state.name === 'Final') return;
    this.record({ kind: 'close' });
    this.state = { name: 'Final' };
    const pending = this.request;
    this.request = undefined;
    process.nextTick(() => {
      pending?.callback(new ConnectionError('Connection closed before request completed.', 'ECLOSE'));
      this.emit('end');
    });
  }

  private record(call: Omit<RecordedCall, 'connectionId'>): void {
    // so deep.equal needs no `undefined` keys
    const defined = Object.entries(call).filter(([, value]) => value !== undefined);
    this.recorder.calls.push({ connectionId: this.id, ...Object.fromEntries(defined) } as RecordedCall);
  }
  private describe(request: FakeRequest) {
    const parameters = request.parameters.map((p) => ({ name: p.name, type: p.type.name, value: p.value }));
    return { sql: request.sqlTextOrProcedure ?? '', parameters, timeout: request.timeout };
  }
  private endTransaction(): void {
    this.trancount = 0;
    this.savepoints = [];
    this.inTransaction = false;
  }
  private transact(
    callback: Callback,
    kind: TransactionKind,
    name: string,
    apply: () => Error | void,
    isolationLevel?: number,
  ): void {
    const request = new FakeRequest(undefined, callback);
    this.send(request, { kind, transactionName: name || undefined, isolationLevel }, () => {
      const error = this.recorder.onTransaction?.(kind, name || undefined) ?? apply();
      return { rowCount: 0, error: error || undefined };
    });
  }
  /** One request at a time, as tedious: another one before the answer fails with EINVALIDSTATE and is never sent. */
  private send(request: FakeRequest, call: Omit<RecordedCall, 'connectionId'>, answer: () => Answer): void {
    if (this.state.name !== 'LoggedIn') {
      request.callback(
        new RequestError(
          `Requests can only be made in the LoggedIn state, not the ${this.state.name} state`,
          'EINVALIDSTATE',
        ),
      );
      return;
    }
    this.record(call);
    this.request = request;
    this.state = { name: 'SentClientRequest' };
    setImmediate(() => {
      if (this.request !== request) return; // closed meanwhile
      const { rowCount, error } = request.canceled
        ? { rowCount: 0, error: new RequestError('Canceled.', 'ECANCEL') }
        : answer();
      this.request = undefined;
      this.state = { name: 'LoggedIn' };
      request.callback(error, rowCount);
    });
  }
  private answer(request: FakeRequest, doneEvent: 'doneInProc' | 'done'): Answer {
    let result: ReturnType<Responder>;
    try {
      result = this.recorder.responder(request.sqlTextOrProcedure ?? '', this.describe(request).parameters);
    } catch (error) {
      result = error as Error;
    }
    if (result instanceof Error) {
      if ((result as { abortsTransaction?: boolean }).abortsTransaction) this.endTransaction();
      return { rowCount: 0, error: result };
    }
    const rows = Array.isArray(result) ? result : (result?.rows ?? []);
    const rowCount = (Array.isArray(result) ? undefined : result?.rowCount) ?? rows.length;
    const names = [...new Set(rows.flatMap((row) => Object.keys(row)))];
    const byName = this.config.options?.useColumnNames === true;
    const shape = <T>(cells: T[]) => (byName ? Object.fromEntries(names.map((n, i) => [n, cells[i]])) : cells);
    if (names.length) request.emit('columnMetadata', shape(names.map((colName) => ({ colName }))));
    for (const row of rows)
      request.emit('row', shape(names.map((colName) => ({ metadata: { colName }, value: row[colName] ?? null }))));
    request.emit(doneEvent, rowCount, false, []);
    if (doneEvent === 'doneInProc') request.emit('doneProc', undefined, false, 0, []);
    return { rowCount };
  }
}

/** The fake driver module; its Connections record into a detached log (knex's get their own, see fakeMssqlKnex). */
export const fakeTedious = {
  Connection: FakeConnection,
  Request: FakeRequest,
  TYPES,
  ISOLATION_LEVEL,
  RequestError,
  ConnectionError,
};
export type FakeTediousModule = typeof fakeTedious;

export interface FakeMssql {
  knex: Knex;
  /** The driver module knex uses (=== knex.client.driver). */
  tedious: FakeTediousModule;
  calls: RecordedCall[];
  /** The config each Connection was constructed with; connection N's is connectionOptions[N - 1]. */
  connectionOptions: Array<Record<string, unknown>>;
  /** Read on every statement: may be replaced mid-test. */
  responder: Responder;
  /**
   * The calls as short strings ('begin', 'commit', 'rollback [name]', 'save <name>',
   * 'sql: <first 60 chars>', 'batch: ...', 'cancel', 'reset'); pool 'connect'/'close' left out.
   */
  sequence(connectionId?: number): string[];
  /** Every SQL text sent (execSql and execSqlBatch) in order. */
  statements(connectionId?: number): string[];
  /** Forgets the recorded calls (the connections and their options stay). */
  reset(): void;
}

const SHORT: Partial<Record<RecordedCall['kind'], string>> = {
  beginTransaction: 'begin',
  commitTransaction: 'commit',
  rollbackTransaction: 'rollback',
  saveTransaction: 'save',
  execSql: 'sql',
  execSqlBatch: 'batch',
};

export function fakeMssqlKnex(
  options: {
    responder?: Responder;
    onTransaction?: Recorder['onTransaction'];
    connection?: Record<string, unknown>;
    pool?: { min?: number; max?: number };
  } = {},
): FakeMssql {
  const of = (id?: number) => fake.calls.filter((c) => id === undefined || c.connectionId === id);
  const short = (c: RecordedCall) =>
    c.sql !== undefined
      ? `${SHORT[c.kind]}: ${c.sql.replace(/\s+/g, ' ').trim().slice(0, 60)}`
      : [SHORT[c.kind] ?? c.kind, c.transactionName].filter(Boolean).join(' ');
  const fake: FakeMssql & Recorder = {
    calls: [],
    connectionOptions: [],
    responder: options.responder ?? (() => undefined),
    onTransaction: options.onTransaction,
    sequence: (id) =>
      of(id)
        .filter((c) => c.kind !== 'connect' && c.kind !== 'close')
        .map(short),
    statements: (id) => of(id).flatMap((c) => (c.sql !== undefined ? [c.sql] : [])),
    reset: () => void fake.calls.splice(0),
    tedious: undefined as unknown as FakeTediousModule,
    knex: undefined as unknown as Knex,
  };
  fake.tedious = {
    ...fakeTedious,
    Connection: class extends FakeConnection {
      constructor(config: ConnectionConfig) {
        super(config, fake);
      }
    },
  };
  // knex's real mssql dialect class: only reachable by its file, which has no type declarations.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const MssqlClient = require('knex/lib/dialects/mssql') as typeof Knex.Client;
  class FakeClient extends MssqlClient {
    // why: knex keeps its request queue on the mssql prototype, shared by every knex instance in the process.
    requestQueue: unknown[] = [];
    _driver() {
      return fake.tedious;
    }
  }
  fake.knex = knexFactory({
    client: FakeClient,
    connection: { server: 'fake-sql-server', database: 'fake', user: 'sa', password: 'fake', ...options.connection },
    pool: { min: 0, max: 2, ...options.pool },
  });
  return fake;
}
