import { CellcryptError } from '../common/errors';
import { MIGRATIONS_CONFIG } from './install-run';
import type { Toolkit } from './toolkit';

/**
 * Refuses (exit 2, nothing changed) when this org's cellcrypt migrations are older than this
 * cellcrypt: an operation would otherwise call engine functions the database does not have yet
 * (change-key needs cellcrypt.reencrypt_cell from migration 4) and fail half-way into its
 * transaction with an internal error. `install` applies the missing migrations and changes no
 * data that is already encrypted.
 */
export async function requireCurrentSchema(tk: Toolkit, operation: string): Promise<void> {
  const [, pending] = (await tk.engine.knex.migrate.list(MIGRATIONS_CONFIG)) as [
    unknown[],
    Array<{ file: string } | string>,
  ];
  if (pending.length === 0) return;
  const names = pending.map((m) => (typeof m === 'string' ? m : m.file)).join(', ');
  throw new CellcryptError(
    'CellcryptSchemaOutdated',
    `${operation} needs this organization's cellcrypt schema to be ` +
      `current; ${pending.length} migration(s) not applied: ${names}`,
    {
      exitCode: 2,
      hint: 'run `cellcrypt install` (it applies them and leaves encrypted data as it is), then run the command again',
    },
  );
}
