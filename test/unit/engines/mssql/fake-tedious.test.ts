import { expect } from 'chai';
import { fakeMssqlKnex, type FakeMssql, type Responder } from '../../../support/fake-tedious';

const sqlError = (number: number, message: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { number }, extra);

describe("fake tedious under knex's real mssql client", () => {
  let fake: FakeMssql | undefined;
  const make = (options: Parameters<typeof fakeMssqlKnex>[0] = {}) => (fake = fakeMssqlKnex(options));
  afterEach(async () => {
    await fake?.knex.destroy();
    fake = undefined;
  });

  it('knex.raw returns the rows the responder gives, sent with execSql and no parameters', async () => {
    const { knex, calls } = make({ responder: (sql) => (sql === 'select 1 as x' ? [{ x: 1 }] : undefined) });
    expect(await knex.raw('select 1 as x')).to.deep.equal([{ x: 1 }]);
    expect(await knex.raw('select 2 as y')).to.deep.equal([]); // default: no rows
    expect(calls.filter((c) => c.kind === 'execSql')).to.deep.equal([
      { connectionId: 1, kind: 'execSql', sql: 'select 1 as x', parameters: [] },
      { connectionId: 1, kind: 'execSql', sql: 'select 2 as y', parameters: [] },
    ]);
  });

  it('bindings become @p0.. parameters typed by knex (Int, NVarChar, VarBinary, Bit)', async () => {
    const { knex, calls } = make();
    await knex('t').insert({ a: 1 });
    await knex('t')
      .where({ s: 'x', b: Buffer.from([1]), f: true })
      .select('a');
    const sent = calls.filter((c) => c.kind === 'execSql');
    expect(sent[0]).to.deep.equal({
      connectionId: 1,
      kind: 'execSql',
      sql: 'insert into [t] ([a]) values (@p0)',
      parameters: [{ name: 'p0', type: 'Int', value: 1 }],
    });
    expect(sent[1].sql).to.equal('select [a] from [t] where [s] = @p0 and [b] = @p1 and [f] = @p2');
    expect(sent[1].parameters!.map((p) => p.type)).to.deep.equal(['NVarChar', 'VarBinary', 'Bit']);
  });

  it('a transaction that succeeds: begin → statements → commit, all on one connection', async () => {
    const { knex, calls, sequence } = make({ pool: { max: 4 } });
    await knex.transaction(async (trx) => {
      await trx.raw('update t set a = 1');
      await trx('t').insert({ a: 2 });
    });
    expect(sequence()).to.deep.equal([
      'begin',
      'sql: update t set a = 1',
      'sql: insert into [t] ([a]) values (@p0)',
      'commit',
    ]);
    expect(new Set(calls.map((c) => c.connectionId))).to.deep.equal(new Set([1]));
    expect(calls.find((c) => c.kind === 'beginTransaction')).to.deep.equal({
      connectionId: 1,
      kind: 'beginTransaction',
      isolationLevel: 2,
    });
  });

  it(
    'a failing 2nd statement: begin → stmt → stmt → rollback, ' +
      'no commit, and the caller gets the error with its number',
    async () => {
      const truncated = sqlError(8152, 'String or binary data would be truncated.');
      const { knex, calls, sequence } = make({ responder: (sql) => (sql.includes('second') ? truncated : undefined) });
      const failure = await knex
        .transaction(async (trx) => {
          await trx.raw('select 1 as first');
          await trx.raw('select 2 as second');
          await trx.raw('select 3 as third');
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(failure).to.equal(truncated);
      expect((failure as { number?: number }).number).to.equal(8152);
      expect(sequence()).to.deep.equal(['begin', 'sql: select 1 as first', 'sql: select 2 as second', 'rollback']);
      expect(calls.some((c) => c.kind === 'commitTransaction')).to.equal(false);
    },
  );

  it('an error that ends the transaction server-side (deadlock): knex sends no rollback of its own', async () => {
    const deadlock = sqlError(1205, 'Transaction was deadlocked', { abortsTransaction: true });
    const { knex, sequence } = make({ responder: () => deadlock });
    const failure = await knex.transaction((trx) => trx.raw('update t set a = 1')).catch((error: unknown) => error);
    expect(failure).to.equal(deadlock);
    expect(sequence()).to.deep.equal(['begin', 'sql: update t set a = 1']);
  });

  it(
    'knex fact: a failed commit sends no rollback, and the ' + 'pool gets the connection back still in its transaction',
    async () => {
      const { knex, sequence } = make({
        onTransaction: (kind) =>
          kind === 'commitTransaction' ? sqlError(3998, 'Uncommittable transaction') : undefined,
      });
      const failure = await knex.transaction((trx) => trx.raw('select 1')).catch((error: unknown) => error);
      expect((failure as { number?: number }).number).to.equal(3998);
      expect(sequence()).to.deep.equal(['begin', 'sql: select 1', 'commit']);
      const connection = await knex.client.acquireConnection();
      expect(connection.inTransaction).to.equal(true);
      await knex.client.releaseConnection(connection);
    },
  );

  it('nested transactions are savepoints: save / rollback <name> on the same connection', async () => {
    const { knex, sequence } = make();
    await knex.transaction(async (trx) => {
      await trx.transaction((inner) => inner.raw('select 1')).catch(() => undefined);
      await trx
        .transaction(async (inner) => {
          await inner.raw('select 2');
          throw new Error('undo inner');
        })
        .catch(() => undefined);
    });
    const names = sequence().filter((s) => /^(save|rollback)/.test(s));
    expect(names).to.have.length(3);
    expect(names[2]).to.equal(names[1].replace('save', 'rollback'));
    expect(sequence().at(-1)).to.equal('commit');
  });

  it(
    'knex fact: a ? inside a literal of knex.raw is ' + 'rewritten to @p0 with no parameter; \\? sends a plain ?',
    async () => {
      const { knex, statements, calls } = make();
      await knex.raw("select 'a?b'");
      await knex.raw("select 'a\\?b'");
      await knex.raw("select 'a\\?b', ?", ['v']);
      expect(statements()).to.deep.equal(["select 'a@p0b'", "select 'a?b'", "select 'a?b', @p0"]);
      expect(calls.filter((c) => c.kind === 'execSql').map((c) => c.parameters!.length)).to.deep.equal([0, 0, 1]);
      // With bindings an unescaped ? in the literal counts as a placeholder: knex refuses before sending.
      expect(() => knex.raw("select 'a?b', ?", ['v']).toSQL()).to.throw(/Expected 1 bindings, saw 2/);
    },
  );

  it(
    'captures the Connection config: top-level requestTimeout ' + 'and connection.options pass through to options',
    async () => {
      make({ connection: { requestTimeout: 123456, options: { appName: 'cellcrypt', encrypt: true } } });
      await fake!.knex.raw('select 1');
      const config = fake!.connectionOptions[0] as { server: string; options: Record<string, unknown> };
      expect(config.server).to.equal('fake-sql-server');
      expect(config.options).to.include({
        requestTimeout: 123456,
        appName: 'cellcrypt',
        encrypt: true,
        useColumnNames: false,
        database: 'fake',
      });
      await fake!.knex.destroy();

      make({ connection: { options: { requestTimeout: 654321 } } }); // connection.options wins: knex spreads it last
      await fake!.knex.raw('select 1');
      expect(fake!.connectionOptions[0].options).to.include({ requestTimeout: 654321 });
    },
  );

  it(
    "engine code's own execSqlBatch on the transaction's " +
      'connection is recorded with that connection, rows and timeout',
    async () => {
      const responder: Responder = (sql) => (sql.startsWith('OPEN') ? { rows: [{ ok: 1 }], rowCount: 1 } : undefined);
      const { knex, calls, sequence } = make({ responder, pool: { max: 4 } });
      expect(knex.client.driver).to.equal(fake!.tedious);
      await knex.raw('select 1'); // warms a connection outside the transaction
      let rows: unknown[] = [];
      await knex.transaction(async (trx) => {
        await trx.raw('select 2');
        const connection = await trx.client.acquireConnection();
        const { Request } = knex.client.driver as FakeMssql['tedious'];
        try {
          rows = await new Promise<unknown[]>((resolve, reject) => {
            const found: unknown[] = [];
            const request = new Request("OPEN SYMMETRIC KEY k DECRYPTION BY PASSWORD = N'p?w'", (error) =>
              error ? reject(error) : resolve(found),
            );
            request.setTimeout(7_200_000);
            request.on('row', (columns: Array<{ metadata: { colName: string }; value: unknown }>) =>
              found.push(columns.map((c) => [c.metadata.colName, c.value])),
            );
            connection.execSqlBatch(request);
          });
        } finally {
          await trx.client.releaseConnection(connection);
        }
      });
      expect(rows).to.deep.equal([[['ok', 1]]]);
      const begin = calls.find((c) => c.kind === 'beginTransaction')!;
      const batch = calls.find((c) => c.kind === 'execSqlBatch')!;
      expect(batch).to.deep.equal({
        connectionId: begin.connectionId,
        kind: 'execSqlBatch',
        sql: "OPEN SYMMETRIC KEY k DECRYPTION BY PASSWORD = N'p?w'",
        parameters: [],
        timeout: 7_200_000,
      });
      expect(sequence(begin.connectionId).slice(-4)).to.deep.equal([
        'begin',
        'sql: select 2',
        "batch: OPEN SYMMETRIC KEY k DECRYPTION BY PASSWORD = N'p?w'",
        'commit',
      ]);
    },
  );

  it('like tedious, a second request while one is in flight fails EINVALIDSTATE and is not sent', async () => {
    const { knex, statements } = make();
    await knex.transaction(async (trx) => {
      const connection = await trx.client.acquireConnection();
      const running = trx.raw('select 1').then((rows) => rows);
      await new Promise((resolve) => setImmediate(resolve, undefined)); // let knex send it first
      const error = await new Promise<Error & { code?: string }>((resolve) =>
        connection.execSqlBatch(new fake!.tedious.Request('select 2', (e) => resolve(e as Error & { code?: string }))),
      );
      await running;
      expect(error.code).to.equal('EINVALIDSTATE');
    });
    expect(statements()).to.deep.equal(['select 1']);
  });
});
