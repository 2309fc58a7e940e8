import { expect } from 'chai';
import { selftestCommand } from '../../src/cli/commands/selftest';
import { memoryIo } from '../../src/cli/io';
import { ENGINE_CHECKS, LIFE_CHECKS } from '../../src/core/selftest/run';
import type { SelftestResult } from '../../src/core/selftest/types';
import { SERVER_FACTS } from '../../src/engines/mssql/selftest';
import { mssqlServerUrl, onRealServer } from './server';

/**
 * `cellcrypt selftest` against the SQL Server of TEST_MSSQL_URL, one mocha test per check: what
 * a DBA's `cellcrypt selftest --database-url mssql://…` reports, as a test run CI can show.
 * A check the selftest skipped (no sqlcmd on the PATH, say) is pending here, with its reason.
 */
onRealServer('cellcrypt selftest on the real SQL Server (TEST_MSSQL_URL)', function () {
  this.timeout(1_200_000);
  let report: { checks: SelftestResult[]; database: { dropped: boolean } } | undefined;

  before(async () => {
    const io = memoryIo(true);
    await selftestCommand({ json: true, databaseUrl: mssqlServerUrl, keep: false }, io);
    report = io.documents[0] as typeof report;
  });

  const names = [...Object.values(LIFE_CHECKS), ...Object.values(SERVER_FACTS), ...Object.values(ENGINE_CHECKS)];
  for (const name of names) {
    it(name, function () {
      const result = report!.checks.find((c) => c.check === name);
      expect(result, `the selftest reported no "${name}"`).to.not.equal(undefined);
      if (result!.outcome === 'skipped') {
        this.test!.title = `${name} (skipped: ${result!.detail})`;
        this.skip();
      }
      expect(result!.outcome, `${result!.detail}${result!.hint ? ` -> ${result!.hint}` : ''}`).to.equal('ok');
    });
  }

  it('drops its throw-away database afterwards', () => {
    expect(report!.database.dropped).to.equal(true);
  });
});
