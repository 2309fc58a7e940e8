import { readEnvironment } from '../../config/settings';
import { parseConnectionTarget, type ConnectionTarget } from '../../config/connection-target';
import { CellcryptError } from '../../common/errors';
import { runSelftest } from '../../core/selftest/run';
import type { SelftestResult, SelftestSeams } from '../../core/selftest/types';
import { defineCommand, type GlobalArgs } from '../command';
import type { CliIo } from '../io';
import { openThrowAwayOrg } from './selftest-database';

export { runSelftest };

interface SelftestArgs {
  database?: string;
  keep: boolean;
}

const MARK = { ok: 'ok     ', fail: 'FAIL   ', skipped: 'skipped' } as const;

/** One report line: `ok  check: detail`, `FAIL  check: detail -> hint`, `skipped  check (why)`. */
export function formatResult(result: SelftestResult): string {
  if (result.outcome === 'skipped') return `${MARK.skipped}  ${result.check} (${result.detail})`;
  const hint = result.hint ? `\n          -> ${result.hint}` : '';
  return `${MARK[result.outcome]}  ${result.check}: ${result.detail}${hint}`;
}

/** The server (or embedded default) to test: --database-url, else DATABASE_URL, else a throw-away PGlite. */
function serverTarget(args: GlobalArgs): ConnectionTarget {
  const env = readEnvironment(args.settingsFile, process.env, process.cwd());
  const raw = args.databaseUrl ?? env.DATABASE_URL ?? 'pglite:memory://';
  const target = parseConnectionTarget(raw, process.cwd());
  if (typeof target === 'string')
    throw new CellcryptError('CellcryptConfigInvalid', `--database-url / DATABASE_URL: ${target}`, {
      exitCode: 2,
      hint: 'give mssql://..., postgres://... (a server whose user may CREATE DATABASE) or leave it out for PGlite',
    });
  return target;
}

/**
 * The command's work, with the seams a test may pass (never the CLI): exit 0 when no check
 * failed, 3 when one did. The throw-away database is dropped also after a failure unless `keep`.
 */
export async function selftestCommand(
  args: SelftestArgs & GlobalArgs,
  io: CliIo,
  seams?: SelftestSeams,
): Promise<number> {
  const target = serverTarget(args);
  const org = await openThrowAwayOrg(target, args.database);
  io.log(`selftest on ${target.kind}: database ${org.database.location} (throw-away), key store in ${org.home}`);
  const report = await runSelftest(org.environment, {
    seams,
    onResult: (result) => io.print(formatResult(result)),
  }).catch(async (error: unknown) => {
    await org.close(args.keep);
    throw error;
  });
  const closed = await org.close(args.keep);
  const kept = args.keep || !org.database.created;
  const database = { ...org.database, dropped: closed.dropped, kept, keyStore: args.keep ? org.home : undefined };
  io.result({ ...report, server: target.location, database, ...(closed.problem && { cleanup: closed.problem }) });
  if (closed.problem) io.log(`cleanup: ${closed.problem}`);
  if (kept)
    io.log(
      org.database.created
        ? `kept: ${org.database.location} and its key store in ${org.home} (--keep); remove them when done`
        : `--database ${org.database.name} was given, so it is not dropped: it now holds the selftest's org`,
    );
  const counts = (outcome: SelftestResult['outcome']) => report.checks.filter((c) => c.outcome === outcome).length;
  io.print(
    report.ok
      ? `selftest: ${counts('ok')} checks ok, ${counts('skipped')} skipped, none failed (${report.durationMs} ms)`
      : `selftest: ${report.failed.length} check(s) FAILED: ${report.failed.join('; ')}`,
  );
  return report.ok ? 0 : 3;
}

export default defineCommand<SelftestArgs>({
  command: 'selftest',
  describe:
    'Prove cellcrypt on this server: the whole life of an org and every assumption the engine makes, on a ' +
    'throw-away database it creates and drops (needs CREATE DATABASE, or --database NAME); exit 3 if a check fails',
  builder: (y) =>
    y
      .option('database', {
        type: 'string',
        requiresArg: true,
        describe: 'an empty database made for the selftest, instead of creating cellcrypt_selftest_<random>',
      })
      .option('keep', {
        type: 'boolean',
        default: false,
        describe: 'keep the throw-away database and its key store afterwards (to look at them)',
      }) as never,
  run: (args, io) => selftestCommand(args, io),
});
