import { expect } from 'chai';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import { LISTED_PER_COLUMN } from '../../../../src/core/verify';
import { mssqlColumns } from '../../../../src/engines/mssql/columns';
import { fakeMssqlKnex, type FakeMssql } from '../../../support/fake-tedious';
import { parseTsql } from '../../../support/tsql-grammar';
import { allStatementRules } from '../../../support/tsql-rules';

/**
 * Issue 16 on SQL Server: `verify` names the rows whose cell does not decrypt. What the engine
 * sends for that, over knex's real mssql client and the recording tedious: one statement that
 * parses, carries verify's cap as TOP, decrypts with the row's authenticator, runs with the
 * long request timeout, and whose answer becomes the full count and lower-case ids.
 */
const LONG_TIMEOUT = 1_234_000;
const mailbox = DYNAMICS_DEFAULT_COLUMNS.find((c) => c.table === 'MailboxBase')!;

describe('mssql: the rows whose cell does not decrypt (verify)', () => {
  let fake: FakeMssql | undefined;
  afterEach(async () => {
    await fake?.knex.destroy();
    fake = undefined;
  });

  it('one statement with TOP (cap) and COUNT(*) OVER (): the full count and the first ids', async () => {
    const ids = ['0BE77F8B-2A2B-496C-AFFB-C20A0FA71875', '2B27C36B-D1EE-4022-9101-4156B61916F7'];
    // SQL Server's answer to 23 bad cells with a cap of 2: every row carries the window count.
    fake = fakeMssqlKnex({
      responder: (sql) => (sql.includes('COUNT(*) OVER ()') ? ids.map((id) => ({ id, n: 23 })) : undefined),
    });
    const found = await mssqlColumns(LONG_TIMEOUT).findUndecryptable(fake.knex, mailbox, 2);
    expect(found).to.deep.equal({ count: 23, ids: ids.map((id) => id.toLowerCase()) });

    const [call] = fake.calls.filter((c) => c.sql?.includes('COUNT(*) OVER ()'));
    expect(call.kind).to.equal('execSqlBatch');
    expect(call.timeout).to.equal(LONG_TIMEOUT);
    expect(parseTsql(call.sql!)).to.deep.equal([]);
    expect(allStatementRules(call.sql!, { knex: false })).to.deep.equal([]);
    expect(call.sql).to.equal(
      'SELECT TOP (2) CONVERT(nvarchar(36), [MailboxId]) AS id, COUNT(*) OVER () AS n FROM [MailboxBase] ' +
        'WHERE [Password] IS NOT NULL AND DECRYPTBYKEY([Password], 1, CONVERT(varbinary(16), [MailboxId])) IS NULL ' +
        'ORDER BY [MailboxId]',
    );
  });

  it("carries verify's own cap, and no row means no bad cell", async () => {
    fake = fakeMssqlKnex({ responder: (sql) => (sql.includes('COUNT(*) OVER ()') ? [] : undefined) });
    const found = await mssqlColumns(LONG_TIMEOUT).findUndecryptable(fake.knex, mailbox, LISTED_PER_COLUMN);
    expect(found).to.deep.equal({ count: 0, ids: [] });
    expect(LISTED_PER_COLUMN).to.equal(20);
    expect(fake.statements().filter((sql) => sql.startsWith(`SELECT TOP (${LISTED_PER_COLUMN}) `))).to.have.length(1);
  });
});
