import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { adminQuery } from '../../test/support/pg-server';

/**
 * The faults of the crash harness: the operation runs in its own process (the real CLI), and a
 * fault hits it at a moment the harness chooses. Each fault is an injector started with the
 * child; the run ends when the child has exited and the injector is done (a stopped server is
 * back, a key store reachable again).
 */
const MAIN = resolve(__dirname, '../../src/cli/main.ts');
/** A child still running this long after its fault is hung: killed and counted. */
const HANG_MS = 120_000;

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  stderr: string;
  /** The fault hit a running operation (a kill after it finished is no trial of anything). */
  faulted: boolean;
  /** The child did not exit by itself after its fault (a SIGINT it ignored, a stopped server it waits on). */
  hung: boolean;
}

export interface Child {
  readonly process: ChildProcess;
  exited(): boolean;
}

/** Acts on the child at a moment of its choosing; resolves true if it hit a running child. */
export type Injector = (child: Child) => Promise<boolean>;

export function runOperation(env: NodeJS.ProcessEnv, args: string[], inject?: Injector): Promise<Run> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', MAIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let hung = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const handle: Child = { process: child, exited: () => exit !== undefined };
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('error', fail);
    const exited = new Promise<void>((resolveExit) =>
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        resolveExit();
      }),
    );
    const injected = (inject ? inject(handle) : Promise.resolve(false)).then(async (faulted) => {
      // After its fault a child must end by itself (or it was killed); one that does not is hung.
      const timer = setTimeout(() => {
        hung = !handle.exited();
        child.kill('SIGKILL');
      }, HANG_MS);
      await exited;
      clearTimeout(timer);
      return faulted;
    });
    Promise.all([exited, injected]).then(
      ([, faulted]) => done({ ...exit!, ms: Date.now() - started, stderr, faulted, hung }),
      fail,
    );
  });
}

const sleep = (ms: number) => new Promise((tick) => setTimeout(tick, ms));

/** SIGKILL (or SIGINT: Ctrl-C) after `ms`, if the child still runs. */
export function signalAfter(ms: number, signal: 'SIGKILL' | 'SIGINT'): Injector {
  return async (child) => {
    await sleep(ms);
    if (child.exited()) return false;
    child.process.kill(signal);
    return true;
  };
}

/**
 * Ctrl-C `ms` after the operation first connected to its database (its Ctrl-C handling is in
 * place by then: a SIGINT during Node's start-up ends any process, which says nothing about
 * cellcrypt).
 */
export function interruptAfterConnecting(url: string, ms: number): Injector {
  return async (child) => {
    if (!(await connected(url, child))) return false;
    await sleep(ms);
    if (child.exited()) return false;
    child.process.kill('SIGINT');
    return true;
  };
}

/** Measures (no fault) how long the child takes to connect to its database: `connectedAfter.ms`. */
export function timeToConnect(url: string, connectedAfter: { ms?: number }): Injector {
  const started = Date.now();
  return async (child) => {
    if (await connected(url, child)) connectedAfter.ms = Date.now() - started;
    return false;
  };
}

/**
 * Waits until the child has connected to the database at `url`; false if it exited first. Only
 * a cellcrypt client session that was not there when the child started counts: an autovacuum
 * worker (the changes before leave plenty of dead rows) or the judge's last session, still
 * exiting, made a trial's Ctrl-C land during the child's start-up, which ended it by the signal
 * with nothing said. The baseline is taken before the child can connect: starting Node and its
 * TypeScript takes hundreds of milliseconds, one query here a few.
 */
export async function connected(url: string, child: Child): Promise<boolean> {
  const watcher = new Client({ connectionString: url });
  await watcher.connect();
  try {
    const before = await watcher.query(
      "select coalesce(array_agg(pid), '{}') as pids from pg_stat_activity where datname = current_database()",
    );
    for (;;) {
      if (child.exited()) return false;
      const others = await watcher.query(
        'select count(*)::int as n from pg_stat_activity ' +
          "where datname = current_database() and backend_type = 'client backend' " +
          "and application_name = 'cellcrypt' and pid <> all($1::int[])",
        [before.rows[0].pids],
      );
      if (others.rows[0].n > 0) return true;
      await sleep(10);
    }
  } finally {
    await watcher.end();
  }
}

export interface ServerControl {
  stop: string;
  start: string;
}

/** The database server stops with an immediate shutdown after `ms`, and is started again. */
export function serverStopAfter(ms: number, server: ServerControl): Injector {
  return async (child) => {
    await sleep(ms);
    const running = !child.exited();
    await sh(server.stop);
    await sh(server.start);
    return running;
  };
}

function sh(command: string): Promise<void> {
  return new Promise<void>((done, fail) => {
    const child = spawn('sh', ['-c', command], { stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`${command} exited with ${code}`))));
  });
}

/**
 * A kill point: another session holds a lock the operation needs at one step, the operation
 * waits there (seen in pg_stat_activity), and is killed while it waits; the backend it waits in
 * is ended too, so the statement it sent never runs.
 */
export function killWhileWaiting(url: string, lock: string): Injector {
  return async (child) => {
    const holder = new Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query(lock);
      const pids = await waitingBackends(holder, child, 'Lock');
      if (!pids.length) return false;
      child.process.kill('SIGKILL');
      for (const pid of pids) await holder.query('select pg_terminate_backend($1)', [pid]);
      return true;
    } finally {
      await holder.query('rollback').catch(() => undefined);
      await holder.end();
    }
  };
}

/** The backends of the holder's database that wait on a lock (of `event`), polled until the child exits. */
async function waitingBackends(holder: Client, child: Child, type: string, event?: string): Promise<number[]> {
  const deadline = Date.now() + 90_000;
  while (!child.exited() && Date.now() < deadline) {
    // pg_stat_activity is read once per transaction, and the holder may be in one.
    await holder.query('select pg_stat_clear_snapshot()');
    const waiting = await holder.query(
      `select pid from pg_stat_activity where datname = current_database() and wait_event_type = $1 ` +
        `and ($2::text is null or wait_event = $2) and pid <> pg_backend_pid()`,
      [type, event ?? null],
    );
    if (waiting.rows.length) return waiting.rows.map((row: { pid: number }) => row.pid);
    await sleep(20);
  }
  return [];
}

const FAULT_LOCK = 0x63637274; // "ccrt": the harness's own advisory lock in the key-store database

/**
 * The key-store database becomes unreachable at the operation's `step`-th write to the key store
 * (0: before it starts; counted by a trigger the harness puts on the key-store table): that write
 * waits in the trigger, the harness then refuses new connections to the database and ends every
 * session in it, so the write fails and so does every later attempt, as when the key-store server
 * goes away. `whileDown` runs once the operation has exited, before the database is reachable again.
 */
export class KeyStoreOutage {
  private holder?: Client;

  constructor(
    private readonly adminUrl: string,
    private readonly configUrl: string,
  ) {}

  private get database(): string {
    return decodeURIComponent(new URL(this.configUrl).pathname.slice(1));
  }

  /** Installs the counting trigger; `step` < 0 only counts (a calibration run). */
  async arm(step: number): Promise<void> {
    const holder = new Client({ connectionString: this.configUrl });
    await holder.connect();
    this.holder = holder;
    await holder.query(`create table if not exists crash_fault_counter (target int not null, seen int not null)`);
    await holder.query('delete from crash_fault_counter');
    await holder.query('insert into crash_fault_counter values ($1, 0)', [step]);
    await holder.query(`create or replace function crash_fault_step() returns trigger language plpgsql as $f$
      declare reached int; wanted int;
      begin
        update crash_fault_counter set seen = seen + 1 returning seen, target into reached, wanted;
        if reached = wanted then perform pg_advisory_xact_lock(${FAULT_LOCK}); end if;
        if tg_op = 'DELETE' then return old; end if;
        return new;
      end $f$`);
    await holder.query('drop trigger if exists crash_fault_step on cellcrypt_keystore');
    await holder.query(
      'create trigger crash_fault_step before insert or update or delete on cellcrypt_keystore ' +
        'for each row execute function crash_fault_step()',
    );
    await holder.query(`select pg_advisory_lock(${FAULT_LOCK})`);
    if (step === 0) await this.cutOff();
  }

  /** Waits for the armed step and cuts the key store off there; true if the child got that far. */
  injector(step: number): Injector {
    return async (child) => {
      if (step === 0) return true;
      const pids = await waitingBackends(this.holder!, child, 'Lock', 'advisory');
      if (!pids.length) return false;
      await this.cutOff();
      return true;
    };
  }

  private async cutOff(): Promise<void> {
    const name = this.database.replace(/"/g, '""');
    await adminQuery(this.adminUrl, `alter database "${name}" with allow_connections false`);
    await this.holder!.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() ' +
        'and pid <> pg_backend_pid()',
    );
  }

  /** How many key-store writes the run made (the calibration's count of steps). */
  async writes(): Promise<number> {
    const row = await this.holder!.query('select seen from crash_fault_counter');
    return row.rows[0]?.seen ?? 0;
  }

  /** Reachable again, trigger and counter gone. */
  async restore(): Promise<void> {
    const name = this.database.replace(/"/g, '""');
    await adminQuery(this.adminUrl, `alter database "${name}" with allow_connections true`);
    const holder = this.holder!;
    this.holder = undefined;
    try {
      await holder.query(`select pg_advisory_unlock(${FAULT_LOCK})`);
      await holder.query('drop trigger if exists crash_fault_step on cellcrypt_keystore');
      await holder.query('drop function if exists crash_fault_step()');
      await holder.query('drop table if exists crash_fault_counter');
    } finally {
      await holder.end();
    }
  }
}
