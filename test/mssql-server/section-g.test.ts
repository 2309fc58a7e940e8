import { expect } from 'chai';
import { openThrowAwayOrg, type ThrowAwayOrg } from '../../src/cli/commands/selftest-database';
import { parseConnectionTarget } from '../../src/config/connection-target';
import { seedDemo } from '../../src/core/demo-seed';
import { install } from '../../src/core/install';
import { keyTransaction } from '../../src/core/key-transaction';
import { readStatus } from '../../src/core/status';
import type { Toolkit } from '../../src/core/toolkit';
import { mssqlServerUrl, onRealServer } from './server';

/**
 * The SQL Server engine review's section G (../shared/reference/sqlserver-engine-review.md):
 * the cheapest confirmations of what it could only infer, on the server of TEST_MSSQL_URL.
 * G1 (sys.dm_tran_locks after lockTable), G3 (the install script run twice, with sqlcmd) and
 * G10 (ENCRYPTBYKEY of N'') are selftest checks (selftest.test.ts). Left to a person, since no
 * test can do them: G4 (the install script from a BOM-less UTF-8 :setvar file, then
 * decrypt-offline), G5 (the script in SSMS without SQLCMD mode), G7 (a filtered index, the
 * script with and without -I) and G8 (is_master_key_encrypted_by_server after a restore onto a
 * second instance).
 */
const MAX_RECORD_GROWTH_AFTER_REBUILD = 8;

interface Row {
  [column: string]: unknown;
}

onRealServer('review section G on the real SQL Server (TEST_MSSQL_URL)', function () {
  this.timeout(600_000);
  let org: ThrowAwayOrg;
  let tk: Toolkit;

  before(async () => {
    const target = parseConnectionTarget(mssqlServerUrl!, process.cwd());
    if (typeof target === 'string') throw new Error(target);
    org = await openThrowAwayOrg(target);
    tk = org.environment.tk;
    await seedDemo(tk, 500);
    await install(tk);
    expect((await readStatus(tk)).active).to.equal(true);
  });

  after(async () => {
    await org?.close(false);
  });

  const masterPassword = async () => (await (await tk.keystore()).get('master-key-password'))!;
  const rows = (result: unknown) => result as Row[];

  it('G2 (WR1): after install a rebuild reclaims nothing: no dropped plaintext is left in the rows', async () => {
    const recordSize = async () =>
      Number(
        rows(
          await tk.engine.knex.raw(
            'SELECT AVG(avg_record_size_in_bytes) AS size FROM sys.dm_db_index_physical_stats(DB_ID(), ' +
              "OBJECT_ID(N'MailboxBase'), NULL, NULL, 'DETAILED') WHERE index_level = 0",
          ),
        )[0].size,
      );
    const before = await recordSize();
    await tk.engine.knex.raw('ALTER TABLE [MailboxBase] REBUILD');
    const after = await recordSize();
    expect(before - after, `avg record ${before} bytes before a rebuild, ${after} after`).to.be.below(
      MAX_RECORD_GROWTH_AFTER_REBUILD,
    );
  });

  it('G6 (BR1): a user without CONTROL on the database cannot OPEN MASTER KEY (error 15247)', async () => {
    const password = await masterPassword();
    await tk.engine.knex.raw('CREATE USER [cellcrypt_selftest_reader] WITHOUT LOGIN');
    await tk.engine.knex.raw('GRANT SELECT TO [cellcrypt_selftest_reader]');
    const error = await keyTransaction(tk.engine, async (trx) => {
      await trx.raw("EXECUTE AS USER = N'cellcrypt_selftest_reader'");
      try {
        await tk.engine.keys.openMasterKey(trx, password);
        return undefined;
      } catch (caught) {
        return caught as Error & { cause?: { number?: number } };
      } finally {
        await trx.raw('REVERT');
      }
    }).catch((caught: Error & { cause?: { number?: number } }) => caught);
    expect(error, 'OPEN MASTER KEY worked without CONTROL on the database').to.not.equal(undefined);
    expect(`${error!.message} ${error!.cause?.number ?? ''}`).to.match(/15247|permission/i);
  });

  it('G9 (section F): ALTER MASTER KEY ADD ENCRYPTION BY SERVICE MASTER KEY inside a transaction', async () => {
    const password = await masterPassword();
    const sentinel = new Error('roll back on purpose');
    const outcome = await keyTransaction(tk.engine, async (trx) => {
      await tk.engine.keys.openMasterKey(trx, password);
      await trx.raw('ALTER MASTER KEY ADD ENCRYPTION BY SERVICE MASTER KEY');
      throw sentinel;
    }).catch((error: unknown) => error);
    expect(outcome).to.equal(sentinel);
    expect((await readStatus(tk)).active).to.equal(true);
  });
});
