// Conversion and rotation against a plain rewrite of the same rows (issue: performance):
//   npm run bench -- [--sizes 10000,100000,1000000] [--engines pglite,postgres] [--url postgres://admin@host/postgres]
// For each engine and size N (cells): seed a demo org with N non-null cells, then time in
// separate processes (so peak RSS is the operation's own): install (conversion), the floor (a
// plain UPDATE rewriting the same rows, no crypto), change-key in one transaction, change-key in
// batches. Prints cells/s and the ratio to the floor; writes bench-results/bench-<time>.json and
// an SVG chart of time per cell against N. One run, one machine: compare ratios, not seconds.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import yargs from 'yargs';
import { loadSettings } from '../src/config/settings';
import { seedDemo } from '../src/core/demo-seed';
import { openToolkit } from '../src/open-toolkit';
import { renderChart, type Series } from './bench/chart';
import { createThrowAwayDatabase } from '../test/support/pg-server';

const OPERATIONS = ['install', 'floor', 'change-key', 'change-key-client', 'change-key-batched'] as const;
type Operation = (typeof OPERATIONS)[number];
const RUNNER = resolve(__dirname, 'bench/run-operation.ts');
/** Demo tables hold 5 sensitive columns over 4 tables, every 10th value NULL: 4.5 cells per row index. */
const CELLS_PER_ROW = 4.5;

interface Measurement {
  engine: string;
  cells: number;
  operation: Operation;
  ms: number;
  maxRssMb: number;
  cellsPerSecond: number;
  ratioToFloor?: number;
}

async function main(): Promise<void> {
  const args = await yargs(process.argv.slice(2))
    .option('sizes', { type: 'string', default: '10000,100000,1000000', describe: 'numbers of cells' })
    .option('engines', { type: 'string', default: 'pglite,postgres' })
    .option('url', {
      type: 'string',
      describe: 'admin URL of a PostgreSQL server (required for the postgres engine)',
      default: process.env.TEST_PG_URL,
    })
    .option('out', { type: 'string', default: 'bench-results' })
    .strict()
    .parseAsync();
  const sizes = args.sizes.split(',').map(Number);
  const engines = args.engines.split(',');
  const results: Measurement[] = [];
  for (const engine of engines) {
    if (engine === 'postgres' && !args.url) throw new Error('the postgres engine needs --url (or TEST_PG_URL)');
    for (const cells of sizes) {
      const org = await createOrg(engine, args.url);
      try {
        await withSeededOrg(org.env, Math.ceil(cells / CELLS_PER_ROW));
        const measured: Partial<Record<Operation, Measurement>> = {};
        for (const operation of OPERATIONS) {
          const run = await runOperation(org.env, operation);
          measured[operation] = {
            engine,
            cells,
            operation,
            ms: run.ms,
            maxRssMb: run.maxRssMb,
            cellsPerSecond: Math.round((cells / run.ms) * 1000),
          };
        }
        for (const operation of OPERATIONS) {
          const m = measured[operation]!;
          if (operation !== 'floor') m.ratioToFloor = Math.round((m.ms / measured.floor!.ms) * 100) / 100;
          results.push(m);
          process.stdout.write(
            `${engine.padEnd(8)} ${String(cells).padStart(8)} ` +
              `${operation.padEnd(18)} ${String(m.ms).padStart(8)} ms ` +
              `${String(m.cellsPerSecond).padStart(8)} cells/s ` +
              `${m.ratioToFloor === undefined ? '   floor' : `${m.ratioToFloor.toFixed(2).padStart(7)}x`} ` +
              `${String(m.maxRssMb).padStart(5)} MB RSS\n`,
          );
        }
      } finally {
        await org.drop();
      }
    }
  }
  mkdirSync(args.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const json = join(args.out, `bench-${stamp}.json`);
  writeFileSync(json, `${JSON.stringify({ node: process.version, results }, null, 2)}\n`);
  const series: Series[] = [];
  for (const engine of engines) {
    for (const operation of OPERATIONS) {
      series.push({
        label: `${engine} ${operation}`,
        points: results
          .filter((r) => r.engine === engine && r.operation === operation)
          .map((r) => ({ x: r.cells, y: (r.ms * 1000) / r.cells })),
      });
    }
  }
  const svg = join(args.out, `bench-${stamp}.svg`);
  writeFileSync(
    svg,
    renderChart(series, { title: 'time per cell against N', xLabel: 'cells (log)', yLabel: 'µs per cell (log)' }),
  );
  process.stdout.write(`results: ${json}\nchart: ${svg}\n`);
}

interface Org {
  env: NodeJS.ProcessEnv;
  drop(): Promise<void>;
}

async function createOrg(engine: string, adminUrl: string | undefined): Promise<Org> {
  const base = {
    CELLCRYPT_CHANGE_QUOTA: '1000000',
    CELLCRYPT_KEYSTORE_SECRET: `bench-${randomBytes(12).toString('hex')}`,
  };
  if (engine === 'pglite') {
    const dir = mkdtempSync(join(tmpdir(), 'cellcrypt-bench-'));
    return {
      env: {
        ...base,
        CELLCRYPT_HOME: dir,
        DATABASE_URL: `pglite:${dir}/org`,
        CELLCRYPT_CONFIG_URL: `pglite:${dir}/config`,
      },
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const [org, cfg] = await Promise.all(
    ['org', 'cfg'].map((kind) => createThrowAwayDatabase(adminUrl!, `cellcrypt_bench_${kind}`)),
  );
  return {
    env: { ...base, DATABASE_URL: org.url, CELLCRYPT_CONFIG_URL: cfg.url },
    drop: async () => {
      await org.drop();
      await cfg.drop();
    },
  };
}

async function withSeededOrg(env: NodeJS.ProcessEnv, rowsPerTable: number): Promise<void> {
  const tk = await openToolkit(loadSettings({ env: { ...process.env, ...env } }));
  try {
    await seedDemo(tk, rowsPerTable);
  } finally {
    await tk.close();
  }
}

function runOperation(env: NodeJS.ProcessEnv, operation: Operation): Promise<{ ms: number; maxRssMb: number }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', RUNNER, operation], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', fail);
    child.on('exit', (code) => {
      if (code !== 0) return fail(new Error(`${operation} exited with ${code}: ${stderr.slice(-2000)}`));
      done(JSON.parse(stdout.trim().split('\n').pop()!));
    });
  });
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
