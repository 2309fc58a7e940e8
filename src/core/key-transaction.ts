import type { Knex } from 'knex';
import type { Engine } from '../engines/engine';

/**
 * One database transaction that may open keys. Keys opened in it are closed before it ends,
 * also when it fails: SQL Server's open keys belong to the session, and the pooled connection
 * would otherwise carry them into the next transaction. (A close that fails in a doomed
 * transaction must not hide the error that doomed it.)
 */
export function keyTransaction<T>(engine: Engine, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return engine.knex.transaction(async (trx) => {
    try {
      return await work(trx);
    } finally {
      if (engine.capabilities.keysOutliveTransactions) await engine.keys.closeAll(trx).catch(() => undefined);
    }
  });
}
