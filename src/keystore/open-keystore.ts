import knexFactory, { type Knex } from 'knex';
import { mssqlKnexConfig } from '../engines/mssql/connect';
import type { Settings } from '../config/settings';
import { connectPglite, connectPostgres } from '../engines/postgres/connect';
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
  let connection;
  try {
    connection =
      target.kind === 'mssql'
        ? { knex: knexFactory(mssqlKnexConfig(target)) }
        : target.kind === 'pglite'
          ? await connectPglite(target)
          : await connectPostgres(target);
    await ensureKeystoreTable(connection.knex);
  } catch (cause) {
    await connection?.knex.destroy();
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
  const { knex } = connection;
  const sealer = createSealer(secret);
  const storage = knexStorage(knex);
  return {
    knex,
    forOrganization: (orgId) => new KeyStore(storage, sealer, orgId),
    close: () => knex.destroy(),
  };
}
