// How long embedded (PGlite) commands take on a small org: `npm run bench:embedded -- --runs 5`.
// Seeds and installs a throw-away org (12 rows per demo table), then runs each command --runs
// times through the real CLI in this process and prints the median and range per command, as
// one JSON line each. In-process, so Node and tsx start-up are not in the figures.
// `--whole-process` times the `cellcrypt` executable as a user runs it instead: each command
// (and a first `npm start` on an empty home) alternately from the compiled build and from
// source through tsx, with the ratio. A benchmark script, not a test: the machine is shared, so
// compare numbers from one run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import yargs from 'yargs';
import { runCli } from '../src/cli/main';
import { memoryIo } from '../src/cli/io';

const COMMANDS: string[][] = [['status', '--json'], ['show-key'], ['verify']];

async function cli(args: string[]): Promise<void> {
  const code = await runCli(args, (json) => memoryIo(json));
  if (code !== 0) throw new Error(`cellcrypt ${args.join(' ')} exited ${code}`);
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const ROOT = resolve(__dirname, '..');
const MODES = { compiled: '0', source: '1' } as const;

/** One whole process, in milliseconds; `fromSource` forces tsx even when dist/ is fresh. */
function spawnTimed(script: string, args: string[], mode: keyof typeof MODES): number {
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, [join(ROOT, script), ...args], {
    env: { ...process.env, CELLCRYPT_FROM_SOURCE: MODES[mode] },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`${script} ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function summary(times: number[]): { medianMs: number; minMs: number; maxMs: number } {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    medianMs: Math.round(sorted[Math.floor(sorted.length / 2)]),
    minMs: Math.round(sorted[0]),
    maxMs: Math.round(sorted[sorted.length - 1]),
  };
}

function wholeProcess(runs: number, home: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (!require('./launch.cjs').buildIsFresh()) throw new Error('dist/ is not current: run `npm run build` first');
  const jobs: Array<[string, string[], () => void]> = [
    ['first npm start', ['scripts/launch.cjs', 'scripts/start'], () => rmSync(home, { recursive: true, force: true })],
    ...COMMANDS.map((command): [string, string[], () => void] => [
      command.join(' '),
      ['src/cli/bin.js', ...command],
      () => undefined,
    ]),
  ];
  for (const [name, [script, ...args], before] of jobs) {
    const times = { compiled: [] as number[], source: [] as number[] };
    for (let run = 0; run < runs; run++) {
      for (const mode of ['compiled', 'source'] as const) {
        before();
        times[mode].push(spawnTimed(script, args, mode));
      }
    }
    const compiled = summary(times.compiled);
    const source = summary(times.source);
    const ratio = Math.round((source.medianMs / compiled.medianMs) * 100) / 100;
    process.stdout.write(`${JSON.stringify({ command: name, runs, compiled, source, sourceOverCompiled: ratio })}\n`);
  }
}

async function main(): Promise<void> {
  const args = await yargs(process.argv.slice(2))
    .option('runs', { type: 'number', default: 5, describe: 'runs of each command' })
    .option('whole-process', { type: 'boolean', default: false, describe: 'time the executable, compiled and not' })
    .strict()
    .parseAsync();
  const home = mkdtempSync(join(tmpdir(), 'cellcrypt-bench-embedded-'));
  Object.assign(process.env, {
    CELLCRYPT_HOME: home,
    DATABASE_URL: `pglite:${home}/org`,
    CELLCRYPT_CONFIG_URL: `pglite:${home}/config`,
  });
  try {
    if (args.wholeProcess) return wholeProcess(args.runs, home);
    const setup = {
      seedMs: await timed(() => cli(['demo', 'seed', '--rows', '12'])),
      installMs: await timed(() => cli(['install'])),
    };
    process.stdout.write(`${JSON.stringify({ setup })}\n`);
    for (const command of COMMANDS) {
      const times: number[] = [];
      for (let run = 0; run < args.runs; run++) times.push(await timed(() => cli(command)));
      process.stdout.write(
        `${JSON.stringify({ command: command.join(' '), runs: times.length, ...summary(times) })}\n`,
      );
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
