import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createThrowAwayDatabase, pgServerUrl } from './pg-server';
import { seedPgliteDirectory } from './pglite-template';
import { loadSettings, type Settings } from '../../src/config/settings';
import { openToolkit } from '../../src/open-toolkit';
import { type Toolkit } from '../../src/core/toolkit';
import { silentReporter } from '../../src/core/reporter';

/**
 * Where integration suites run: always on embedded PGlite; on a PostgreSQL server too when
 * TEST_PG_URL is set (CI sets it and CELLCRYPT_REQUIRE_PG_SERVER=1, so a skipped server suite
 * fails CI instead of passing quietly). Every call gives a fresh org database and a fresh
 * key-store database, removed again by `cleanup`.
 */
export type TargetName = 'pglite' | 'postgres';

export interface TestOrg {
  readonly env: NodeJS.ProcessEnv;
  readonly settings: Settings;
  readonly dir: string;
  open(): Promise<Toolkit>;
  cleanup(): Promise<void>;
}

export function targetNames(): TargetName[] {
  return pgServerUrl() ? ['pglite', 'postgres'] : ['pglite'];
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
