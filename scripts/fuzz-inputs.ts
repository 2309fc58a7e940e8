// Fuzzes the parsers a user reaches with arbitrary input (key files, URLs, passphrases):
//   npm run fuzz -- [--runs 100000] [--seed N]
// Every input must be accepted or refused with a CellcryptError and exit code 2; anything else
// is printed with the seed and path that replay it, and the script exits 1.
import fc from 'fast-check';
import yargs from 'yargs';
import { PARSERS, judgeInput } from '../src/core/hostile-inputs';
import { hostileBytes } from '../test/support/hostile-bytes';

async function main(): Promise<number> {
  const args = await yargs(process.argv.slice(2))
    .option('runs', { type: 'number', default: 100_000 })
    .option('seed', { type: 'number' })
    .strict()
    .parseAsync();
  let failed = false;
  for (const [name, parse] of Object.entries(PARSERS)) {
    const refusals = new Map<string, number>();
    let accepted = 0;
    const result = fc.check(
      fc.property(hostileBytes(), (input) => {
        const verdict = judgeInput(parse, Buffer.from(input));
        if (verdict.ok) accepted++;
        else if (verdict.refused) refusals.set(verdict.code, (refusals.get(verdict.code) ?? 0) + 1);
        return verdict.ok || verdict.refused;
      }),
      { numRuns: args.runs, seed: args.seed },
    );
    process.stdout.write(
      `${name}: ${result.numRuns} inputs, ${accepted} accepted, ` +
        `refused ${JSON.stringify(Object.fromEntries(refusals))}\n`,
    );
    if (result.failed) {
      failed = true;
      process.stdout.write(`  FAILED: ${fc.defaultReportMessage(result)}\n`);
    }
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => (process.exitCode = code),
  (error) => {
    process.stderr.write(`${String(error)}\n`);
    process.exitCode = 1;
  },
);
