// Crash harness (issue: nothing is lost, and status tells the truth): runs install,
// one-transaction change-key, batched change-key, rewrap and activate against a real PostgreSQL
// server and hits each with faults: SIGKILL and SIGINT (Ctrl-C) at random moments, the server
// stopped (immediate shutdown) at a random moment, the key-store database gone at each of the
// operation's key-store writes, and for rewrap two kill points. After every fault it judges every
// cell against the plaintext recorded before the first run, what the first `status --json` and
// `verify --json` say about it, the key `show-key` hands out, and a re-run that must complete.
//
//   npm run crash -- --url postgres://postgres@127.0.0.1:5432/postgres [--trials 5] [--rows 5000] [--seed N]
//       [--server-stop CMD --server-start CMD [--stop-url URL]] [--long] [--operations A,B] [--faults F,G]
//
// --url is an admin connection (it creates and drops its own databases). The short form (CI) runs
// --trials trials per operation, its faults taking turns; --long runs every fault of every
// operation at least 8 times and the key store's outage at every step. Server stops need
// --server-stop and --server-start; --stop-url is the server they stop, when it is not --url's (a
// shared server must not be stopped). Exit 1 if any trial lost, corrupted or misreported anything.
import { randomBytes } from 'node:crypto';
import yargs from 'yargs';
import { formatKeyFile, readKeyFile } from '../src/core/key-file';
import { install } from '../src/core/install';
import { currentCertificate } from '../src/common/key-names';
import { type Toolkit } from '../src/core/toolkit';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import {
  interruptAfterConnecting,
  KeyStoreOutage,
  killWhileWaiting,
  runOperation,
  serverStopAfter,
  signalAfter,
  timeToConnect,
  type Injector,
  type Run,
  type ServerControl,
} from './crash/faults';
import { BATCH, count, failed, judgeTrial, newTally, type Fault, type Operation, type Tally } from './crash/judge';
import { recordOriginals, type Originals } from './crash/org-check';
import { cli, createOrg, withToolkit, type Org } from './crash/org';
import { mulberry32 } from './support/seeded-random';

const OPERATIONS: Operation[] = ['install', 'change-key', 'change-key-batched', 'rewrap', 'activate'];
const FAULTS: Record<Operation, Fault[]> = {
  install: ['sigkill', 'sigint', 'server-stop'],
  'change-key': ['sigkill', 'sigint', 'server-stop', 'keystore-down'],
  'change-key-batched': ['sigkill', 'sigint', 'server-stop'],
  rewrap: ['sigkill', 'held'],
  activate: ['keystore-down', 'sigkill'],
};
/** The long form: every fault of every operation at least this often. */
const LONG_PER_FAULT = 8;
/** The short form keeps activate to this many trials: it needs an org of its own, set up per trial. */
const SHORT_ACTIVATE = 3;

const ARGS: Record<Operation, string[]> = {
  install: ['install'],
  'change-key': ['change-key', '--generate'],
  'change-key-batched': ['change-key', '--generate', '--batch-size', String(BATCH)],
  rewrap: ['rewrap'],
  activate: ['activate', '--key-file', '<file>', '--new-key-store'],
};

interface Options {
  url: string;
  stopUrl: string;
  rows: number;
  trials: number;
  long: boolean;
  faults?: Fault[];
  server?: ServerControl;
  random: () => number;
}

async function main(): Promise<number> {
  const args = await yargs(process.argv.slice(2))
    .option('url', {
      type: 'string',
      demandOption: true,
      describe: 'admin URL of a PostgreSQL server (databases are created and dropped)',
    })
    .option('trials', { type: 'number', default: 5, describe: 'trials per operation (short form)' })
    .option('long', { type: 'boolean', default: false, describe: `every fault ${LONG_PER_FAULT} times or more` })
    .option('rows', { type: 'number', default: 5000, describe: 'rows per demo table (5 columns, 90% non-null)' })
    .option('seed', { type: 'number', default: randomBytes(4).readUInt32BE() })
    .option('operations', { type: 'string', describe: `comma-separated, from ${OPERATIONS.join(', ')}` })
    .option('scenarios', {
      type: 'string',
      describe: 'the same as --operations (server-crash: change-key/server-stop)',
    })
    .option('faults', {
      type: 'string',
      describe: 'comma-separated: sigkill, sigint, server-stop, keystore-down, held',
    })
    .option('server-stop', {
      type: 'string',
      describe: 'shell command that stops the server immediately (pg_ctl -m immediate stop)',
    })
    .option('server-start', {
      type: 'string',
      describe: 'shell command that starts it again and waits (pg_ctl -w start)',
    })
    .option('stop-url', { type: 'string', describe: 'admin URL of the server --server-stop stops (default --url)' })
    .strict()
    .parseAsync();
  const server =
    args['server-stop'] && args['server-start']
      ? { stop: args['server-stop'], start: args['server-start'] }
      : undefined;
  let names = (args.operations ?? args.scenarios)?.split(',') ?? OPERATIONS;
  let faults = args.faults?.split(',') as Fault[] | undefined;
  // The old name of the one server-stop scenario: change-key with the server stopped.
  if (names.includes('server-crash')) {
    names = [...new Set(names.map((n) => (n === 'server-crash' ? 'change-key' : n)))];
    faults ??= ['server-stop'];
  }
  for (const name of names) if (!OPERATIONS.includes(name as Operation)) throw new Error(`unknown operation ${name}`);
  if (faults?.includes('server-stop') && !server) throw new Error('server-stop needs --server-stop and --server-start');
  const options: Options = {
    url: args.url,
    stopUrl: args['stop-url'] ?? args.url,
    rows: args.rows,
    trials: args.trials,
    long: args.long,
    faults,
    server,
    random: mulberry32(args.seed),
  };
  process.stdout.write(
    `crash harness: seed ${args.seed} (replay with --seed ${args.seed}), ` +
      `${args.long ? 'long form' : `${args.trials} trial(s) per operation`}, ` +
      `${args.rows} rows per table${server ? '' : '; no server stops (no --server-stop/--server-start)'}\n`,
  );
  const results: Record<string, Tally> = {};
  for (const operation of names as Operation[]) {
    const tallies = await runOperationTrials(operation, options);
    for (const [fault, tally] of Object.entries(tallies)) {
      results[`${operation}/${fault}`] = tally;
      process.stdout.write(`${operation}/${fault}: ${JSON.stringify(tally)}\n`);
    }
  }
  const bad = Object.values(results).some(failed);
  const totals = Object.values(results).reduce(
    (sum, t) => ({
      trials: sum.trials + t.trials,
      cellsChecked: sum.cellsChecked + t.cellsChecked,
      lost: sum.lost + t.lost,
      corrupted: sum.corrupted + t.corrupted,
      falseAlarms: sum.falseAlarms + t.falseAlarms,
      misreported: sum.misreported + t.misreported,
    }),
    { trials: 0, cellsChecked: 0, lost: 0, corrupted: 0, falseAlarms: 0, misreported: 0 },
  );
  process.stdout.write(
    `${JSON.stringify({ seed: args.seed, totals, results })}\n` +
      `${bad ? 'FAILED' : 'OK: 0 lost or corrupted cells, 0 false alarms, status and verify told the truth'}\n`,
  );
  return bad ? 1 : 0;
}

/** The faults each trial of an operation gets, in order. */
function plan(operation: Operation, options: Options, steps: number): Fault[] {
  const faults = FAULTS[operation].filter(
    (f) => (f !== 'server-stop' || options.server) && (!options.faults || options.faults.includes(f)),
  );
  if (!faults.length) return [];
  if (options.long)
    return faults.flatMap((fault) =>
      Array.from(
        { length: fault === 'keystore-down' ? Math.max(LONG_PER_FAULT, steps + 1) : LONG_PER_FAULT },
        () => fault,
      ),
    );
  const trials = operation === 'activate' ? Math.min(options.trials, SHORT_ACTIVATE) : options.trials;
  return Array.from({ length: trials }, (_, i) => faults[i % faults.length]);
}

interface Place {
  org: Org;
  originals: Originals;
}

async function runOperationTrials(operation: Operation, options: Options): Promise<Record<string, Tally>> {
  const tallies: Record<string, Tally> = {};
  const places = new Map<string, Place>();
  const keyDir = mkdtempSync(join(tmpdir(), 'cellcrypt-crash-'));
  const keyFile = join(keyDir, 'key.txt');
  // install needs a plaintext org every trial; the others repeat on one installed org per server.
  const placeOn = async (url: string): Promise<Place> => {
    const known = operation === 'install' ? undefined : places.get(url);
    if (known) return known;
    const org = await createOrg(url, options.rows);
    const originals = await withToolkit(org, recordOriginals);
    if (operation !== 'install') {
      await withToolkit(org, install);
      if (operation === 'activate') await saveKey(org, keyFile);
    }
    const place = { org, originals };
    if (operation !== 'install') places.set(url, place);
    return place;
  };
  const args = ARGS[operation].map((arg) => (arg === '<file>' ? keyFile : arg));
  try {
    // Calibration, not counted: how long the operation runs (to spread the faults over it), and
    // how many writes it makes to the key store (the steps of the key store's outage).
    const calibration = await placeOn(options.url);
    // (Before install there is no key-store table to count on, and install has no outage fault.)
    const counting = FAULTS[operation].includes('keystore-down')
      ? new KeyStoreOutage(calibration.org.adminUrl, calibration.org.env.CELLCRYPT_CONFIG_URL!)
      : undefined;
    if (operation === 'activate') await forgetKeys(calibration.org);
    await counting?.arm(-1);
    const connectedAfter: { ms?: number } = {};
    const measured = await runOperation(
      calibration.org.env,
      args,
      timeToConnect(calibration.org.env.DATABASE_URL!, connectedAfter),
    );
    const steps = (await counting?.writes()) ?? 0;
    await counting?.restore();
    if (measured.code !== 0) throw new Error(`calibration run of ${args.join(' ')} failed: ${measured.stderr}`);
    if (operation === 'install') await calibration.org.drop();
    const duration = measured.ms;
    // The part of the run after start-up, when a Ctrl-C meets cellcrypt's own handling.
    const working = Math.max(100, duration - (connectedAfter.ms ?? 0));
    process.stdout.write(
      `${operation}: calibration ${duration} ms (connected after ${connectedAfter.ms ?? '?'} ms)` +
        `${counting ? `, ${steps} key-store write(s)` : ''}\n`,
    );
    let outages = 0;
    let held = 0;
    for (const [i, fault] of plan(operation, options, steps).entries()) {
      const trial = i + 1;
      const place = await placeOn(fault === 'server-stop' ? options.stopUrl : options.url);
      const { org } = place;
      if (operation === 'activate') await forgetKeys(org);
      const tally = (tallies[fault] ??= newTally(fault));
      let run: Run;
      if (fault === 'keystore-down') {
        // Every step in turn in the long form; one at random per trial in the short one.
        const step = options.long ? outages++ % (steps + 1) : Math.floor(options.random() * (steps + 1));
        count(tally.steps!, String(step));
        const down = new KeyStoreOutage(org.adminUrl, org.env.CELLCRYPT_CONFIG_URL!);
        await down.arm(step);
        try {
          run = await runOperation(org.env, args, down.injector(step));
          await judgeWhileDown(operation, org, tally, trial);
        } finally {
          await down.restore();
        }
      } else if (fault === 'held') {
        const point = REWRAP_KILL_POINTS[held++ % REWRAP_KILL_POINTS.length];
        const certificateBefore = await withToolkit(org, certificateOf);
        run = await runOperation(
          org.env,
          args,
          killWhileWaiting(
            point.database === 'org' ? org.env.DATABASE_URL! : org.env.CELLCRYPT_CONFIG_URL!,
            point.lock,
          ),
        );
        tally.windows ??= {};
        count(tally.windows, `${point.name}:${await withToolkit(org, (tk) => rewrapWindow(tk, certificateBefore))}`);
      } else {
        run = await runOperation(org.env, args, injectorFor(operation, fault, { duration, working }, options, org));
      }
      await judgeTrial({
        org,
        originals: place.originals,
        operation,
        fault,
        trial,
        tally,
        run,
        ...(operation === 'activate' && { saved: await readSaved(keyFile) }),
      });
      if (operation === 'install') await org.drop();
    }
  } finally {
    for (const place of places.values()) await place.org.drop();
    rmSync(keyDir, { recursive: true, force: true });
  }
  return tallies;
}

function injectorFor(
  operation: Operation,
  fault: Fault,
  { duration, working }: { duration: number; working: number },
  options: Options,
  org: Org,
): Injector {
  const { random } = options;
  switch (fault) {
    case 'sigkill':
      // rewrap writes both stores in the last half second of a run that is mostly process
      // start-up: its kills are spread over the second half, so they land in those windows.
      return signalAfter(
        Math.floor(operation === 'rewrap' ? duration * (0.55 + 0.55 * random()) : random() * duration * 1.2),
        'SIGKILL',
      );
    case 'sigint':
      return interruptAfterConnecting(org.env.DATABASE_URL!, Math.floor(working * 1.05 * random()));
    case 'server-stop':
      return serverStopAfter(Math.floor(random() * duration * 1.1), options.server!);
    default:
      throw new Error(`no injector for ${fault}`);
  }
}

/**
 * While the key store is still unreachable (the operation has exited): status must not call
 * any cell undecryptable; it says the cells could not be checked (exit 4) or that the key store
 * cannot be opened.
 */
async function judgeWhileDown(operation: Operation, org: Org, tally: Tally, trial: number): Promise<void> {
  const status = await cli(org.env, ['status', '--json']);
  const undecryptable = (status.json.columns ?? []).reduce((n: number, c: any) => n + c.undecryptable, 0);
  if (undecryptable > 0 || status.code === 3 || status.code === 0) {
    tally.falseAlarms++;
    process.stdout.write(
      `  trial ${trial} (${operation}/keystore-down): status with the key store down: exit ${status.code}, ` +
        `${undecryptable} undecryptable\n`,
    );
  }
}

/** activate's org: the key saved with show-key, and a key store that lost this org's values. */
async function saveKey(org: Org, file: string): Promise<void> {
  const passphrase = await withToolkit(org, async (tk) => (await tk.keystore()).get('passphrase'));
  writeFileSync(file, formatKeyFile(passphrase!, 'utf8'), { mode: 0o600 });
}

async function readSaved(file: string) {
  return { key: (await readKeyFile(file)).passphrase, file };
}

async function forgetKeys(org: Org): Promise<void> {
  const orgId = await withToolkit(org, (tk) => tk.organizationId());
  const client = new Client({ connectionString: org.env.CELLCRYPT_CONFIG_URL });
  await client.connect();
  try {
    await client.query('delete from cellcrypt_keystore where org_id = $1', [orgId]);
  } finally {
    await client.end();
  }
}

/**
 * Kill points for rewrap: another session holds a row lock the operation needs at one step.
 * `in-transaction`: the org's master-key row, which rewrap updates last in its transaction,
 * after the pending password is in the key store; `after-commit`: the key store's
 * master-key-password row, which rewrap writes right after its commit.
 */
const REWRAP_KILL_POINTS: Array<{ name: string; database: 'org' | 'config'; lock: string }> = [
  { name: 'in-transaction', database: 'org', lock: 'select 1 from cellcrypt.master_key for update' },
  {
    name: 'after-commit',
    database: 'config',
    lock: `select 1 from cellcrypt_keystore where name = 'master-key-password' for update`,
  },
];

/** The org's certificate as the database has it now (rewrap replaces it). */
async function certificateOf(tk: Toolkit): Promise<string | undefined> {
  return currentCertificate((await tk.engine.keys.read(tk.engine.knex)).certificates);
}

/**
 * Where a killed rewrap left the key store and the database, read before anything repairs them:
 * `before` (no pending password, old certificate), `pending` (pending password, not committed),
 * `committed` (new certificate, its password still pending), `promoted` (new certificate, new
 * password current; pending not yet removed), `done`.
 */
async function rewrapWindow(tk: Toolkit, certificateBefore: string | undefined): Promise<string> {
  const keystore = await tk.keystore();
  const current = await keystore.get('master-key-password');
  const pending = await keystore.get('master-key-password.pending');
  const committed = (await certificateOf(tk)) !== certificateBefore;
  if (!committed) return pending ? 'pending' : 'before';
  if (!pending) return 'done';
  return current && pending.equals(current) ? 'promoted' : 'committed';
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
