import { CellcryptError } from '../common/errors';
import type { KeyStore } from '../keystore/keystore';
import type { Toolkit } from './toolkit';

/**
 * The key store's values were written for another database: this one is a restored copy (or
 * the org moved). A copy that changed them would leave the live org unable to open its keys,
 * so nothing that writes them runs until the operator says which it is.
 */
export function copyConflict(tk: Toolkit, keystore: KeyStore, location: string): CellcryptError {
  const here = tk.settings.database.location;
  return new CellcryptError(
    'CellcryptOrganizationCopy',
    `the key store ${keystore.display} keeps organization ${keystore.orgId}'s keys for ${location}, ` +
      `and this database is ${here}; changing them here would break the database that uses them. ` +
      'Nothing was changed',
    {
      exitCode: 2,
      hint:
        `if this database replaces ${location}, run \`cellcrypt activate --key-file F --moved\`; if it is a copy ` +
        '(e.g. a backup restored for testing), run `cellcrypt activate --key-file F --copy`: the copy gets its ' +
        'own organization id and key-store values, and the original keeps its own',
    },
  );
}

/**
 * Before an operation writes the key store: its values open (the unseal would throw), a probe
 * can be written, and they belong to this database.
 */
export async function requireOwnKeyStore(tk: Toolkit): Promise<void> {
  const keystore = await tk.keystore();
  const check = await keystore.check();
  if (check.own === 'unreadable') throw check.problem!;
  if (check.location !== undefined && check.location !== tk.settings.database.location)
    throw copyConflict(tk, keystore, check.location);
}
