import { expect } from 'chai';
import {
  CERTIFICATE_WARNING_DAYS,
  certificateExpiryCheck,
  diagnoseMssql,
} from '../../../../src/engines/mssql/diagnose';
import { fakeMssqlKnex, type FakeMssql } from '../../../support/fake-tedious';

const DAY = 86_400_000;

describe('mssql doctor checks: certificate expiry (issue 18)', () => {
  let fake: FakeMssql | undefined;
  afterEach(async () => {
    await fake?.knex.destroy();
    fake = undefined;
  });

  it('warns within 30 days of expiry and after it, says ok before, and is silent without a certificate', () => {
    const now = Date.UTC(2027, 0, 1);
    expect(certificateExpiryCheck(new Date(now + 200 * DAY), now)).to.include({ check: 'certificate', outcome: 'ok' });
    const soon = certificateExpiryCheck(new Date(now + (CERTIFICATE_WARNING_DAYS - 1) * DAY), now)!;
    expect(soon).to.include({ outcome: 'warn' });
    expect(soon.detail).to.match(/expires 2027-01-30T00:00:00\.000Z, in 29 day\(s\)$/);
    expect(soon.hint).to.contain('cells stay readable');
    const past = certificateExpiryCheck(new Date(now - DAY), now)!;
    expect(past).to.include({ outcome: 'warn' });
    expect(past.detail).to.contain('expired 2026-12-31');
    expect(certificateExpiryCheck(null, now)).to.equal(undefined);
    expect(certificateExpiryCheck(undefined, now)).to.equal(undefined);
  });

  it('diagnose reads the expiry of the certificates protecting our keys in its one statement', async () => {
    fake = fakeMssqlKnex({
      responder: (sql) =>
        sql.startsWith('SELECT CONVERT(int, SERVERPROPERTY')
          ? [
              {
                major: 16,
                version: '16.0.4125.3',
                by_server: 1,
                master_key: 1,
                certificate_expiry: new Date(Date.now() + 3 * DAY),
              },
            ]
          : undefined,
    });
    const checks = await diagnoseMssql(fake.knex);
    expect(checks.map((c) => [c.check, c.outcome])).to.deep.equal([
      ['server', 'ok'],
      ['certificate', 'warn'],
    ]);
    const sent = fake.calls.find((c) => c.sql?.includes('sys.certificates'))!.sql!;
    expect(sent).to.contain('sys.key_encryptions').and.to.contain("LIKE N'cellcrypt[_]key[_]%'");
  });
});
