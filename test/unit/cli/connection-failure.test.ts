import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inProcessCli } from '../../support/in-process-cli';
import { pgServerUrl } from '../../support/pg-server';

/**
 * A database that cannot be reached is the operator's to fix: exit 1 with
 * CellcryptDatabaseUnavailable and the way out, no stack trace, no knex "Acquire connection
 * error" noise, and no password from the URL.
 */
describe('CLI: a database that cannot be reached', function () {
  this.timeout(60_000);

  const urls: Record<string, string> = {
    'PostgreSQL, nothing listening': 'postgres://cellcrypt:pa55word@127.0.0.1:1/Org',
    'SQL Server, nothing listening': 'mssql://sa:pa55word@127.0.0.1:1/Org',
  };
  const server = pgServerUrl();
  if (server) {
    const missing = new URL(server);
    missing.pathname = '/cellcrypt_no_such_database';
    urls['PostgreSQL, no such database'] = missing.toString();
  }

  for (const [label, url] of Object.entries(urls)) {
    it(`${label}: exit 1, CellcryptDatabaseUnavailable naming --database-url, no stack, no password`, async () => {
      const run = await inProcessCli('--database-url', url, '--json', 'status');
      expect(run.code, run.stderr).to.equal(1);
      expect(run.json.error.code).to.equal('CellcryptDatabaseUnavailable');
      expect(run.json.error.hint).to.contain('--database-url');
      expect(run.stderr).not.to.match(/\n\s+at /); // no stack frames
      expect(run.stderr + run.stdout).not.to.contain('pa55word');
    });
  }

  it(
    'the real process stderr carries one error line and its way ' +
      'out, not knex\'s "Acquire connection error" with a stack',
    () => {
      // knex writes that warning to the process's stderr directly, so this one runs as a child process.
      const run = spawnSync(
        process.execPath,
        ['--require', 'tsx/cjs', 'src/cli/main.ts', '--database-url', urls['PostgreSQL, nothing listening'], 'status'],
        {
          encoding: 'utf8',
          cwd: join(__dirname, '../../..'),
          env: { ...process.env, CELLCRYPT_HOME: mkdtempSync(join(tmpdir(), 'cellcrypt-unreachable-')) },
        },
      );
      expect(run.status, run.stderr).to.equal(1);
      expect(run.stderr).to.contain('error [CellcryptDatabaseUnavailable]');
      expect(run.stderr).not.to.contain('Acquire connection error');
      expect(run.stderr).not.to.match(/\n\s+at /);
      expect(run.stderr).not.to.contain('pa55word');
    },
  );
});
