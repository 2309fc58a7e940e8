import { randomBytes } from 'node:crypto';
import { runCli } from '../../src/cli/main';
import { memoryIo } from '../../src/cli/io';
import { loadSettings } from '../../src/config/settings';
import { seedDemo } from '../../src/core/demo-seed';
import { type Toolkit } from '../../src/core/toolkit';
import { openToolkit } from '../../src/open-toolkit';
import { createThrowAwayDatabase } from '../../test/support/pg-server';

/** One throw-away org of the crash harness: an org database and a key-store database on one server. */
export interface Org {
  env: NodeJS.ProcessEnv;
  /** The admin URL of the server both databases are on. */
  adminUrl: string;
  drop(): Promise<void>;
}

export async function createOrg(adminUrl: string, rows: number): Promise<Org> {
  const databases = [
    await createThrowAwayDatabase(adminUrl, 'cellcrypt_crash_org'),
    await createThrowAwayDatabase(adminUrl, 'cellcrypt_crash_cfg'),
  ];
  const env: NodeJS.ProcessEnv = {
    DATABASE_URL: databases[0].url,
    CELLCRYPT_CONFIG_URL: databases[1].url,
    CELLCRYPT_KEYSTORE_SECRET: `crash-harness-${randomBytes(12).toString('hex')}`,
    CELLCRYPT_CHANGE_QUOTA: '1000000',
  };
  const org: Org = {
    env,
    adminUrl,
    async drop() {
      for (const database of databases) await database.drop();
    },
  };
  await withToolkit(org, (tk) => seedDemo(tk, rows));
  return org;
}

export async function withToolkit<T>(org: Org, work: (tk: Toolkit) => Promise<T>): Promise<T> {
  const tk = await openToolkit(loadSettings({ env: { ...process.env, ...org.env } }));
  try {
    return await work(tk);
  } finally {
    await tk.close();
  }
}

/** In-process CLI run (the same code as the binary) for the judge's own commands. */
export async function cli(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; json: any }> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    let io: ReturnType<typeof memoryIo> | undefined;
    const code = await runCli(args.includes('--json') ? args : [...args, '--json'], (json) => (io = memoryIo(json)));
    return { code, json: io?.documents[0] ?? {} };
  } finally {
    for (const key of Object.keys(env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
}
