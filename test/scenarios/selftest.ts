import { expect } from 'chai';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { deriveKey } from '../../src/cellcrypt';
import { selftestCommand } from '../../src/cli/commands/selftest';
import { memoryIo } from '../../src/cli/io';
import { loadSettings } from '../../src/config/settings';
import { readHistory } from '../../src/core/key-history';
import { silentReporter } from '../../src/core/reporter';
import { ENGINE_CHECKS, LIFE_CHECKS } from '../../src/core/selftest/run';
import { openToolkit } from '../../src/open-toolkit';
import { inProcessCli } from '../support/in-process-cli';
import { adminQuery, createThrowAwayDatabase, pgServerUrl } from '../support/pg-server';
import type { TargetName } from '../support/targets';

/**
 * `cellcrypt selftest` on a real engine: it passes, it fails with exit 3 naming the check when
 * one of its assumptions is made false (the seam is the deriveKey its checks compare with), it
 * drops its database also after a failure, and no secret of its org reaches its output.
 */
const urlFor = (target: TargetName) => (target === 'pglite' ? 'pglite:memory://' : pgServerUrl()!);

async function databaseExists(target: TargetName, name: string): Promise<boolean> {
  if (target === 'pglite') return existsSync(name);
  const client = new Client({ connectionString: pgServerUrl() });
  await client.connect();
  try {
    return (await client.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

/** A key whose bytes differ from SQL Server's in one bit: what a server deriving keys another way looks like. */
const wrongDeriveKey = (passphrase: string, derivation: 'sql2016' | 'sql2017') => {
  const key = deriveKey(passphrase, derivation);
  key[0] ^= 1;
  return key;
};

export function scenarios(target: TargetName): void {
  describe(`cellcrypt selftest on ${target}`, function () {
    this.timeout(600_000);

    it('passes: exit 0, every life step and assumption ok (or skipped with why), its database dropped', async () => {
      const io = memoryIo(true);
      const code = await selftestCommand({ json: true, databaseUrl: urlFor(target), keep: false }, io);
      const report = io.documents[0] as any;
      expect(code, JSON.stringify(report.checks, null, 1)).to.equal(0);
      expect(report.ok).to.equal(true);
      expect(report.failed).to.deep.equal([]);
      const names = report.checks.map((c: any) => c.check);
      expect(names).to.include.members([...Object.values(LIFE_CHECKS), ...Object.values(ENGINE_CHECKS)]);
      for (const check of report.checks) {
        expect(check.outcome, check.check).to.be.oneOf(['ok', 'skipped']);
        expect(check.detail, check.check).to.be.a('string').and.not.equal('');
      }
      // What must really run here, not be skipped: the whole life and the codec's agreement.
      for (const name of [...Object.values(LIFE_CHECKS), ENGINE_CHECKS.keyMaterial, ENGINE_CHECKS.serverToNode])
        expect(report.checks.find((c: any) => c.check === name).outcome, name).to.equal('ok');
      if (target === 'postgres') {
        expect(report.checks.find((c: any) => c.check === ENGINE_CHECKS.lockTimeout).outcome).to.equal('ok');
        expect(report.checks.find((c: any) => c.check === LIFE_CHECKS.batched).detail).to.contain(
          'pg_terminate_backend',
        );
      }
      expect(report.database.dropped).to.equal(true);
      expect(await databaseExists(target, report.database.name)).to.equal(false);
    });

    it('a key whose bytes differ from deriveKey: exit 3, the key check named, the database dropped', async () => {
      const io = memoryIo(true);
      const code = await selftestCommand({ json: true, databaseUrl: urlFor(target), keep: false }, io, {
        deriveKey: wrongDeriveKey,
      });
      const report = io.documents[0] as any;
      expect(code).to.equal(3);
      expect(report.ok).to.equal(false);
      expect(report.failed).to.include(ENGINE_CHECKS.keyMaterial);
      expect(report.failed).to.include(ENGINE_CHECKS.serverToNode);
      // The life of the org does not use the seam: it still passes.
      expect(report.failed).not.to.include(LIFE_CHECKS.install);
      const keyCheck = report.checks.find((c: any) => c.check === ENGINE_CHECKS.keyMaterial);
      expect(keyCheck.detail).to.contain('is not deriveKey(sql2017)');
      expect(await databaseExists(target, report.database.name)).to.equal(false);
    });

    if (target === 'postgres') {
      it('--database: an empty one the DBA made is used and kept; one that is not empty is refused', async () => {
        const empty = await createThrowAwayDatabase(pgServerUrl()!, 'cellcrypt_selftest_given');
        try {
          const io = memoryIo(true);
          const code = await selftestCommand(
            { json: true, databaseUrl: pgServerUrl(), database: empty.name, keep: false },
            io,
          );
          const report = io.documents[0] as any;
          expect(code, JSON.stringify(report.failed)).to.equal(0);
          expect(report.database).to.include({ name: empty.name, created: false, dropped: false, kept: true });
          expect(await databaseExists(target, empty.name)).to.equal(true);
          // Now it holds the selftest's org: a second run refuses it, and changes nothing.
          const again = await inProcessCli(
            '--database-url',
            pgServerUrl()!,
            '--json',
            'selftest',
            '--database',
            empty.name,
          );
          expect(again.code).to.equal(2);
          expect(again.json.error.code).to.equal('CellcryptUsage');
          expect(again.json.error.message).to.contain('is not empty').and.to.contain('changed nothing');
        } finally {
          await empty.drop();
        }
      });

      it('a user who may not CREATE DATABASE: refused (exit 2) with the way out, nothing created', async () => {
        const role = `cellcrypt_selftest_nocreatedb_${Date.now()}`;
        await adminQuery(pgServerUrl()!, `create role ${role} login password 'pw-${role}' nocreatedb`);
        try {
          const url = Object.assign(new URL(pgServerUrl()!), { username: role, password: `pw-${role}` }).toString();
          const run = await inProcessCli('--database-url', url, '--json', 'selftest');
          expect(run.code, run.stderr).to.equal(2);
          expect(run.json.error.code).to.equal('CellcryptPermissionDenied');
          expect(run.json.error.hint).to.contain('--database NAME');
          expect(run.stdout + run.stderr).not.to.contain(`pw-${role}`);
        } finally {
          await adminQuery(pgServerUrl()!, `drop role ${role}`);
        }
      });
    }

    it('text output: one ok/FAIL/skipped line per check, and no secret of the org anywhere (--keep)', async () => {
      const run = await inProcessCli('--database-url', urlFor(target), 'selftest', '--keep');
      expect(run.code, run.stdout + run.stderr).to.equal(0);
      const lines = run.stdout.split('\n');
      expect(lines.filter((l) => /^(ok|FAIL|skipped)\s/.test(l)).length).to.be.greaterThan(15);
      expect(lines.at(-1)).to.match(/^selftest: \d+ checks ok, \d+ skipped, none failed/);
      const where = /database (\S+) \(throw-away\), key store in (\S+)/.exec(run.stderr)!;
      const [location, home] = [where[1], where[2]];
      const databaseUrl =
        target === 'pglite'
          ? location
          : Object.assign(new URL(pgServerUrl()!), { pathname: new URL(location).pathname }).toString();
      const settings = loadSettings({
        env: {
          DATABASE_URL: databaseUrl,
          CELLCRYPT_CONFIG_URL: `pglite:${join(home, 'config')}`,
          CELLCRYPT_HOME: home,
        },
        cwd: home,
      });
      const tk = await openToolkit(settings, { reporter: silentReporter });
      try {
        const keystore = await tk.keystore();
        const secrets = [
          readFileSync(join(home, 'keystore.secret'), 'utf8').trim(),
          (await keystore.get('master-key-password'))!.reveal(),
          ...(await readHistory(keystore)).map((g) => g.passphrase.reveal()),
        ];
        expect(secrets.length).to.be.greaterThan(3); // install, two key changes, the key-store secret
        for (const secret of secrets) expect(run.stdout + run.stderr).not.to.contain(secret);
      } finally {
        await tk.close();
        if (target === 'postgres') {
          const name = new URL(location).pathname.slice(1);
          await adminQuery(pgServerUrl()!, `drop database if exists "${name}" with (force)`);
        }
        rmSync(home, { recursive: true, force: true });
      }
    });
  });
}
