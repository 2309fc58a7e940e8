// Load test (issue 15): application sessions write and read encrypted cells through the
// application contract while, in the same run, a one-transaction change-key, a batched change-key
// (killed once and resumed) and an install of a newly registered column happen. Afterwards every
// committed write must be present and decrypt to what its writer recorded, no read of a non-null
// cell may have returned NULL or a value its row never held, and nothing may be left on a dropped key.
//
//   npm run load -- --url postgres://postgres@127.0.0.1:5432/postgres [--writers 4] [--readers 4]
//                   [--seconds 60] [--rows 2000] [--json]
//
// --url is an admin connection: the test creates and drops its own databases.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import yargs from 'yargs';
import { loadSettings } from '../src/config/settings';
import { seedDemo } from '../src/core/demo-seed';
import { assessActivity } from '../src/core/key-access';
import { openToolkit } from '../src/open-toolkit';
import { createThrowAwayDatabase } from '../test/support/pg-server';
import { AppWorkload, type AppColumn } from './load/app-sessions';
import { runCellcrypt, type OperationRun } from './load/operations';
import { formatWindows, reportWindows, windowsOf } from './load/report';
import { mulberry32, pause } from './support/seeded-random';

/** The column the run registers and installs while the applications write to it. */
const NEW_COLUMN = {
  entity: 'Queue',
  attribute: 'ApiToken',
  table: 'QueueBase',
  column: 'ApiToken',
  primaryKey: 'QueueId',
  maxLength: 100,
};

const APP_COLUMNS: readonly AppColumn[] = [
  { table: 'MailboxBase', column: 'Password', primaryKey: 'MailboxId' },
  { table: 'QueueBase', column: 'EmailPassword', primaryKey: 'QueueId' },
  { table: 'UserSettingsBase', column: 'EmailPassword', primaryKey: 'SystemUserId' },
  NEW_COLUMN,
];

async function main(): Promise<number> {
  const args = await yargs(process.argv.slice(2))
    .option('url', { type: 'string', default: process.env.TEST_PG_URL, describe: 'admin URL of a PostgreSQL server' })
    .option('writers', { type: 'number', default: 4 })
    .option('readers', { type: 'number', default: 4 })
    .option('seconds', { type: 'number', default: 60 })
    .option('rows', { type: 'number', default: 2000, describe: 'demo rows per table before the run' })
    .option('batch-size', { type: 'number', default: 200, describe: 'cells per transaction of the batched change' })
    .option('seed', { type: 'number', default: randomBytes(4).readUInt32BE() })
    .option('json', { type: 'boolean', default: false })
    .strict()
    .parseAsync();
  if (!args.url) throw new Error('--url (or TEST_PG_URL) is required: an admin URL of a PostgreSQL server');
  const say = (line: string) => (args.json ? process.stderr : process.stdout).write(`${line}\n`);

  const org = await createThrowAwayDatabase(args.url, 'cellcrypt_load_org');
  const config = await createThrowAwayDatabase(args.url, 'cellcrypt_load_cfg');
  const dir = mkdtempSync(join(tmpdir(), 'cellcrypt-load-'));
  const registryFile = join(dir, 'registry.json');
  writeFileSync(registryFile, JSON.stringify({ columns: [NEW_COLUMN] }));
  const env: NodeJS.ProcessEnv = {
    DATABASE_URL: org.url,
    CELLCRYPT_CONFIG_URL: config.url,
    CELLCRYPT_KEYSTORE_SECRET: `load-test-${randomBytes(12).toString('hex')}`,
    CELLCRYPT_CHANGE_QUOTA: '1000000',
  };
  let workload: AppWorkload | undefined;
  try {
    say(`load test: seed ${args.seed}, ${args.writers} writer(s), ${args.readers} reader(s), ${args.seconds} s`);
    const masterKeyPassword = await setUp(env, org.url, args.rows, say);
    const started = Date.now();
    workload = new AppWorkload(org.url, () => masterKeyPassword, APP_COLUMNS, started, args.writers + args.readers);
    const sessions = [
      ...Array.from({ length: args.writers }, (_, i) => workload!.writer(i, mulberry32(args.seed + i + 1))),
      ...Array.from({ length: args.readers }, (_, i) => workload!.reader(mulberry32(args.seed + 100 + i))),
    ];
    const operations = await runOperations(env, registryFile, started, args.seconds * 1000, args['batch-size'], say);
    workload.stop();
    await Promise.all(sessions);
    const end = Date.now() - started;
    workload.judgeSuspectReads();
    const { checked, lost } = await workload.lostWrites();
    const verify = await runCellcrypt(
      'verify',
      { ...env, CELLCRYPT_REGISTRY: registryFile },
      ['verify', '--json'],
      started,
    );
    const leftOnDroppedKeys = cellsOnDroppedKeys(verify);
    const tally = workload.tally;
    const windows = reportWindows(windowsOf(operations, end), tally.writes, tally.reads);
    const failedOperations = operations.filter((op) => !op.killed && op.code !== 0);
    const summary = {
      seed: args.seed,
      seconds: end / 1000,
      writes: tally.writes.length,
      reads: tally.reads.length,
      failedWrites: tally.failedWrites,
      failedReads: tally.failedReads,
      readsThatReopenedKeys: tally.reopened,
      checked,
      lost: lost.length,
      badReads: tally.badReads.length,
      leftOnDroppedKeys,
      verifyExitCode: verify.code,
      operations: operations.map(({ name, from, to, code, killed }) => ({ name, from, to, code, killed })),
      windows,
      examples: { lost: lost.slice(0, 5), badReads: tally.badReads.slice(0, 5) },
      errors: Object.fromEntries([...tally.errors.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10)),
    };
    const ok = lost.length === 0 && tally.badReads.length === 0 && verify.code === 0 && failedOperations.length === 0;
    if (args.json) process.stdout.write(`${JSON.stringify({ ...summary, ok })}\n`);
    else {
      say(formatWindows(windows));
      for (const op of failedOperations) say(`${op.name} exited ${op.code}: ${op.stderr.trim().slice(-800)}`);
      say(
        `${summary.writes} writes, ${summary.reads} reads (${summary.failedWrites} writes and ${summary.failedReads} ` +
          `reads rolled back and retried); ${checked} rows checked: ${summary.lost} lost, ${summary.badReads} bad ` +
          `reads, verify exit ${verify.code}`,
      );
      say(ok ? 'OK: every committed write is there' : 'FAILED');
    }
    return ok ? 0 : 1;
  } finally {
    await workload?.close();
    await org.drop();
    await config.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Demo org, installed, plus the column to register later (plaintext, some values); returns the master-key password. */
async function setUp(
  env: NodeJS.ProcessEnv,
  orgUrl: string,
  rows: number,
  say: (line: string) => void,
): Promise<string> {
  const settings = loadSettings({ env: { ...process.env, ...env } });
  const tk = await openToolkit(settings);
  try {
    await seedDemo(tk, rows);
    say(`seeded ${rows} rows per demo table`);
  } finally {
    await tk.close();
  }
  const client = new Client({ connectionString: orgUrl });
  await client.connect();
  try {
    await client.query(`alter table "QueueBase" add column "ApiToken" varchar(100)`);
    await client.query(`update "QueueBase" set "ApiToken" = 'token-' || md5("QueueId"::text) where random() < 0.8`);
  } finally {
    await client.end();
  }
  const install = await runCellcrypt('install', env, ['install'], Date.now());
  if (install.code !== 0) throw new Error(`install failed: ${install.stderr}`);
  say(`installed in ${install.to - install.from} ms`);
  const again = await openToolkit(settings);
  try {
    const activity = await assessActivity(again);
    if (!activity.active) throw new Error(`not active after install: ${activity.reason}`);
    return activity.access.masterPassword.reveal();
  } finally {
    await again.close();
  }
}

/** The four operations, spread over the run, with quiet windows before, between and after. */
/**
 * A progress line of a change still under way, `label: n/total` and its newline: the last line,
 * `label: n/total done`, must not match (a kill after it lands after the change finished, and the
 * --resume that follows finds nothing to resume).
 */
const MID_CHANGE = /: \d+\/\d+\n/;

async function runOperations(
  env: NodeJS.ProcessEnv,
  registryFile: string,
  started: number,
  totalMs: number,
  batchSize: number,
  say: (line: string) => void,
): Promise<OperationRun[]> {
  const quiet = totalMs / 8;
  const runs: OperationRun[] = [];
  const step = async (run: Promise<OperationRun>) => {
    const done = await run;
    runs.push(done);
    say(`${done.name}: ${done.killed ? 'killed' : `exit ${done.code}`} after ${done.to - done.from} ms`);
    return done;
  };
  await pause(quiet);
  await step(runCellcrypt('change-key (one transaction)', env, ['change-key', '--generate'], started));
  await pause(quiet);
  const batched = ['change-key', '--generate', '--batch-size', String(batchSize)];
  const killed = await step(runCellcrypt('change-key --batch-size (killed)', env, batched, started, MID_CHANGE));
  if (killed.killed) {
    const resume = ['change-key', '--resume', '--batch-size', String(batchSize)];
    await step(runCellcrypt('change-key --resume', env, resume, started));
  }
  await pause(quiet);
  await step(runCellcrypt('install (new column)', { ...env, CELLCRYPT_REGISTRY: registryFile }, ['install'], started));
  const left = totalMs - (Date.now() - started);
  await pause(Math.max(left, quiet));
  return runs;
}

/**
 * Cells that no key in the database opens (a cell left on a dropped key is one), from verify's
 * list; null when verify printed no report.
 */
function cellsOnDroppedKeys(verify: OperationRun): number | null {
  try {
    const report = JSON.parse(verify.stdout) as { undecryptable?: Array<{ count: number }> };
    return (report.undecryptable ?? []).reduce((sum, column) => sum + column.count, 0);
  } catch {
    return null;
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`load test: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
