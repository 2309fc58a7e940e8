import { userInfo } from 'node:os';
import type { Settings } from '../config/settings';
import type { Engine } from '../engines/engine';
import type { KeyStore } from '../keystore/keystore';
import { openKeyStore, type KeyStoreConnection } from '../keystore/open-keystore';
import { CellcryptError, refuse } from '../common/errors';
import { isMissingEmbedded } from '../config/connection-target';
import { loadRegistry, type SensitiveColumn } from './registry';
import { type Reporter, silentReporter } from './reporter';
import { readOrganizationId } from './toolkit-tables';

/**
 * Everything an operation needs: settings, the org database's engine, the registry, a reporter,
 * and the key store (opened on first use: read-only commands on an uninstalled org never touch it).
 */
export interface Toolkit {
  readonly settings: Settings;
  readonly engine: Engine;
  readonly registry: readonly SensitiveColumn[];
  readonly reporter: Reporter;
  /** Who runs this: OS user (and database user where the engine knows it), for audit rows. */
  readonly actor: string;
  /** The org's key store; refuses (exit 2) before the org has been installed. */
  keystore(): Promise<KeyStore>;
  /** The same key store's values for another org id (an org copy activated as its own org). */
  keystoreFor(orgId: string): Promise<KeyStore>;
  /** The org id, or undefined before the first install. */
  organizationId(): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface ToolkitOptions {
  reporter?: Reporter;
  /** Whether `close()` closes the engine too (false when the caller keeps using it: the knex CLI). */
  ownsEngine?: boolean;
  /** A read-only command: an embedded key store that is not there is reported, not created. */
  readOnly?: boolean;
}

/** Core receives its engine: the composition root (src/open-toolkit.ts) opens it with the factory. */
export function createToolkit(settings: Settings, engine: Engine, options: ToolkitOptions = {}): Toolkit {
  const registry = loadRegistry(settings.registryFile);
  const reporter = options.reporter ?? silentReporter;
  let connection: KeyStoreConnection | undefined;
  let keystore: KeyStore | undefined;

  const organizationId = () => readOrganizationId(engine.knex);
  return {
    settings,
    engine,
    registry,
    reporter,
    actor: safeUserName(),
    organizationId,
    async keystore() {
      if (keystore) return keystore;
      const orgId = await organizationId();
      if (!orgId)
        throw refuse(
          'CellcryptUsage',
          `${settings.database.display} has not been installed yet`,
          'run `cellcrypt install` first',
        );
      if (options.readOnly && isMissingEmbedded(settings.config))
        throw new CellcryptError(
          'CellcryptKeyStoreUnavailable',
          `there is no key store at ${settings.config.display}`,
          {
            exitCode: 2,
            hint: "check --config-url / CELLCRYPT_CONFIG_URL: it names this deployment's key store",
          },
        );
      connection ??= await openKeyStore(settings, (text) => reporter.log(text));
      keystore = connection.forOrganization(orgId);
      return keystore;
    },
    async keystoreFor(orgId: string) {
      connection ??= await openKeyStore(settings, (text) => reporter.log(text));
      keystore = connection.forOrganization(orgId);
      return keystore;
    },
    async close() {
      await connection?.close();
      if (options.ownsEngine) await engine.close();
    },
  };
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}
