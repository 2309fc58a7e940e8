import { classifyColumn } from './column-state';
import type { SensitiveColumn } from './registry';
import type { Toolkit } from './toolkit';

/** The registered columns that are encrypted now: their cells are what a key must open. */
export async function encryptedColumns(tk: Toolkit): Promise<SensitiveColumn[]> {
  const result: SensitiveColumn[] = [];
  for (const column of tk.registry) {
    const verdict = classifyColumn(column, await tk.engine.columns.describe(tk.engine.knex, column));
    if ('state' in verdict && verdict.state === 'encrypted') result.push(column);
  }
  return result;
}
