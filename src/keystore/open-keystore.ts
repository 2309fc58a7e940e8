import type { Knex } from 'knex';
import type { Settings } from '../config/settings';
import { openKnex } from '../engines';
import { CellcryptError } from '../common/errors';
import { ensureKeystoreTable, knexStorage } from './knex-storage';
import { KeyStore } from './keystore';
import { resolveKeystoreSecret } from './keystore-secret';
import { createSealer } from './sealing';

export interface KeyStoreConnection {
  readonly knex: Knex;
  forOrganization(orgId: string): KeyStore;
  close(): Promise<void>;
}

/** Connects to the config database named by the settings and prepares the key-store table. */
export async function openKeyStore(
  settings: Settings,
  onWarning?: (text: string) => void,
): Promise<KeyStoreConnection> {
  const target = settings.config;
  const secret = resolveKeystoreSecret(settings, onWarning);
  let knex: Knex | undefined;
  try {
    knex = await openKnex(target, { plainTables: true });
    await ensureKeystoreTable(knex);
  } catch (cause) {
    await knex?.destroy();
    throw new CellcryptError(
      'CellcryptKeyStoreUnavailable',
      `cannot open the key store at ${target.display}: ${(cause as Error).message}`,
      {
        exitCode: 1,
        cause,
        hint: 'check --config-url / CELLCRYPT_CONFIG_URL',
      },
    );
  }
  const sealer = createSealer(secret);
  const storage = knexStorage(knex);
  return {
    knex,
    forOrganization: (orgId) => new KeyStore(storage, sealer, orgId, target.display),
    close: () => knex.destroy(),
  };
}
