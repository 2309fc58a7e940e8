import { expect } from 'chai';
import { readFileSync, statSync } from 'node:fs';
import { adminQuery } from '../../support/pg-server';
import { inProcessCli } from '../../support/in-process-cli';
import { createTestOrg, targetRuns, type TestOrg } from '../../support/targets';

/**
 * With the server logging every statement (log_statement=all), install, status, verify and both
 * kinds of change-key leave no passphrase or master-key password in the server's log. Needs the
 * log file's path (TEST_PG_LOG, set by .ci/run); the test database alone is switched to
 * log_statement=all.
 */
const logFile = process.env.TEST_PG_LOG;

if (targetRuns('postgres')) {
  describe('secrets never reach the PostgreSQL server log (log_statement=all)', function () {
    let org: TestOrg;
    const savedEnv = { ...process.env };

    before(function () {
      if (!logFile) {
        if (process.env.CELLCRYPT_REQUIRE_PG_SERVER === '1')
          throw new Error('TEST_PG_LOG must name the server log in CI');
        this.skip();
      }
    });

    beforeEach(async () => {
      org = await createTestOrg('postgres');
      Object.assign(process.env, org.env);
      const database = new URL(org.env.DATABASE_URL!).pathname.slice(1);
      await adminQuery(process.env.TEST_PG_URL!, `alter database "${database}" set log_statement = 'all'`);
    });

    afterEach(async () => {
      for (const key of Object.keys(org.env)) {
        if (savedEnv[key] === undefined) delete process.env[key];
        else process.env[key] = savedEnv[key];
      }
      await org.cleanup();
    });

    it('install, status, verify, change-key (one transaction and batched), show-key', async () => {
      const start = statSync(logFile!).size;
      const codes = [];
      for (const args of [
        ['demo', 'seed', '--rows', '10'],
        ['install'],
        ['status'],
        ['verify'],
        ['change-key', '--generate'],
        ['change-key', '--generate', '--batch-size', '5'],
      ]) {
        codes.push((await inProcessCli(...args)).code);
      }
      expect(codes).to.deep.equal([0, 0, 0, 0, 0, 0]);
      const tk = await org.open();
      const keystore = await tk.keystore();
      const secrets = [
        (await keystore.get('passphrase'))!.reveal(),
        (await keystore.get('master-key-password'))!.reveal(),
      ];
      await tk.close();

      const log = readFileSync(logFile!).subarray(start).toString('utf8');
      expect(log, 'the server did log our statements').to.contain('cellcrypt.open_master_key');
      expect(log, 'and bind parameters of other statements').to.contain('parameters:');
      for (const secret of secrets) expect(log.includes(secret), 'a secret is in the server log').to.equal(false);
    });
  });
}
