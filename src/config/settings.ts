import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { CellcryptError } from '../common/errors';
import { type ConnectionTarget, parseConnectionTarget } from './connection-target';
import { Secret } from '../common/secret';

/**
 * Everything cellcrypt reads from its environment, validated once. The CLI, `knexfile.ts` and
 * the programmatic API all go through `loadSettings`, so `npx knex migrate:latest` and
 * `cellcrypt install` cannot disagree about where the data is.
 */
export interface Settings {
  /** The organization database (DATABASE_URL, default embedded pglite:<home>/org). */
  readonly database: ConnectionTarget;
  /** The key store's config database (CELLCRYPT_CONFIG_URL, default pglite:<home>/config). */
  readonly config: ConnectionTarget;
  /** Directory of the embedded default data (CELLCRYPT_HOME, default ./.cellcrypt). */
  readonly home: string;
  /** CELLCRYPT_KEYSTORE_SECRET; undefined = embedded mode generates a 0600 file under home. */
  readonly keystoreSecret?: Secret;
  /** Changes allowed per 15 minutes (CELLCRYPT_CHANGE_QUOTA, default 3). */
  readonly changeQuota: number;
  /** CELLCRYPT_ACCEPT_SECRETS_IN_SERVER_LOG=1: run key operations on a server that would log their secrets. */
  readonly acceptSecretsInServerLog: boolean;
  /** Days after which doctor calls the key old (CELLCRYPT_KEY_MAX_AGE_DAYS, default 365). */
  readonly keyMaxAgeDays: number;
  /** Extra sensitive columns (CELLCRYPT_REGISTRY: a JSON file). */
  readonly registryFile?: string;
}

export interface SettingsInput {
  env?: NodeJS.ProcessEnv;
  /** A dotenv file (`--settings-file`). */
  settingsFile?: string;
  databaseUrl?: string;
  configUrl?: string;
  cwd?: string;
}

/** The environment as the settings see it: the process environment wins over the env file (dotenv's rule). */
export function readEnvironment(
  settingsFile: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): NodeJS.ProcessEnv {
  if (!settingsFile) return env;
  const path = resolve(cwd, settingsFile);
  if (!existsSync(path)) {
    throw new CellcryptError(
      'CellcryptConfigInvalid',
      `invalid configuration:\n  - --settings-file: ${path} does not exist`,
      { exitCode: 2 },
    );
  }
  return { ...parseDotenv(readFileSync(path)), ...env };
}

export function loadSettings(input: SettingsInput = {}): Settings {
  const cwd = input.cwd ?? process.cwd();
  const env = readEnvironment(input.settingsFile, input.env ?? process.env, cwd);
  const problems: string[] = [];
  const home = resolve(cwd, env.CELLCRYPT_HOME || '.cellcrypt');

  const database = connection(
    '--database-url / DATABASE_URL',
    input.databaseUrl ?? env.DATABASE_URL,
    `pglite:${home}/org`,
    cwd,
    problems,
  );
  const config = connection(
    '--config-url / CELLCRYPT_CONFIG_URL',
    input.configUrl ?? env.CELLCRYPT_CONFIG_URL,
    `pglite:${home}/config`,
    cwd,
    problems,
  );

  const secretText = env.CELLCRYPT_KEYSTORE_SECRET;
  if (secretText !== undefined && secretText.length < 16) {
    problems.push('CELLCRYPT_KEYSTORE_SECRET: must be at least 16 characters (use a long random value)');
  }
  if (secretText === undefined && config && config.kind !== 'pglite') {
    problems.push(
      `CELLCRYPT_KEYSTORE_SECRET: required when the key store is a server ` +
        `database (${config.display}); only the embedded key store generates its own`,
    );
  }

  const quotaText = env.CELLCRYPT_CHANGE_QUOTA ?? '3';
  const changeQuota = Number(quotaText);
  if (!/^\d+$/.test(quotaText) || changeQuota < 1) {
    problems.push(`CELLCRYPT_CHANGE_QUOTA: "${quotaText}" is not a whole number of changes per 15 minutes (1 or more)`);
  }

  // A whole number of days: "1.5" or "1y" would silently mean something else than was meant.
  const maxAgeText = env.CELLCRYPT_KEY_MAX_AGE_DAYS ?? '365';
  const keyMaxAgeDays = Number(maxAgeText);
  if (!/^\d+$/.test(maxAgeText) || keyMaxAgeDays < 1) {
    problems.push(`CELLCRYPT_KEY_MAX_AGE_DAYS: "${maxAgeText}" is not a whole number of days (1 or more)`);
  }

  const registryFile = env.CELLCRYPT_REGISTRY ? resolve(cwd, env.CELLCRYPT_REGISTRY) : undefined;
  if (registryFile && !existsSync(registryFile)) problems.push(`CELLCRYPT_REGISTRY: ${registryFile} does not exist`);

  if (problems.length > 0 || !database || !config) {
    throw new CellcryptError(
      'CellcryptConfigInvalid',
      `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      {
        exitCode: 2,
        hint:
          'fix the settings above (environment, --settings-file, or command-line options) ' +
          'and run the command again',
      },
    );
  }
  const acceptSecretsInServerLog = env.CELLCRYPT_ACCEPT_SECRETS_IN_SERVER_LOG === '1';
  const settings: Settings = {
    database,
    config,
    home,
    changeQuota,
    keyMaxAgeDays,
    acceptSecretsInServerLog,
    registryFile,
  };
  // Non-enumerable: a logged or serialized Settings object shows no secret at all.
  if (secretText !== undefined)
    Object.defineProperty(settings, 'keystoreSecret', { value: new Secret(secretText), enumerable: false });
  return settings;
}

function connection(
  label: string,
  raw: string | undefined,
  fallback: string,
  cwd: string,
  problems: string[],
): ConnectionTarget | undefined {
  if (raw !== undefined && raw.trim() === '') {
    // An empty value is a mistake (a variable set from nothing), never a wish for the embedded default.
    problems.push(`${label}: is empty; give a URL, or unset it to use the embedded default (${fallback})`);
    return undefined;
  }
  const parsed = parseConnectionTarget(raw ?? fallback, cwd);
  if (typeof parsed === 'string') {
    problems.push(`${label}: ${parsed}`);
    return undefined;
  }
  return parsed;
}
