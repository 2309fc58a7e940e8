// How long embedded (PGlite) commands take on a small org: `npm run bench:embedded -- --runs 5`.
// Seeds and installs a throw-away org (12 rows per demo table), then runs each command --runs
// times through the real CLI in this process and prints the median and range per command, as
// one JSON line each. In-process, so Node and tsx start-up are not in the figures (time the
// `cellcrypt` executable as a whole for those). A benchmark script, not a test: the machine is
// shared, so compare numbers from one run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

async function main(): Promise<void> {
  const args = await yargs(process.argv.slice(2))
    .option('runs', { type: 'number', default: 5, describe: 'runs of each command' })
    .strict()
    .parseAsync();
  const home = mkdtempSync(join(tmpdir(), 'cellcrypt-bench-embedded-'));
  Object.assign(process.env, {
    CELLCRYPT_HOME: home,
    DATABASE_URL: `pglite:${home}/org`,
    CELLCRYPT_CONFIG_URL: `pglite:${home}/config`,
  });
  try {
    const setup = {
      seedMs: await timed(() => cli(['demo', 'seed', '--rows', '12'])),
      installMs: await timed(() => cli(['install'])),
    };
    process.stdout.write(`${JSON.stringify({ setup })}\n`);
    for (const command of COMMANDS) {
      const times: number[] = [];
      for (let run = 0; run < args.runs; run++) times.push(await timed(() => cli(command)));
      times.sort((a, b) => a - b);
      const round = (ms: number) => Math.round(ms);
      process.stdout.write(
        `${JSON.stringify({
          command: command.join(' '),
          runs: times.length,
          medianMs: round(times[Math.floor(times.length / 2)]),
          minMs: round(times[0]),
          maxMs: round(times[times.length - 1]),
        })}\n`,
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
