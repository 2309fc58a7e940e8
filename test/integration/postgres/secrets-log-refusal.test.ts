import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { adminQuery } from '../../support/pg-server';
import { inProcessCli } from '../../support/in-process-cli';
import { createTestOrg, targetRuns, type TestOrg } from '../../support/targets';

/**
 * A user who may not turn off parameter logging, on a database that logs every statement: the
 * key operations are refused before any change (issue 15: they sent the master-key password to
 * the server log 74 times after one warning line), unless the risk is accepted explicitly.
 */
if (targetRuns('postgres')) {
  describe('a server that would log key secrets (postgres)', function () {
    let org: TestOrg;
    let role: string;
    const savedEnv = { ...process.env };

    beforeEach(async () => {
      org = await createTestOrg('postgres');
      Object.assign(process.env, org.env);
      const admin = process.env.TEST_PG_URL!;
      const database = new URL(org.env.DATABASE_URL!).pathname.slice(1);
      role = `cellcrypt_logged_${randomBytes(4).toString('hex')}`;
      const password = `pw-${randomBytes(8).toString('hex')}`;
      await adminQuery(admin, `create role ${role} login nosuperuser password '${password}'`);
      await adminQuery(admin, `alter database "${database}" owner to ${role}`);
      await adminQuery(admin, `alter database "${database}" set log_statement = 'all'`);
      const url = new URL(org.env.DATABASE_URL!);
      url.username = role;
      url.password = password;
      process.env.DATABASE_URL = url.toString();
    });

    afterEach(async () => {
      for (const key of [...Object.keys(org.env), 'CELLCRYPT_ACCEPT_SECRETS_IN_SERVER_LOG']) {
        if (savedEnv[key] === undefined) delete process.env[key];
        else process.env[key] = savedEnv[key];
      }
      await org.cleanup();
      await adminQuery(process.env.TEST_PG_URL!, `drop role if exists ${role}`).catch(() => undefined);
    });

    it('install is refused with exit 2 and the fix, nothing changed; accepted only when told', async () => {
      expect((await inProcessCli('demo', 'seed', '--rows', '4')).code).to.equal(0);
      const refused = await inProcessCli('install', '--json');
      expect(refused.code, refused.stderr).to.equal(2);
      expect(refused.json.error.code).to.equal('CellcryptSecretsWouldBeLogged');
      expect(refused.json.error.hint).to.contain("SET log_statement = 'none'");
      expect(refused.json.error.hint).to.contain('CELLCRYPT_ACCEPT_SECRETS_IN_SERVER_LOG=1');
      const status = await inProcessCli('status', '--json');
      expect(
        status.json.columns.every((c: { state: string }) => c.state === 'plaintext'),
        'nothing converted',
      ).to.equal(true);
      process.env.CELLCRYPT_ACCEPT_SECRETS_IN_SERVER_LOG = '1';
      const accepted = await inProcessCli('install');
      expect(accepted.code, accepted.stderr).to.equal(0);
    });
  });
}
