import { knex } from 'knex';
import { CellcryptError } from '../common/errors';

/**
 * Ctrl-C (SIGINT) while a command runs. The first one stops the operation at its current step:
 * the transaction in progress is rolled back (its next statement is refused, and on a
 * PostgreSQL server or SQL Server the statement running now is cancelled), what committed
 * before stays, and the command says what that means and how to go on, then exits 130. Work
 * outside transactions goes on (an audit row, the key store's clean-up after a rolled-back
 * change): each of those is one atomic statement, and they are what make the stop orderly. A
 * second Ctrl-C exits at once; the database then rolls back whatever was not committed, as
 * after a kill.
 *
 * knex has no cancellation hook, so the executable guards knex's one entry point for statements
 * (`Client.prototype.query` and `stream`, which every dialect's transaction goes through); the
 * in-process CLI (tests, the crash harness's judge) installs nothing.
 */
export interface Interruption {
  /** True once the first Ctrl-C came. */
  readonly requested: boolean;
  /** The command that runs now (its yargs name): one that changes nothing ends at the first Ctrl-C. */
  running(command: string): void;
  /** What the command had done and how to go on, for the command line that was interrupted. */
  summary(command: string, argv: readonly string[]): { message: string; hint: string };
}

export const INTERRUPTED_EXIT_CODE = 130;

/** Commands that change nothing anywhere: the first Ctrl-C ends them at once. */
const CHANGE_NOTHING = new Set(['status', 'verify', 'doctor', 'decrypt-offline', 'script']);

/**
 * What is refused once interrupted: statements inside a transaction, except those that end it,
 * and the table rewrite that reclaims a dropped plaintext column's pages (VACUUM FULL, ALTER
 * TABLE … REBUILD). That rewrite runs outside a transaction and can take as long as the
 * conversion; install logs the way to run it later when it does not run, so Ctrl-C need not wait.
 */
export function refusedAfterInterrupt(sql: string, inTransaction: boolean): boolean {
  if (isTableRewrite(sql)) return true;
  return inTransaction && !/^\s*(rollback|commit|release\s+savepoint)\b/i.test(sql);
}

/** The statement reclaims space by rewriting a table (after `SET LOCK_TIMEOUT n;` on SQL Server). */
function isTableRewrite(sql: string): boolean {
  return /^\s*(set\s+lock_timeout\s+-?\d+\s*;\s*)?(vacuum\s+full\b|alter\s+table\b[^;]*\brebuild\b)/i.test(sql);
}

export function interruptedError(): CellcryptError {
  return new CellcryptError(
    'CellcryptInterrupted',
    'interrupted (Ctrl-C): the transaction in progress is rolled back, nothing more is started',
  );
}

interface Signals {
  on(event: 'SIGINT', listener: () => void): unknown;
}

interface Options {
  signals?: Signals;
  log?: (text: string) => void;
  exit?: (code: number) => void;
  /** Guards knex's statements (the executable); tests of the signal handling leave knex alone. */
  guardKnex?: boolean;
}

export function handleInterrupts(options: Options = {}): Interruption {
  const log = options.log ?? ((text: string) => void process.stderr.write(`${text}\n`));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let requested = false;
  let command: string | undefined;
  const guard = options.guardKnex === false ? undefined : guardKnexStatements(() => requested);
  (options.signals ?? process).on('SIGINT', () => {
    if (command && CHANGE_NOTHING.has(command)) {
      // Nothing to roll back, and a report built from refused statements would be wrong.
      log(`Ctrl-C: ${command} changes nothing; stopped`);
      exit(INTERRUPTED_EXIT_CODE);
      return;
    }
    if (requested) {
      log(
        'second Ctrl-C: exiting now; the database rolls back what was not committed ' +
          '(run `cellcrypt status` to see where it stopped)',
      );
      exit(INTERRUPTED_EXIT_CODE);
      return;
    }
    requested = true;
    log(
      'Ctrl-C: stopping after the statement in progress and rolling back its transaction; ' +
        'press Ctrl-C again to exit at once',
    );
    guard?.cancelRunning();
  });
  return {
    get requested() {
      return requested;
    },
    running(name) {
      command = name.split(' ')[0];
    },
    summary: interruptSummary,
  };
}

/**
 * What an interrupted command leaves behind, and the command that goes on from there; `command`
 * is the yargs command (`change-key`, `keys <action>`), `argv` the options it ran with.
 */
export function interruptSummary(spec: string, argv: readonly string[]): { message: string; hint: string } {
  const command = spec.split(' ')[0];
  const batched = argv.some((arg) => arg === '--batch-size' || arg.startsWith('--batch-size='));
  const resumed = argv.includes('--resume');
  const status = 'run `cellcrypt status` to see where it stopped';
  switch (command) {
    case 'change-key':
      return batched || resumed
        ? {
            message:
              'change-key was interrupted: the batch in progress was rolled back; the batches before it are on ' +
              'the new key and the rest on the old one, both keys are kept and every cell reads',
            hint: 'finish it with `cellcrypt change-key --resume --batch-size N`',
          }
        : {
            message:
              'change-key was interrupted: its one transaction was rolled back, every cell is on the old key as ' +
              'before (had it committed already, status finishes what the key store missed)',
            hint: `${status}; run change-key again to change the key`,
          };
    case 'install':
      return {
        message:
          'install was interrupted: the step in progress was rolled back; columns converted before it stay encrypted',
        hint: 'run `cellcrypt install` again: it continues where this one stopped',
      };
    case 'activate':
    case 'rewrap':
    case 'keys':
      return {
        message: `${command} was interrupted: its transaction was rolled back, or it had committed and finished`,
        hint: `${status}; run ${command} again if it is not done`,
      };
    default:
      return { message: `${command} was interrupted`, hint: status };
  }
}

export interface GuardedClient {
  transacting?: boolean;
  cancelQuery?(connection: unknown): Promise<unknown>;
}

type StatementEntry = (this: GuardedClient, connection: unknown, query: unknown, ...rest: unknown[]) => unknown;

let guarded: { cancelRunning(): void } | undefined;

/**
 * Test only: every statement inside a transaction waits this long first, so a test's Ctrl-C
 * lands in the middle of a batch however fast the machine is (test/scenarios/interrupt.ts).
 */
const STATEMENT_DELAY_MS = Number(process.env.CELLCRYPT_TEST_STATEMENT_DELAY_MS ?? 0) || 0;

/**
 * Refuses, once `interrupted()`, every statement that is not the end of its transaction, so the
 * step in progress fails there and knex rolls it back. Statements running in a transaction when
 * the interrupt comes are cancelled on a PostgreSQL server and on SQL Server (a long
 * re-encryption would otherwise run to its end first); PGlite runs one statement at a time in
 * this process, and its statement ends at its own pace.
 */
function guardKnexStatements(interrupted: () => boolean): { cancelRunning(): void } {
  if (guarded) return guarded;
  const prototype = knex.Client.prototype as unknown as Record<'query' | 'stream', StatementEntry>;
  const running = new Set<{ client: GuardedClient; connection: unknown }>();
  for (const method of ['query', 'stream'] as const) {
    const original = prototype[method];
    prototype[method] = async function (this: GuardedClient, connection, query, ...rest) {
      const sql = typeof query === 'string' ? query : String((query as { sql?: unknown } | undefined)?.sql ?? '');
      if (this.transacting && STATEMENT_DELAY_MS > 0 && refusedAfterInterrupt(sql, true))
        await new Promise((resolve) => setTimeout(resolve, STATEMENT_DELAY_MS));
      if (interrupted() && refusedAfterInterrupt(sql, Boolean(this.transacting))) throw interruptedError();
      // Only statements inside a transaction and table rewrites are cancelled; never the one that
      // ends a transaction, nor an audit row or a key-store clean-up outside one.
      const cancellable = this.transacting ? refusedAfterInterrupt(sql, true) : isTableRewrite(sql);
      if (!cancellable) return original.call(this, connection, query, ...rest);
      const entry = { client: this, connection };
      running.add(entry);
      try {
        return await original.call(this, connection, query, ...rest);
      } finally {
        running.delete(entry);
      }
    };
  }
  guarded = {
    cancelRunning() {
      for (const { client, connection } of running) cancelStatement(client, connection);
    },
  };
  return guarded;
}

/**
 * Cancels the statement running on `connection`; says which way, or undefined for a driver that
 * cannot (PGlite runs its statement in this process, to its end). On a PostgreSQL server knex's
 * cancelQuery asks from another connection (pg_cancel_backend). On SQL Server tedious sends an
 * attention: with XACT_ABORT ON (every cellcrypt transaction sets it) the server ends the
 * statement and rolls the transaction back, and knex sees the transaction gone and rejects
 * (ISSAbort::Abort, "if the server XACT_ABORT state is ON ... roll back any current
 * transaction"). Before, a Ctrl-C on SQL Server waited for a long re-encryption to finish.
 */
export function cancelStatement(client: GuardedClient, connection: unknown): 'pg' | 'tedious' | undefined {
  const pg = connection as { processID?: unknown };
  if (typeof pg?.processID === 'number' && client.cancelQuery) {
    client.cancelQuery(connection).catch(() => undefined);
    return 'pg';
  }
  const tedious = connection as { cancel?: unknown; execSqlBatch?: unknown };
  if (typeof tedious?.cancel === 'function' && typeof tedious.execSqlBatch === 'function') {
    (tedious.cancel as () => boolean).call(connection);
    return 'tedious';
  }
  return undefined;
}
