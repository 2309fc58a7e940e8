import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { seedDemo } from '../../src/core/demo-seed';
import { install } from '../../src/core/install';
import { formatKeyFile } from '../../src/core/key-file';
import { ORG_KEY_LOCK } from '../../src/core/org-lock';
import type { Toolkit } from '../../src/core/toolkit';
import { DEMO_TABLE_NAMES, tableChecksums } from '../support/org-data';
import { cellcryptProcess, type ProcessRun } from '../support/cli-process';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';

/** The real CLI in its own process, as a DBA or an installer would start it. */
async function cellcrypt(env: NodeJS.ProcessEnv, args: string[]): Promise<ProcessRun> {
  const run = await cellcryptProcess(env, [...args, '--json']);
  return { ...run, json: run.json ?? { unparsed: run.stdout } };
}

/** Four key operations started at once, as separate processes, while another holder has the org. */
export function scenarios(target: TargetName): void {
  describe(`concurrent key operations on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit | undefined;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
    });

    async function installedOrg(rows: number): Promise<void> {
      await seedDemo(tk!, rows);
      await install(tk!);
    }

    afterEach(async () => {
      await tk?.close();
      await org.cleanup();
    });

    it('change-key x2, activate and install are all refused at once, and nothing changes', async () => {
      await installedOrg(30);
      const keyFile = join(org.dir, 'key.txt');
      writeFileSync(keyFile, formatKeyFile((await (await tk!.keystore()).get('passphrase'))!, 'utf8'));
      const before = await tableChecksums(tk!.engine.knex, [...DEMO_TABLE_NAMES]);
      let holder: Client | undefined;
      if (target === 'postgres') {
        // Another session (a key change in progress elsewhere) holds the org's key-operation lock.
        holder = new Client({ connectionString: org.env.DATABASE_URL });
        await holder.connect();
        await holder.query('select pg_advisory_lock($1, hashtext($2))', [0x63636c6b, ORG_KEY_LOCK]);
      }
      // On PGlite the holder is this test process itself, which has the data directory open.
      try {
        const runs = await Promise.all([
          cellcrypt(org.env, ['change-key', '--generate']),
          cellcrypt(org.env, ['change-key', '--generate', '--batch-size', '10']),
          cellcrypt(org.env, ['activate', '--key-file', keyFile]),
          cellcrypt(org.env, ['install']),
        ]);
        const expected =
          target === 'postgres'
            ? 'SqlEncryptionSetEncryptionKeyIsAlreadyRunningCannotRunItInParallel'
            : 'CellcryptDataDirectoryBusy';
        for (const run of runs) {
          expect(run.code, JSON.stringify(run.json)).to.equal(2);
          expect(run.json.error.code).to.equal(expected);
          expect(run.ms, 'refused at once, not after waiting').to.be.lessThan(30_000);
        }
      } finally {
        await holder?.end();
      }
      expect(await tableChecksums(tk!.engine.knex, [...DEMO_TABLE_NAMES])).to.deep.equal(before);
      expect((await tk!.engine.keys.read(tk!.engine.knex)).symmetricKeys.map((k) => k.name)).to.deep.equal([
        'cellcrypt_key_1',
      ]);

      // Once the holder is gone, one of them proceeds.
      await tk!.close();
      tk = undefined;
      const after = await cellcrypt(org.env, ['change-key', '--generate']);
      expect(after.code, JSON.stringify(after.json)).to.equal(0);
    });

    if (target === 'postgres') {
      it(
        'a long change-key holds the org: three more processes started ' +
          'meanwhile exit at once with 0x8004852A; exactly one proceeds',
        async () => {
          await installedOrg(20_000);
          const keyFile = join(org.dir, 'key.txt');
          writeFileSync(keyFile, formatKeyFile((await (await tk!.keystore()).get('passphrase'))!, 'utf8'));
          const watcher = new Client({ connectionString: org.env.DATABASE_URL });
          await watcher.connect();
          try {
            const first = cellcrypt(org.env, ['change-key', '--generate']);
            // Wait until the first process holds the org's lock, then start the others.
            for (let i = 0; ; i++) {
              // This org's database only: suites in parallel workers hold the same lock on theirs.
              const held = await watcher.query(
                `select count(*)::int as n from pg_locks where locktype = 'advisory' and classid = $1::int::oid ` +
                  `and granted and database = (select oid from pg_database where datname = current_database())`,
                [0x63636c6b],
              );
              if (held.rows[0].n > 0) break;
              if (i > 600) throw new Error('the first change-key never took the lock');
              await new Promise((tick) => setTimeout(tick, 50));
            }
            const others = await Promise.all([
              cellcrypt(org.env, ['change-key', '--generate', '--batch-size', '100']),
              cellcrypt(org.env, ['activate', '--key-file', keyFile]),
              cellcrypt(org.env, ['install']),
            ]);
            const winner = await first;
            expect(winner.code, JSON.stringify(winner.json)).to.equal(0);
            for (const run of others) {
              expect(run.code, JSON.stringify(run.json)).to.equal(2);
              expect(run.json.error.code).to.equal(
                'SqlEncryptionSetEncryptionKeyIsAlreadyRunningCannotRunItInParallel',
              );
            }
            expect(
              others.every((run) => run.ms < winner.ms),
              'the others did not wait for the winner',
            ).to.equal(true);
          } finally {
            await watcher.end();
          }
          const keys = (await tk!.engine.keys.read(tk!.engine.knex)).symmetricKeys.map((k) => k.name);
          expect(keys).to.deep.equal(['cellcrypt_key_2']);
        },
      );
    }
  });
}
