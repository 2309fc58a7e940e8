import { expect } from 'chai';
import { Client } from 'pg';
import { keyGuidFor } from '../../src/cellcrypt/key-identity';
import { changeKey } from '../../src/core/change-key';
import { convertColumns } from '../../src/core/convert';
import { seedDemo } from '../../src/core/demo-seed';
import { install } from '../../src/core/install';
import { MIGRATIONS_CONFIG, runMigrationsWith } from '../../src/core/install-run';
import { withOrgLock } from '../../src/core/org-lock';
import { generatePassphrase } from '../../src/core/passphrase';
import { readStatus, statusExitCode, type StatusReport } from '../../src/core/status';
import type { Toolkit } from '../../src/core/toolkit';
import { verify } from '../../src/core/verify';
import type { KeyStore } from '../../src/keystore/keystore';
import { cellcryptProcess } from '../support/cli-process';
import { killWhenWaiting, waitForLockWait } from '../support/lock-waits';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';
import { dieAfterBatches, installKeysOnly } from '../support/interrupted-runs';

/** Every GUID the cells are under, over all columns. */
function cellGuids(report: StatusReport): string[] {
  return [...new Set(report.columns.flatMap((c) => Object.keys(c.byKey)))];
}

/** Active on exactly `guid`, every cell counted and decrypting, nothing unchecked, exit 0. */
function expectClean(report: StatusReport, guid: string, ok = true): void {
  expect(report.running, JSON.stringify(report.running)).to.equal(undefined);
  expect(report.active, report.reason).to.equal(true);
  expect(report.keys.map((k) => k.guid)).to.deep.equal([guid]);
  expect(cellGuids(report)).to.deep.equal([guid]);
  expect(report.columns.every((c) => c.cells > 0 && c.undecryptable === 0 && c.unchecked === 0)).to.equal(true);
  expect(statusExitCode(report, ok)).to.equal(0);
}

/** A key store whose promotion of the new passphrase dies: a SIGKILL between commit and promotion. */
function dyingAtPromotion(tk: Toolkit, keystore: KeyStore): Toolkit {
  const dying = Object.create(keystore) as KeyStore;
  dying.put = async (name, value) => {
    if (name === 'passphrase') throw new Error('killed before the key store promotion');
    return keystore.put(name, value);
  };
  return { ...tk, keystore: async () => dying };
}

/**
 * Status and verify tell the truth (issue 15, part 1): after a key change that committed and
 * died before its key-store promotion, while a key operation runs, and after an install that
 * stopped half-way.
 */
export function scenarios(target: TargetName): void {
  describe(`status and verify tell the truth on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
    });

    afterEach(async () => {
      await tk?.close();
      await org?.cleanup();
    });

    async function installedOrg(rows = 30): Promise<void> {
      await seedDemo(tk, rows);
      await install(tk);
    }

    /**
     * The first read of the key hierarchy returns, then a one-transaction change-key commits and
     * dies before its key-store promotion, then the reader goes on: what a verify started right
     * after a SIGKILL met (issue 15: "repaired the key store", then every cell undecryptable
     * under a key it never loaded, exit 3).
     */
    function changeCommitsDuringFirstRead(): { newGuid: () => string } {
      const keys = tk.engine.keys;
      const read = keys.read.bind(keys);
      let armed = true;
      let newGuid = '';
      keys.read = async (db) => {
        const hierarchy = await read(db);
        if (armed) {
          armed = false;
          const newKey = generatePassphrase();
          newGuid = keyGuidFor(newKey);
          const error = await changeKey(dyingAtPromotion(tk, await tk.keystore()), { newKey }).catch((e) => e);
          expect(String(error?.message)).to.contain('killed before the key store promotion');
        }
        return hierarchy;
      };
      return { newGuid: () => newGuid };
    }

    it('verify read while a change-key commits and dies before promotion: repaired, new key, exit 0', async () => {
      await installedOrg();
      const change = changeCommitsDuringFirstRead();
      const report = await verify(tk);
      expectClean(report.status, change.newGuid(), report.ok);
      expect(report.ok).to.equal(true);
      expect(report.undecryptable).to.deep.equal([]);
      expect(report.offline.every((o) => o.sampled > 0 && o.failed === 0)).to.equal(true);
      const keystore = await tk.keystore();
      expect(keyGuidFor((await keystore.get('passphrase'))!)).to.equal(change.newGuid());
      expect(await keystore.get('passphrase.pending')).to.equal(undefined);
    });

    it('status read while a change-key commits and dies before promotion: repaired, new key, exit 0', async () => {
      await installedOrg();
      const change = changeCommitsDuringFirstRead();
      expectClean(await readStatus(tk), change.newGuid());
      expect(keyGuidFor((await (await tk.keystore()).get('passphrase'))!)).to.equal(change.newGuid());
    });

    it('while a batched change-key holds the org lock: "a key change is running", exit 0, none counted', async () => {
      await installedOrg();
      const newKey = generatePassphrase();
      const seen: Array<{ status: StatusReport; verifyOk: boolean; verifyCode: number }> = [];
      await changeKey(tk, {
        newKey,
        batchSize: 20,
        afterBatch: async () => {
          if (seen.length) return;
          const report = await verify(tk);
          seen.push({
            status: await readStatus(tk),
            verifyOk: report.ok,
            verifyCode: statusExitCode(report.status, report.ok),
          });
        },
      });
      expect(seen).to.have.length(1);
      const [{ status, verifyCode }] = seen;
      expect(status.running?.operation).to.equal('change-key');
      expect(status.running?.detail).to.match(
        /a batched key change from cellcrypt_key_1 to cellcrypt_key_2 .* is running/,
      );
      expect(status.running?.hint).to.contain('wait for it to finish');
      expect(status.columns, 'no cell counted against a moving target').to.deep.equal([]);
      expect(status.keyChange, 'running, not interrupted').to.equal(undefined);
      expect(statusExitCode(status)).to.equal(0);
      expect(verifyCode).to.equal(0);
      // Afterwards the truth again.
      expectClean(await readStatus(tk), keyGuidFor(newKey));
    });

    it('a batched change that stopped (lock free, cells on two keys) is "interrupted: --resume"', async () => {
      await installedOrg();
      await changeKey(tk, {
        generate: true,
        batchSize: 20,
        afterBatch: dieAfterBatches(2),
      }).catch(() => undefined);
      const status = await readStatus(tk);
      expect(status.running).to.equal(undefined);
      expect(status.keyChange?.state).to.equal('interrupted');
      expect(status.keyChange?.hint).to.contain('change-key --resume');
      expect(cellGuids(status)).to.have.length(2);
      expect(status.columns.every((c) => c.undecryptable === 0 && c.unchecked === 0)).to.equal(true);
      expect(statusExitCode(status)).to.equal(0);
    });

    it('while an install converts under the org lock: "an install is running (converting …)", exit 0', async () => {
      await seedDemo(tk, 30);
      await installKeysOnly(tk);
      let seen: StatusReport | undefined;
      await withOrgLock(tk, 'install', () =>
        convertColumns(tk, {
          batchSize: 7,
          afterBatch: async () => {
            seen ??= await readStatus(tk);
          },
        }),
      );
      expect(seen?.running?.operation).to.equal('install');
      expect(seen?.running?.detail).to.match(/^an install is running \(converting [A-Za-z]+\.[A-Za-z]+\)$/);
      expect(seen?.columns).to.deep.equal([]);
      expect(statusExitCode(seen!)).to.equal(0);
    });

    it('an install stopped half-way: "install incomplete: N column(s) still plaintext", exit 3', async () => {
      await seedDemo(tk, 30);
      await installKeysOnly(tk);
      await convertColumns(tk, {
        batchSize: 7,
        afterBatch: dieAfterBatches(6),
      }).catch(() => undefined);
      const status = await readStatus(tk);
      expect(status.active, status.reason).to.equal(true);
      const left = status.columns.filter((c) => c.state !== 'encrypted').map((c) => `${c.table}.${c.column}`);
      expect(left.length).to.be.greaterThan(0);
      expect(status.installIncomplete?.columns).to.deep.equal(left);
      expect(status.installIncomplete?.hint).to.contain('cellcrypt install');
      expect(statusExitCode(status)).to.equal(3);
      await install(tk);
      const done = await readStatus(tk);
      expect(done.installIncomplete).to.equal(undefined);
      expect(statusExitCode(done)).to.equal(0);
    });

    it('an installed org with a registered column still plaintext and empty is incomplete too (exit 3)', async () => {
      await seedDemo(tk, 10);
      await install(tk);
      // A column registered after the install ran (or the install died before it): no cell yet,
      // but applications write plaintext into it.
      await tk.engine.knex.raw('alter table "QueueBase" add column "LatePassword" varchar(100)');
      const late = {
        ...tk.registry[0],
        table: 'QueueBase',
        column: 'LatePassword',
        primaryKey: 'QueueId',
        maxLength: 100,
      };
      const withLate: Toolkit = { ...tk, registry: [...tk.registry, late] };
      const status = await readStatus(withLate);
      expect(status.installIncomplete?.columns).to.deep.equal(['QueueBase.LatePassword']);
      expect(status.columns.find((c) => c.column === 'LatePassword')).to.include({ state: 'plaintext', plaintext: 0 });
      expect(statusExitCode(status)).to.equal(3);
    });

    it('an install stopped before it made the keys is sent to install, not to activate', async () => {
      await seedDemo(tk, 10);
      await tk.engine.prepare();
      // The first migration creates cellcrypt's tables (the org id); the keys come with the next.
      await runMigrationsWith(tk, () => tk.engine.knex.migrate.up({ ...MIGRATIONS_CONFIG }));
      const status = await readStatus(tk);
      expect(status.active).to.equal(false);
      expect(status.hint).to.contain('cellcrypt install');
      expect(status.hint).not.to.contain('activate');
      expect(status.installIncomplete?.columns.length).to.equal(tk.registry.length);
      expect(statusExitCode(status)).to.equal(3);
    });

    if (target === 'postgres') {
      it('a process killed between commit and key-store promotion: the first verify and status are clean', async () => {
        await installedOrg(200);
        await tk.close();
        tk = undefined as never;
        // Another session holds the key store's passphrase row: the change-key commits, then waits
        // to promote its key, and is killed there.
        const holder = new Client({ connectionString: org.env.CELLCRYPT_CONFIG_URL });
        await holder.connect();
        try {
          await holder.query('begin');
          await holder.query(`select 1 from cellcrypt_keystore where name = 'passphrase' for update`);
          const run = cellcryptProcess(org.env, ['change-key', '--generate'], {
            onStart: (child) => void killWhenWaiting(holder, () => child.kill('SIGKILL')),
          });
          expect((await run).signal).to.equal('SIGKILL');
        } finally {
          await holder.query('rollback').catch(() => undefined);
          await holder.end();
        }
        const verified = await cellcryptProcess(org.env, ['verify', '--json']);
        expect(verified.code, verified.stderr).to.equal(0);
        expect(verified.stderr).to.contain('repaired the key store');
        const [guid] = verified.json.status.keys.map((k: { guid: string }) => k.guid);
        expectClean(verified.json.status, guid);
        expect(verified.json.status.keys[0].name).to.equal('cellcrypt_key_2');
        const status = await cellcryptProcess(org.env, ['status', '--json']);
        expect(status.code, status.stderr).to.equal(0);
        expectClean(status.json, guid);
      });

      it('status and verify while a one-transaction change-key holds org and tables: running, exit 0', async () => {
        await installedOrg(200);
        // The change-key is held just before its commit (its audit row waits for this lock),
        // with every table locked: what a reader meets for the whole length of a long change.
        const holder = new Client({ connectionString: org.env.DATABASE_URL });
        await holder.connect();
        try {
          await holder.query('begin');
          await holder.query('lock table cellcrypt.audit in share mode');
          const change = cellcryptProcess(org.env, ['change-key', '--generate', '--json']);
          await waitForLockWait(holder);
          const status = await cellcryptProcess(org.env, ['status', '--json'], { timeoutMs: 30_000 });
          const verified = await cellcryptProcess(org.env, ['verify', '--json'], { timeoutMs: 30_000 });
          await holder.query('rollback');
          expect(status.code, status.stdout + status.stderr).to.equal(0);
          expect(status.json.running.operation).to.equal('change-key');
          expect(status.json.running.detail).to.match(/^a key change to [0-9A-F-]{36} is running \(not committed yet/);
          expect(status.json.columns).to.deep.equal([]);
          expect(status.stdout).not.to.contain('undecryptable');
          expect(verified.code, verified.stdout + verified.stderr).to.equal(0);
          expect(verified.json.status.running.operation).to.equal('change-key');
          expect(verified.json.undecryptable).to.deep.equal([]);
          const finished = await change;
          expect(finished.code, finished.stderr).to.equal(0);
          const after = await cellcryptProcess(org.env, ['status', '--json']);
          expectClean(after.json, finished.json.newKey.guid);
        } finally {
          await holder.end();
        }
      });
    }
  });
}
