import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Secret } from '../../src/common/secret';
import { loadSettings } from '../../src/config/settings';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../src/core/registry';
import { silentReporter, type Reporter } from '../../src/core/reporter';
import { createToolkit, type Toolkit } from '../../src/core/toolkit';
import { mssqlKnexConfig } from '../../src/engines/mssql/connect';
import { mssqlEngine } from '../../src/engines/mssql/engine';
import { fakeMssqlKnex, type FakeMssql, type RecordedCall } from './fake-tedious';
import { fakeSqlServer, type FakeServerState } from './fake-mssql-server';
import { seedPgliteDirectory } from './pglite-template';
import { parseTsql } from './tsql-grammar';
import { allStatementRules, openKeyBeforeUse } from './tsql-rules';

/**
 * An org on the mssql engine over knex's real mssql client and the recording tedious, answered
 * by the scripted server, with an embedded key store in a throw-away directory: what every
 * mssql-fake test opens (they differed only in the options below).
 */
export interface FakeMssqlOrg {
  readonly fake: FakeMssql;
  readonly tk: Toolkit;
  /** The throw-away directory (key store, CELLCRYPT_HOME); closeFakeMssqlOrg removes it. */
  readonly dir: string;
}

export interface FakeMssqlOrgOptions {
  /** What the key store holds before the test (nothing by default). */
  readonly keyStore?: { readonly passphrase?: Secret; readonly master?: Secret };
  readonly statementTimeoutMs?: number;
  readonly reporter?: Reporter;
  readonly pool?: { min?: number; max?: number };
  readonly onTransaction?: NonNullable<Parameters<typeof fakeMssqlKnex>[0]>['onTransaction'];
}

export async function openFakeMssqlOrg(
  state: FakeServerState,
  options: FakeMssqlOrgOptions = {},
): Promise<FakeMssqlOrg> {
  const dir = mkdtempSync(join(tmpdir(), 'cellcrypt-mssql-fake-'));
  await seedPgliteDirectory(join(dir, 'config')); // the key store: an empty cluster, without an initdb
  const settings = loadSettings({
    env: {
      DATABASE_URL: 'mssql://sa:pw@sql.example/OrgDb',
      CELLCRYPT_CONFIG_URL: `pglite:${dir}/config`,
      CELLCRYPT_KEYSTORE_SECRET: 'unit-test-keystore-secret-0123456789',
      CELLCRYPT_HOME: dir,
    },
    cwd: dir,
  });
  const fake = fakeMssqlKnex({
    responder: fakeSqlServer(state, DYNAMICS_DEFAULT_COLUMNS),
    connection: mssqlKnexConfig(settings.database).connection as Record<string, unknown>,
    ...(options.pool ? { pool: options.pool } : {}),
    ...(options.onTransaction ? { onTransaction: options.onTransaction } : {}),
  });
  const engine = mssqlEngine(settings.database, fake.knex, {
    requestTimeoutMs: 30_000,
    statementTimeoutMs: options.statementTimeoutMs ?? 60_000,
  });
  const tk = createToolkit(settings, engine, { reporter: options.reporter ?? silentReporter });
  const keystore = await tk.keystore();
  if (options.keyStore?.passphrase) await keystore.put('passphrase', options.keyStore.passphrase);
  if (options.keyStore?.master) await keystore.put('master-key-password', options.keyStore.master);
  fake.reset();
  return { fake, tk, dir };
}

/** Closes what openFakeMssqlOrg opened and removes its directory; nothing when none was opened. */
export async function closeFakeMssqlOrg(org: FakeMssqlOrg | undefined): Promise<void> {
  if (!org) return;
  try {
    await org.tk.close();
    await org.fake.knex.destroy();
  } finally {
    rmSync(org.dir, { recursive: true, force: true });
  }
}

export interface RecordedTransaction {
  end: 'commit' | 'rollback' | 'open';
  readonly calls: RecordedCall[];
}

/** The calls between one begin and its commit/rollback, per connection, in order. */
export function transactionsOf(calls: readonly RecordedCall[]): RecordedTransaction[] {
  const result: RecordedTransaction[] = [];
  const open = new Map<number, RecordedTransaction>();
  for (const call of calls) {
    if (call.kind === 'beginTransaction') {
      const tx: RecordedTransaction = { end: 'open', calls: [] };
      open.set(call.connectionId, tx);
      result.push(tx);
    } else if (call.kind === 'commitTransaction' || call.kind === 'rollbackTransaction') {
      const tx = open.get(call.connectionId);
      if (tx) tx.end = call.kind === 'commitTransaction' ? 'commit' : 'rollback';
      open.delete(call.connectionId);
    } else if (call.sql) open.get(call.connectionId)?.calls.push(call);
  }
  return result;
}

/** Checks every statement sent: grammar, our rules, keys opened before use per transaction, secrets never via knex. */
export function expectWellFormedCalls(calls: readonly RecordedCall[], secrets: readonly string[]): void {
  const sent = calls.filter((c) => c.sql);
  expect(sent.length).to.be.greaterThan(0);
  for (const call of sent) {
    expect(parseTsql(call.sql!), call.sql!.slice(0, 300)).to.deep.equal([]);
    // What tedious received: knex has already turned \? back into ? (rule 5 is for SQL before knex).
    expect(allStatementRules(call.sql!, { knex: false }), call.sql!.slice(0, 300)).to.deep.equal([]);
    if (call.kind === 'execSql')
      for (const secret of secrets) expect(call.sql!, 'a secret went through knex').not.to.contain(secret);
  }
  for (const tx of transactionsOf(calls)) expect(openKeyBeforeUse(tx.calls.map((c) => c.sql!))).to.deep.equal([]);
}
