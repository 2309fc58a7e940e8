import { connectionFailure } from '../core/connection-failure';
import yargs from 'yargs';
import { isCellcryptError } from '../common/errors';
import type { CellcryptCommand, GlobalArgs } from './command';
import { COMMANDS } from './commands';
import { handleInterrupts, INTERRUPTED_EXIT_CODE, type Interruption } from './interrupt';
import { type CliIo, processIo } from './io';

export { handleInterrupts };

/**
 * The cellcrypt CLI root: global options, one module per command, and the one place where
 * errors become exit codes (README, "Exit codes": 0 done, 1 failed and nothing changed, 2 refused
 * before any change, 3 cells that do not decrypt or are still plaintext, 4 cells not checked,
 * 130 stopped by Ctrl-C). `interruption` is the executable's Ctrl-C handling (interrupt.ts).
 */
export async function runCli(
  argv: string[],
  ioFactory: (json: boolean) => CliIo = processIo,
  options: { interruption?: Interruption } = {},
): Promise<number> {
  let exitCode = 0;
  const wantsJson = argv.includes('--json');
  const nodeOwned = argv.find((arg) => arg === '--env-file' || arg.startsWith('--env-file='));
  if (nodeOwned) return refuseNodeOwnedOption(ioFactory(wantsJson));
  const parser = yargs(joinStdinValues(argv))
    .scriptName('cellcrypt')
    .usage('$0 [--settings-file F] [--database-url URL] [--config-url URL] [--json] <command>')
    .option('settings-file', {
      type: 'string',
      requiresArg: true,
      describe: 'read settings from this dotenv file (the environment wins)',
    })
    .option('database-url', {
      type: 'string',
      describe: 'org database: mssql://, postgres:// or pglite:PATH (default DATABASE_URL, else pglite:.cellcrypt/org)',
    })
    .option('config-url', {
      type: 'string',
      describe: 'key-store database (default CELLCRYPT_CONFIG_URL, else pglite:.cellcrypt/config)',
    })
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'print one JSON document on stdout; logs go to stderr',
    })
    .strict()
    .demandCommand(1, 'name a command (see --help)')
    .recommendCommands()
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((message, error) => {
      // Everything that reaches here is about the command line (unknown commands, failed
      // option checks); errors from running a command are reported by runCommand.
      throw isCellcryptError(error) ? error : new UsageError(error?.message ?? message);
    });
  for (const command of COMMANDS) {
    parser.command({
      ...command,
      handler: async (args) => {
        exitCode = await runCommand(command, args as unknown as GlobalArgs, ioFactory, {
          interruption: options.interruption,
          argv,
        });
      },
    });
  }
  try {
    await parser.parseAsync();
  } catch (error) {
    const io = ioFactory(wantsJson);
    if (error instanceof UsageError) {
      io.log(`${error.message}\nrun \`cellcrypt --help\` for usage`);
      io.result({ error: { code: 'CellcryptUsage', message: error.message } });
      return 2;
    }
    return report(io, error);
  }
  return exitCode;
}

class UsageError extends Error {}

/**
 * Node 20 reads `--env-file` wherever it appears, script arguments included (nodejs/node#54232):
 * a missing file stopped node itself (exit 9) before cellcrypt ran. The option is now
 * `--settings-file`; a Node that passes `--env-file` on to us (22 and later) gets told so.
 */
function refuseNodeOwnedOption(io: CliIo): number {
  const message = '--env-file is read by Node itself; cellcrypt reads its dotenv file with --settings-file F';
  io.log(`${message}\nrun \`cellcrypt --help\` for usage`);
  io.result({ error: { code: 'CellcryptUsage', message } });
  return 2;
}

/** Options whose value may be `-`, read from stdin (secrets never come from argv). */
const STDIN_OPTIONS = new Set(['--key-file', '--key-share']);

/**
 * yargs reads a lone `-` as a positional argument, so `--key-file -` lost its value (`cannot
 * read key file ''`, or `Unknown argument: -`) although the help and the messages recommend it:
 * `--key-file -` is passed on as `--key-file=-`, which yargs reads as meant.
 */
export function joinStdinValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') return [...out, ...argv.slice(i)];
    if (STDIN_OPTIONS.has(argv[i]) && argv[i + 1] === '-') {
      out.push(`${argv[i]}=-`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

async function runCommand(
  command: CellcryptCommand,
  args: GlobalArgs,
  ioFactory: (json: boolean) => CliIo,
  { interruption, argv }: { interruption?: Interruption; argv: readonly string[] },
): Promise<number> {
  const io = ioFactory(Boolean(args.json));
  interruption?.running(String(command.command));
  try {
    const code = await command.run(args as GlobalArgs & Record<string, unknown>, io);
    // Ctrl-C came while the last step was committing: the command finished, and says so.
    if (interruption?.requested) io.log('Ctrl-C came after the last step had started: the command finished');
    return code;
  } catch (error) {
    if (interruption?.requested)
      return reportInterrupted(io, error, interruption.summary(String(command.command), argv));
    return report(io, error);
  }
}

/**
 * A command stopped by Ctrl-C: whatever error the stop surfaced as (a refused statement, a
 * cancelled one, the operation's own wrapping of either), what the interrupted command leaves
 * and the way on; exit 130, as a shell reports a process ended by SIGINT.
 */
function reportInterrupted(io: CliIo, error: unknown, summary: { message: string; hint: string }): number {
  const stopped = connectionFailure(error) ?? error;
  const detail = stopped instanceof Error ? stopped.message : String(stopped);
  io.log(`error [CellcryptInterrupted]: ${summary.message}\n  (${detail})\n  -> ${summary.hint}`);
  io.result({ error: { code: 'CellcryptInterrupted', message: summary.message, detail, hint: summary.hint } });
  return INTERRUPTED_EXIT_CODE;
}

function report(io: CliIo, error: unknown): number {
  error = connectionFailure(error) ?? error;
  if (isCellcryptError(error)) {
    const code = error.hresult ? `${error.code} ${error.hresult}` : error.code;
    io.log(`error [${code}]: ${error.message}${error.hint ? `\n  -> ${error.hint}` : ''}`);
    io.result({ error: error.toJSON() });
    return error.exitCode;
  }
  // Unexpected: say so plainly; the stack helps a bug report and holds no secret values
  // (secrets travel as bound parameters, never in SQL text or messages).
  io.log(`error [CellcryptInternal]: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  io.result({ error: { code: 'CellcryptInternal', message: error instanceof Error ? error.message : String(error) } });
  return 1;
}

if (require.main === module) {
  runCli(process.argv.slice(2), processIo, { interruption: handleInterrupts() }).then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      process.stderr.write(`${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
