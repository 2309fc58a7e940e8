// Install time for a seeded demo org: `npm run bench:install -- --rows 10000 [--database-url URL]`.
// Seeds N plaintext rows per demo table (4 tables, 5 sensitive columns, every 10th value NULL)
// into a throw-away org (embedded PGlite by default, or the empty database you name), then times
// `install` and checks the status: the number is only printed when every column is encrypted
// with 0 plaintext and 0 undecryptable cells. A benchmark script, not a test: the machine is
// shared, so compare numbers from one run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { loadSettings } from '../src/config/settings';
import { seedDemo } from '../src/core/demo-seed';
import { install } from '../src/core/install';
import { readStatus } from '../src/core/status';
import { openToolkit } from '../src/open-toolkit';

async function main(): Promise<void> {
  const args = await yargs(process.argv.slice(2))
    .option('rows', { type: 'number', default: 10_000, describe: 'rows per demo table' })
    .option('database-url', { type: 'string', describe: 'an empty org database (default: a new embedded PGlite org)' })
    .strict()
    .parseAsync();
  const home = mkdtempSync(join(tmpdir(), 'cellcrypt-bench-install-'));
  try {
    const settings = loadSettings({ env: { ...process.env, CELLCRYPT_HOME: home }, databaseUrl: args['database-url'] });
    const tk = await openToolkit(settings);
    try {
      const seedStarted = Date.now();
      await seedDemo(tk, args.rows);
      const seedMs = Date.now() - seedStarted;
      const result = await install(tk);
      const status = await readStatus(tk);
      const cells = status.columns.reduce((sum, c) => sum + c.cells, 0);
      const clean = status.columns.every((c) => c.state === 'encrypted' && c.plaintext === 0 && c.undecryptable === 0);
      if (!clean) throw new Error(`install left work undone: ${JSON.stringify(status.columns)}`);
      const line = {
        engine: tk.engine.kind,
        rowsPerTable: args.rows,
        cells,
        seedMs,
        installMs: result.durationMs,
        cellsPerSecond: Math.round((cells / result.durationMs) * 1000),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    } finally {
      await tk.close();
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
