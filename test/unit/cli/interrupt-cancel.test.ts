import { expect } from 'chai';
import { cancelStatement, type GuardedClient } from '../../../src/cli/interrupt';
import { FakeConnection, fakeMssqlKnex, type FakeRequest } from '../../support/fake-tedious';

/**
 * Ctrl-C cancels the statement running in a transaction (issue 15): on SQL Server through
 * tedious's attention, which knex's real mssql client turns into a rejected transaction that is
 * rolled back; a Ctrl-C used to wait for a long re-encryption to run to its end.
 */
describe('Ctrl-C cancels the running statement', () => {
  it('SQL Server: the statement in flight is cancelled and the transaction rolled back', async () => {
    const fake = fakeMssqlKnex({ responder: () => ({ rowCount: 5000 }) });
    const client = fake.knex.client as unknown as GuardedClient;
    const execSql = FakeConnection.prototype.execSql;
    const cancelled: Array<string | undefined> = [];
    // The Ctrl-C lands while the UPDATE is on the wire: after it was sent, before its answer.
    fake.tedious.Connection.prototype.execSql = function (this: FakeConnection, request: FakeRequest) {
      execSql.call(this, request);
      if (request.sqlTextOrProcedure?.startsWith('UPDATE')) cancelled.push(cancelStatement(client, this));
    };
    try {
      const outcome = await fake.knex
        .transaction(async (trx) => {
          await trx.raw('SELECT 1');
          await trx.raw('UPDATE [dbo].[ContactBase] SET [EMailAddress1] = NULL');
          await trx.raw('SELECT 2');
        })
        .then(
          () => 'committed',
          (error: Error & { code?: string }) => error.code,
        );
      expect(cancelled).to.deep.equal(['tedious']);
      expect(outcome).to.equal('ECANCEL');
      expect(fake.sequence()).to.deep.equal([
        'begin',
        'sql: SELECT 1',
        'sql: UPDATE [dbo].[ContactBase] SET [EMailAddress1] = NULL',
        'cancel',
        'rollback',
      ]);
    } finally {
      await fake.knex.destroy();
    }
  });

  it('PostgreSQL server: knex cancels from another connection; PGlite: nothing to cancel', async () => {
    const asked: unknown[] = [];
    const client: GuardedClient = { cancelQuery: async (connection) => void asked.push(connection) };
    const pgConnection = { processID: 4242 };
    expect(cancelStatement(client, pgConnection)).to.equal('pg');
    expect(asked).to.deep.equal([pgConnection]);
    // A PGlite connection runs its statement in this process: there is nothing to send.
    expect(cancelStatement(client, { query: () => undefined, exec: () => undefined })).to.equal(undefined);
    expect(asked).to.have.length(1);
  });
});
