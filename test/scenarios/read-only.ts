import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ORG_MIGRATIONS } from '../../src/core/install-run';
import { inProcessCli } from '../support/in-process-cli';
import { createTestOrg, type TargetName, type TestOrg } from '../support/targets';

/**
 * Read-only commands create nothing anywhere, and a database that is not an org is asked about,
 * not sent to install (issue 15, part 2).
 */
export function scenarios(target: TargetName): void {
  describe(`read-only commands on ${target}`, function () {
    let org: TestOrg;
    const saved = { ...process.env };

    beforeEach(async () => {
      org = await createTestOrg(target);
      Object.assign(process.env, org.env);
    });

    afterEach(async () => {
      for (const key of Object.keys(org.env)) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
      await org.cleanup();
    });

    it('a database that is not an org: "is this the org database?"; read-only commands create nothing', async () => {
      const status = await inProcessCli('status', '--json');
      expect(status.json.active).to.equal(false);
      expect(status.json.reason).to.contain('not an organization database: none of the registered tables');
      expect(status.json.hint).to.contain('is this the org database?');
      expect((await inProcessCli('doctor', '--json')).code).to.equal(3);
      const migrations = await inProcessCli('migrate', 'status', '--json');
      expect(migrations.json).to.deep.equal({ completed: [], pending: ORG_MIGRATIONS.names() });
      const tk = await org.open();
      try {
        expect(await tk.engine.knex.schema.hasTable('cellcrypt_migrations'), 'no migrations table').to.equal(false);
        expect(await tk.engine.knex.schema.withSchema('cellcrypt').hasTable('organization')).to.equal(false);
      } finally {
        await tk.close();
      }
    });

    if (target === 'pglite') {
      it('an embedded path with no database: every read-only command refuses and creates nothing', async () => {
        const nowhere = join(org.dir, 'no-such-org');
        for (const command of [['status'], ['verify'], ['doctor'], ['migrate', 'status'], ['keys']]) {
          const run = await inProcessCli('--database-url', `pglite:${nowhere}`, ...command, '--json');
          expect(run.code, command.join(' ')).to.equal(2);
          expect(run.json.error.message).to.contain(`there is no database at pglite:${nowhere}`);
          expect(existsSync(nowhere), `${command.join(' ')} created nothing`).to.equal(false);
        }
      });
    }
  });
}
