import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createThrowAwayDatabase, pgServerUrl } from './pg-server';
import { seedPgliteDirectory } from './pglite-template';
import { rawTarget, type RawTarget } from './raw-db';
import { loadSettings, type Settings } from '../../src/config/settings';
import { openToolkit } from '../../src/open-toolkit';
import { type Toolkit } from '../../src/core/toolkit';
import { silentReporter } from '../../src/core/reporter';

/**
 * Where integration suites run. Each scenario is written once (test/scenarios/) and run by one
 * thin file per target (test/integration/<target>/): embedded PGlite; a PostgreSQL server when
 * TEST_PG_URL is set (CI sets it and CELLCRYPT_REQUIRE_PG_SERVER=1, so a skipped server suite
 * fails CI instead of passing quietly); `mssql-fake`, knex's real mssql dialect over the
 * recording tedious. CELLCRYPT_TEST_TARGETS=pglite,postgres,mssql-fake selects what runs
 * (default: all three). Every createTestOrg gives a fresh org database and a fresh key-store
 * database, removed again by `cleanup`.
 */
export type TargetName = 'pglite' | 'postgres';
export type TestTarget = TargetName | 'mssql-fake';
export const TEST_TARGETS: readonly TestTarget[] = ['pglite', 'postgres', 'mssql-fake'];

/** The targets CELLCRYPT_TEST_TARGETS names (all by default); an unknown name stops the run. */
export function chosenTargets(env: NodeJS.ProcessEnv = process.env): TestTarget[] {
  const raw = env.CELLCRYPT_TEST_TARGETS?.trim();
  if (!raw) return [...TEST_TARGETS];
  const names = raw.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(TEST_TARGETS as readonly string[]).includes(name));
  if (unknown.length)
    throw new Error(`CELLCRYPT_TEST_TARGETS: unknown target(s) ${unknown.join(', ')}; use ${TEST_TARGETS.join(', ')}`);
  return names as TestTarget[];
}

/** Chosen, and runnable here: the PostgreSQL server suite needs TEST_PG_URL. */
export function targetRuns(target: TestTarget): boolean {
  return chosenTargets().includes(target) && (target !== 'postgres' || pgServerUrl() !== undefined);
}

/** Registers a scenario file's suites for one target, when that target runs. */
export function forTarget<T extends TestTarget>(target: T, scenarios: (target: T) => void): void {
  if (targetRuns(target)) scenarios(target);
}

/** The same for the SQL-level suites, which take a raw database of the target. */
export function forRawTarget(target: TargetName, scenarios: (target: RawTarget) => void): void {
  if (targetRuns(target)) scenarios(rawTarget(target));
}

export interface TestOrg {
  readonly env: NodeJS.ProcessEnv;
  readonly settings: Settings;
  readonly dir: string;
  open(): Promise<Toolkit>;
  cleanup(): Promise<void>;
}

export const TEST_KEYSTORE_SECRET = 'test-keystore-secret-\u{1F511}-0123456789';

export async function createTestOrg(target: TargetName): Promise<TestOrg> {
  const dir = mkdtempSync(join(tmpdir(), `cellcrypt-${target}-`));
  const drops: Array<() => Promise<void>> = [];
  let env: NodeJS.ProcessEnv;
  if (target === 'pglite') {
    await seedPgliteDirectory(join(dir, 'org'));
    await seedPgliteDirectory(join(dir, 'config'));
    env = { CELLCRYPT_HOME: dir, DATABASE_URL: `pglite:${dir}/org`, CELLCRYPT_CONFIG_URL: `pglite:${dir}/config` };
  } else {
    const org = await createServerDatabase('org');
    const config = await createServerDatabase('cfg');
    drops.push(org.drop, config.drop);
    env = {
      CELLCRYPT_HOME: dir,
      DATABASE_URL: org.url,
      CELLCRYPT_CONFIG_URL: config.url,
      CELLCRYPT_KEYSTORE_SECRET: TEST_KEYSTORE_SECRET,
    };
  }
  const settings = loadSettings({ env, cwd: dir });
  return {
    env,
    settings,
    dir,
    open: () => openToolkit(settings, { reporter: silentReporter }),
    async cleanup() {
      for (const drop of drops) await drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function createServerDatabase(kind: string) {
  return createThrowAwayDatabase(pgServerUrl()!, `cellcrypt_test_${kind}`);
}
