// Crash harness (issue: nothing is lost): kills install, one-transaction change-key, batched
// change-key and rewrap with SIGKILL at random moments against a real PostgreSQL server, then
// judges every cell against the plaintext recorded before the first run.
//
//   npm run crash -- --url postgres://postgres@127.0.0.1:5432/postgres [--trials 20] [--rows 5000] [--seed N]
//
// --url is an admin connection (it creates and drops its own databases). After every trial:
// each non-null cell decrypts to its original under exactly one known key (the key store's
// passphrase or its pending one); a column in state `encrypted` holds no plaintext; `status`
// agrees with the judge; after status, the key `show-key` hands out opens every cell; a re-run
// completes and `verify` passes. Exit 1 if any trial lost, corrupted or misreported anything.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Client } from 'pg';
import yargs from 'yargs';
import { runCli } from '../src/cli/main';
import { memoryIo } from '../src/cli/io';
import { Secret } from '../src/common/secret';
import { loadSettings } from '../src/config/settings';
import { seedDemo } from '../src/core/demo-seed';
import { install } from '../src/core/install';
import { currentCertificate } from '../src/common/key-names';
import { openToolkit } from '../src/open-toolkit';
import { type Toolkit } from '../src/core/toolkit';
import { checkOrg, recordOriginals, type CheckResult, type Originals } from './crash/org-check';
import { createThrowAwayDatabase } from '../test/support/pg-server';

type Scenario = 'install' | 'change-key' | 'change-key-batched' | 'rewrap' | 'server-crash';
const SCENARIOS: Scenario[] = ['install', 'change-key', 'change-key-batched', 'rewrap', 'server-crash'];
const MAIN = resolve(__dirname, '../src/cli/main.ts');
const BATCH = 500;

interface Org {
  env: NodeJS.ProcessEnv;
  drop(): Promise<void>;
}

interface Tally {
  trials: number;
  killed: number;
  cellsChecked: number;
  lost: number;
  corrupted: number;
  ambiguous: number;
  plaintextLeft: number;
  misreported: number;
  rerunFailed: number;
  /**
   * rewrap: where each kill left the two stores, read before anything repairs them: `before`
   * (no pending password, old certificate), `pending` (pending password, not committed),
   * `committed` (new certificate, its password still pending), `promoted` (new certificate,
   * new password current; pending not yet removed), `done`.
   */
  windows?: Record<string, number>;
}

async function main(): Promise<number> {
  const args = await yargs(process.argv.slice(2))
    .option('url', {
      type: 'string',
      demandOption: true,
      describe: 'admin URL of a PostgreSQL server (databases are created and dropped)',
    })
    .option('trials', { type: 'number', default: 20 })
    .option('rows', { type: 'number', default: 5000, describe: 'rows per demo table (5 columns, 90% non-null)' })
    .option('seed', { type: 'number', default: randomBytes(4).readUInt32BE() })
    .option('scenarios', {
      type: 'string',
      describe: `comma-separated, from ${SCENARIOS.join(', ')}; server-crash needs --server-stop and --server-start`,
    })
    .option('server-stop', {
      type: 'string',
      describe: 'shell command that stops the server immediately (pg_ctl -m immediate stop)',
    })
    .option('server-start', {
      type: 'string',
      describe: 'shell command that starts it again and waits (pg_ctl -w start)',
    })
    .strict()
    .parseAsync();
  process.stdout.write(
    `crash harness: seed ${args.seed} (replay with --seed ${args.seed}), ` +
      `${args.trials} trial(s) per scenario, ${args.rows} rows per table\n`,
  );
  const random = mulberry32(args.seed);
  const results: Record<string, Tally> = {};
  const serverControl =
    args['server-stop'] && args['server-start']
      ? { stop: args['server-stop'], start: args['server-start'] }
      : undefined;
  const chosen = (args.scenarios ?? SCENARIOS.filter((s) => s !== 'server-crash' || serverControl).join(',')).split(
    ',',
  ) as Scenario[];
  for (const scenario of chosen) {
    if (!SCENARIOS.includes(scenario)) throw new Error(`unknown scenario ${scenario}`);
    if (scenario === 'server-crash' && !serverControl)
      throw new Error('server-crash needs --server-stop and --server-start');
    results[scenario] = await runScenario(scenario, args.url, args.trials, args.rows, random, serverControl);
    process.stdout.write(`${scenario}: ${JSON.stringify(results[scenario])}\n`);
  }
  const bad = Object.values(results).some(
    (t) => t.lost || t.corrupted || t.ambiguous || t.plaintextLeft || t.misreported || t.rerunFailed,
  );
  process.stdout.write(
    `${JSON.stringify({ seed: args.seed, results })}\n${bad ? 'FAILED' : 'OK: 0 lost or corrupted cells'}\n`,
  );
  return bad ? 1 : 0;
}

interface ServerControl {
  stop: string;
  start: string;
}

async function runScenario(
  scenario: Scenario,
  adminUrl: string,
  trials: number,
  rows: number,
  random: () => number,
  server?: ServerControl,
): Promise<Tally> {
  const tally: Tally = {
    trials: 0,
    killed: 0,
    cellsChecked: 0,
    lost: 0,
    corrupted: 0,
    ambiguous: 0,
    plaintextLeft: 0,
    misreported: 0,
    rerunFailed: 0,
    ...(scenario === 'rewrap' && { windows: {} }),
  };
  const operation =
    scenario === 'install'
      ? ['install']
      : scenario === 'rewrap'
        ? ['rewrap']
        : scenario === 'change-key' || scenario === 'server-crash'
          ? ['change-key', '--generate']
          : ['change-key', '--generate', '--batch-size', String(BATCH)];
  let org: Org | undefined;
  let originals: Originals | undefined;
  let duration = 0;
  try {
    for (let trial = 0; trial <= trials; trial++) {
      // install needs a plaintext org every time; key changes repeat on one installed org.
      if (scenario === 'install' || !org) {
        await org?.drop();
        org = await createOrg(adminUrl, rows);
        originals = await withToolkit(org, recordOriginals);
        if (scenario !== 'install') await withToolkit(org, install);
      }
      // Trial 0 is not killed: it measures how long the operation runs, to spread the kills over it.
      // rewrap writes both stores in the last half second of a run that is mostly process
      // start-up: its kills are spread over the second half, so they land in those windows.
      const spread = scenario === 'rewrap' ? duration * (0.55 + 0.55 * random()) : random() * (duration * 1.2);
      const delay = trial === 0 ? undefined : Math.floor(spread);
      // server-crash: the database server itself stops (immediate shutdown) mid-rotation.
      const interrupt = scenario === 'server-crash' && server ? () => restartServer(server) : undefined;
      const certificateBefore = scenario === 'rewrap' ? await withToolkit(org, certificateOf) : undefined;
      const point =
        scenario === 'rewrap' && trial > 0 ? REWRAP_KILL_POINTS[trial % REWRAP_KILL_POINTS.length] : undefined;
      const run = point
        ? await runHeld(org.env, operation, point)
        : await runProcess(org.env, operation, delay, interrupt);
      if (trial === 0) {
        duration = run.ms;
        if (run.code !== 0) throw new Error(`calibration run of ${operation.join(' ')} failed: ${run.stderr}`);
        continue;
      }
      tally.trials++;
      if (run.killed) tally.killed++;
      if (tally.windows) {
        const window = await withToolkit(org, (tk) => rewrapWindow(tk, certificateBefore!));
        tally.windows[window] = (tally.windows[window] ?? 0) + 1;
      }
      await judge(org, originals!, tally, scenario, trial);
    }
  } finally {
    await org?.drop();
  }
  return tally;
}

async function judge(org: Org, originals: Originals, tally: Tally, scenario: Scenario, trial: number): Promise<void> {
  const report = (what: string) => process.stdout.write(`  trial ${trial} (${scenario}): ${what}\n`);
  // 1. The data as the crash left it, with every key the key store knows.
  const known = await withToolkit(org, async (tk) => {
    const keystore = await tk.keystore().catch(() => undefined);
    const keys = [await keystore?.get('passphrase'), await keystore?.get('passphrase.pending')].filter(
      (k): k is Secret => k !== undefined,
    );
    return { keys, check: await checkOrg(tk, originals, keys) };
  });
  add(tally, known.check, report);

  // 2. status (which also finishes a key change the key store missed) must agree with the judge.
  const status = await cli(org.env, ['status', '--json']);
  const states =
    status.json.columns?.map(
      (c: { table: string; column: string; state: string }) => `${c.table}.${c.column}=${c.state}`,
    ) ?? [];
  const allEncrypted = known.check.states.every((s) => s.endsWith('=encrypted'));
  const expectedCode = allEncrypted ? 0 : 3;
  if (
    JSON.stringify(states) !== JSON.stringify(known.check.states) ||
    (status.code !== expectedCode && known.check.states.length)
  ) {
    tally.misreported++;
    report(
      `status says ${JSON.stringify(states)} exit ${status.code}, judge says ${JSON.stringify(known.check.states)}`,
    );
  }

  // 3. After status, the key show-key hands out opens every cell (unless a batched change is
  //    still in flight: then the cells are on two keys, both in the key store).
  const shown = await cli(org.env, ['show-key', '--json']);
  if (shown.code === 0 && !status.json.keyChange) {
    const alone = await withToolkit(org, (tk) => checkOrg(tk, originals, [new Secret(shown.json.key)]));
    if (alone.lost || alone.corrupted) {
      tally.misreported++;
      report(`the key show-key hands out does not open ${alone.lost} cell(s)`);
    }
  } else if (shown.code !== 0 && known.keys.length && known.check.states.some((s) => s.endsWith('=encrypted'))) {
    tally.misreported++;
    report(`show-key failed: ${JSON.stringify(shown.json)}`);
  }

  // 4. A re-run completes; verify passes; every cell opens with the key show-key hands out.
  // rewrap: it must run again from whatever the kill left (a second certificate generation).
  const rerun =
    scenario === 'install'
      ? ['install']
      : status.json.keyChange
        ? ['change-key', '--resume', '--batch-size', String(BATCH)]
        : scenario === 'rewrap'
          ? ['rewrap']
          : ['install'];
  const again = await cli(org.env, rerun);
  const verified = await cli(org.env, ['verify', '--json']);
  const finalKey = await cli(org.env, ['show-key', '--json']);
  const final =
    finalKey.code === 0
      ? await withToolkit(org, (tk) => checkOrg(tk, originals, [new Secret(finalKey.json.key)]))
      : undefined;
  if (again.code !== 0 || verified.code !== 0 || !final || final.lost || final.corrupted || final.plaintextLeft) {
    tally.rerunFailed++;
    report(
      `re-run ${rerun.join(' ')} exit ${again.code} ${JSON.stringify(again.json.error ?? '')}, ` +
        `verify exit ${verified.code} ${JSON.stringify(verified.json.error ?? verified.json.ok ?? '')}, ` +
        `final ${JSON.stringify(
          final && {
            lost: final.lost,
            corrupted: final.corrupted,
            problems: final.problems.slice(0, 3),
          },
        )}`,
    );
  }
}

/**
 * Kill points for rewrap, besides the random moments: another session holds a row lock the
 * operation needs at one step, the operation waits there (seen in pg_stat_activity), and is
 * killed while it waits. `in-transaction`: the org's master-key row, which rewrap updates last
 * in its transaction, after the pending password is in the key store; `after-commit`: the key
 * store's master-key-password row, which rewrap writes right after its commit.
 */
type KillPoint = { name: string; database: 'org' | 'config'; lock: string } | undefined;
const REWRAP_KILL_POINTS: KillPoint[] = [
  undefined,
  { name: 'in-transaction', database: 'org', lock: 'select 1 from cellcrypt.master_key for update' },
  {
    name: 'after-commit',
    database: 'config',
    lock: `select 1 from cellcrypt_keystore where name = 'master-key-password' for update`,
  },
];

async function runHeld(env: NodeJS.ProcessEnv, args: string[], point: NonNullable<KillPoint>) {
  const holder = new Client({
    connectionString: point.database === 'org' ? env.DATABASE_URL : env.CELLCRYPT_CONFIG_URL,
  });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query(point.lock);
    return await runProcess(env, args, undefined, undefined, async (kill, exited) => {
      const deadline = Date.now() + 60_000;
      while (!exited() && Date.now() < deadline) {
        // pg_stat_activity is read once per transaction, and the holder is in one.
        await holder.query('select pg_stat_clear_snapshot()');
        const waiting = await holder.query(
          `select pid from pg_stat_activity where datname = current_database() ` +
            `and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
        );
        if (waiting.rows.length) {
          kill();
          // The statement it waits on was sent already, and the server would finish it once the
          // lock is free (it notices the dead client only when it next reads from it): end that
          // backend first, so the process dies as if before sending it.
          for (const { pid } of waiting.rows) await holder.query('select pg_terminate_backend($1)', [pid]);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
  } finally {
    await holder.query('rollback').catch(() => undefined);
    await holder.end();
  }
}

/** The org's certificate as the database has it now (rewrap replaces it). */
async function certificateOf(tk: Toolkit): Promise<string | undefined> {
  return currentCertificate((await tk.engine.keys.read(tk.engine.knex)).certificates);
}

/** Where a killed rewrap left the key store and the database (see Tally.windows). */
async function rewrapWindow(tk: Toolkit, certificateBefore: string | undefined): Promise<string> {
  const keystore = await tk.keystore();
  const current = await keystore.get('master-key-password');
  const pending = await keystore.get('master-key-password.pending');
  const committed = (await certificateOf(tk)) !== certificateBefore;
  if (!committed) return pending ? 'pending' : 'before';
  if (!pending) return 'done';
  return current && pending.equals(current) ? 'promoted' : 'committed';
}

function add(tally: Tally, check: CheckResult, report: (what: string) => void): void {
  tally.cellsChecked += check.cells;
  tally.lost += check.lost;
  tally.corrupted += check.corrupted;
  tally.ambiguous += check.ambiguous;
  tally.plaintextLeft += check.plaintextLeft;
  if (check.lost || check.corrupted || check.ambiguous || check.plaintextLeft)
    report(`${JSON.stringify({ ...check, problems: check.problems.slice(0, 5) })}`);
}

async function createOrg(adminUrl: string, rows: number): Promise<Org> {
  const databases = [
    await createThrowAwayDatabase(adminUrl, 'cellcrypt_crash_org'),
    await createThrowAwayDatabase(adminUrl, 'cellcrypt_crash_cfg'),
  ];
  const env: NodeJS.ProcessEnv = {
    DATABASE_URL: databases[0].url,
    CELLCRYPT_CONFIG_URL: databases[1].url,
    CELLCRYPT_KEYSTORE_SECRET: `crash-harness-${randomBytes(12).toString('hex')}`,
    CELLCRYPT_CHANGE_QUOTA: '1000000',
  };
  const org: Org = {
    env,
    async drop() {
      for (const database of databases) await database.drop();
    },
  };
  await withToolkit(org, (tk) => seedDemo(tk, rows));
  return org;
}

async function withToolkit<T>(org: Org, work: (tk: Toolkit) => Promise<T>): Promise<T> {
  const tk = await openToolkit(loadSettings({ env: { ...process.env, ...org.env } }));
  try {
    return await work(tk);
  } finally {
    await tk.close();
  }
}

/** In-process CLI run (the same code as the binary) for the judge's own commands. */
async function cli(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; json: any }> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    let io: ReturnType<typeof memoryIo> | undefined;
    const code = await runCli(args.includes('--json') ? args : [...args, '--json'], (json) => (io = memoryIo(json)));
    return { code, json: io?.documents[0] ?? {} };
  } finally {
    for (const key of Object.keys(env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
}

/** The operation under test in its own process, killed with SIGKILL after `killAfterMs` if still running. */
function runProcess(
  env: NodeJS.ProcessEnv,
  args: string[],
  killAfterMs: number | undefined,
  interrupt?: () => Promise<void>,
  /** Kills at a moment it chooses (a kill point) instead of after `killAfterMs`. */
  killWhen?: (kill: () => boolean, exited: () => boolean) => Promise<void>,
): Promise<{ code: number | null; killed: boolean; ms: number; stderr: string }> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', MAIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let killed = false;
    let interrupted: Promise<void> = Promise.resolve();
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer =
      killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            if (!interrupt) {
              killed = child.kill('SIGKILL');
              return;
            }
            killed = child.exitCode === null;
            interrupted = interrupt();
          }, killAfterMs);
    killWhen?.(
      () => (killed = child.kill('SIGKILL')),
      () => child.exitCode !== null || child.signalCode !== null,
    ).catch(fail);
    child.on('error', fail);
    child.on('exit', (code) => {
      clearTimeout(timer);
      // Judge only once the server is back.
      interrupted.then(
        () =>
          done({
            code,
            killed: killed && (code === null || interrupt !== undefined),
            ms: Date.now() - started,
            stderr,
          }),
        fail,
      );
    });
  });
}

function restartServer(server: ServerControl): Promise<void> {
  const sh = (command: string) =>
    new Promise<void>((done, fail) => {
      const child = spawn('sh', ['-c', command], { stdio: 'ignore' });
      child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`${command} exited with ${code}`))));
    });
  return sh(server.stop).then(() => sh(server.start));
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);
