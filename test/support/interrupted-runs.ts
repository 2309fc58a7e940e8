import { MIGRATIONS_CONFIG, runMigrationsWith } from '../../src/core/install-run';
import type { Toolkit } from '../../src/core/toolkit';

/**
 * An `afterBatch` for change-key or install that throws once `batches` batches have committed:
 * a batched run that dies mid-way (the throw stands for a crash; what committed stays).
 */
export function dieAfterBatches(batches: number, message = 'simulated crash'): () => void {
  let committed = 0;
  return () => {
    if (++committed === batches) throw new Error(message);
  };
}

/** The first half of an install: its tables and key hierarchy (migrations 1-2), no column converted yet. */
export async function installKeysOnly(tk: Toolkit): Promise<void> {
  await tk.engine.prepare();
  await runMigrationsWith(tk, () => tk.engine.knex.migrate.up({ ...MIGRATIONS_CONFIG }));
  await runMigrationsWith(tk, () => tk.engine.knex.migrate.up({ ...MIGRATIONS_CONFIG }));
}
