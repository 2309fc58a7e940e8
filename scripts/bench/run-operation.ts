// One timed operation in its own process, so its peak RSS is its own (scripts/bench.ts runs it):
//   tsx scripts/bench/run-operation.ts install|change-key|change-key-client|change-key-batched|floor
// Prints one JSON line: { ms, maxRssMb, cells }. Settings come from the environment.
import { loadSettings } from '../../src/config/settings';
import { changeKey } from '../../src/core/change-key';
import { install } from '../../src/core/install';
import { openToolkit } from '../../src/open-toolkit';

const BATCH = 50_000;

async function main(): Promise<void> {
  const operation = process.argv[2];
  const tk = await openToolkit(loadSettings());
  try {
    // Every operation starts from the same table state, as after autovacuum: without this each
    // one paid for the dead row versions of the ones before it (install, then the floor, ...),
    // which made the later operations look slower than they are. Not timed.
    await tk.engine.knex.raw('vacuum');
    const started = process.hrtime.bigint();
    let cells = 0;
    if (operation === 'install') {
      await install(tk);
    } else if (operation === 'change-key') {
      cells = (await changeKey(tk, { generate: true })).cells;
    } else if (operation === 'change-key-client') {
      cells = (await changeKey(tk, { generate: true, path: 'client' })).cells;
    } else if (operation === 'change-key-batched') {
      cells = (await changeKey(tk, { generate: true, batchSize: BATCH })).cells;
    } else if (operation === 'floor') {
      // The floor: the same rows rewritten by a plain UPDATE, no crypto, one transaction.
      await tk.engine.knex.transaction(async (trx) => {
        for (const column of tk.registry) {
          const t = tk.engine.quoteIdentifier(column.table);
          const c = tk.engine.quoteIdentifier(column.column);
          const result = await trx.raw(`update ${t} set ${c} = ${c} where ${c} is not null`);
          cells += result.rowCount ?? 0;
        }
      });
    } else {
      throw new Error(`unknown operation ${operation}`);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stdout.write(
      `${JSON.stringify({ ms: Math.round(ms), maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024), cells })}\n`,
    );
  } finally {
    await tk.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
