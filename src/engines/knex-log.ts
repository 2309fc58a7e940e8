import type { Knex } from 'knex';

/**
 * knex's own log, minus the one warning cellcrypt reports better itself: "Acquire connection
 * error" with a stack trace, printed before the error reaches the CLI (which names the
 * database and the way out; see core/connection-failure.ts). Everything else still goes to
 * stderr.
 */
const write = (level: string) => (message: unknown) => {
  const text = typeof message === 'string' ? message : String(message);
  if (text.startsWith('Acquire connection error')) return;
  process.stderr.write(`knex ${level}: ${text}\n`);
};

export const KNEX_LOG: Knex.Config['log'] = {
  warn: write('warning'),
  error: write('error'),
  deprecate: write('deprecation'),
  debug: write('debug'),
};
