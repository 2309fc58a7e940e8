import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { guidBytesToString } from '../../src/cellcrypt';
import { changeKey } from '../../src/core/change-key';
import { seedDemo } from '../../src/core/demo-seed';
import { install } from '../../src/core/install';
import { assessActivity } from '../../src/core/key-access';
import type { Toolkit } from '../../src/core/toolkit';
import { verify } from '../../src/core/verify';
import { q } from '../support/org-data';
import { createTestOrg, type TargetName, type TestOrg } from '../support/targets';
import { dieAfterBatches } from '../support/interrupted-runs';

/**
 * The application contract (review DL6; README, "For applications"): an application names no key
 * generation. It opens the keys with `cellcrypt.open_keys(password)`, writes with
 * `cellcrypt.encrypt_text(cellcrypt.current_key_guid(), value, id)` and reads with
 * `cellcrypt.decrypt_text(cell, id)`, in one transaction of its own session. The same code keeps
 * working across a key change in one transaction and a batched one (both keys present mid-way).
 */
const TABLE = 'MailboxBase';
const ID = 'MailboxId';
const CELL = 'Password';

/** One application transaction: `?` placeholders, on its own connection where the engine has more than one. */
type AppQuery = (sql: string, values?: unknown[]) => Promise<Array<Record<string, any>>>;
type AppSession = <T>(work: (query: AppQuery) => Promise<T>) => Promise<T>;

function applicationSession(target: TargetName, org: TestOrg, tk: Toolkit): AppSession {
  if (target === 'pglite') {
    // PGlite has one connection: the application's transaction shares it, as an embedded app would.
    return (work) =>
      tk.engine.knex.transaction((trx) => work(async (sql, values = []) => (await trx.raw(sql, values as any[])).rows));
  }
  return async (work) => {
    const client = new Client({ connectionString: org.env.DATABASE_URL });
    await client.connect();
    try {
      await client.query('begin');
      const result = await work(async (sql, values = []) => {
        let n = 0;
        return (
          await client.query(
            sql.replace(/\?/g, () => `$${++n}`),
            values,
          )
        ).rows;
      });
      await client.query('commit');
      return result;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      await client.end();
    }
  };
}

export function scenarios(target: TargetName): void {
  describe(`the application contract on ${target}: cellcrypt.open_keys and cellcrypt.current_key_guid`, function () {
    let org: TestOrg;
    let tk: Toolkit;
    let session: AppSession;
    let password: string;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
      await seedDemo(tk, 30);
      await install(tk);
      session = applicationSession(target, org, tk);
      password = (await (await tk.keystore()).get('master-key-password'))!.reveal();
    });

    afterEach(async () => {
      await tk?.close();
      await org?.cleanup();
    });

    /** What an application does to store a password: the same statements before and after any key change. */
    const write = (id: string, value: string) =>
      session(async (query) => {
        await query('select cellcrypt.open_keys(?::text)', [password]);
        await query(
          `insert into ${q(TABLE)} (${q(ID)}, "Name", ${q(CELL)}) ` +
            `values (?::uuid, 'app row', cellcrypt.encrypt_text(cellcrypt.current_key_guid(), ?::text, ?::uuid))`,
          [id, value, id],
        );
      });

    /** ...and to read every stored one back, with the key GUID each cell is on. */
    const readAll = () =>
      session(async (query) => {
        await query('select cellcrypt.open_keys(?::text)', [password]);
        const rows = await query(
          `select ${q(ID)}::text as id, cellcrypt.decrypt_text(${q(CELL)}, ${q(ID)}) as value, ` +
            `substring(${q(CELL)} from 1 for 16) as guid from ${q(TABLE)} where ${q(CELL)} is not null`,
        );
        return new Map(rows.map((r) => [r.id as string, { value: r.value as string | null, guid: guidOf(r.guid) }]));
      });

    const guidOf = (bytes: Uint8Array) => guidBytesToString(Buffer.from(bytes));
    const currentGuid = () => session(async (query) => guidOf((await query(CURRENT))[0].guid));
    const CURRENT = 'select cellcrypt.current_key_guid() as guid';
    const activeKey = async () => {
      const activity = await assessActivity(tk);
      if (!activity.active) throw new Error(`inactive: ${activity.reason}`);
      return activity.access.current.keyGuid;
    };

    it('after install: current_key_guid is the key; an application writes and reads with the two names', async () => {
      expect(await currentGuid()).to.equal(await activeKey());
      const id = randomUUID();
      await write(id, "app wrote this ' ] ? 😀");
      const cells = await readAll();
      expect(cells.get(id)).to.deep.equal({ value: "app wrote this ' ] ? 😀", guid: await activeKey() });
      expect(
        [...cells.values()].every((c) => c.value !== null),
        'every cell decrypts',
      ).to.equal(true);
      expect((await verify(tk)).ok).to.equal(true);
    });

    it('keys are open only in the transaction that opened them; a wrong password is an error', async () => {
      const closed = await session((query) =>
        query(`select cellcrypt.encrypt_text(cellcrypt.current_key_guid(), 'x', ?::uuid) as cell`, [randomUUID()]),
      );
      expect(closed[0].cell, 'no key open: NULL, as ENCRYPTBYKEY').to.equal(null);
      const wrong = await session((query) => query('select cellcrypt.open_keys(?::text)', ['not the password'])).then(
        () => undefined,
        (error: unknown) => error as { code?: string; message: string },
      );
      expect(wrong?.message).to.contain('does not open the database master key');
    });

    it('after a one-transaction change-key the same code writes on the new key, reads every cell', async () => {
      const before = randomUUID();
      await write(before, 'written before the change');
      const oldKey = await activeKey();
      await changeKey(tk, { generate: true });
      const newKey = await activeKey();
      expect(newKey).not.to.equal(oldKey);
      expect(await currentGuid()).to.equal(newKey);
      const after = randomUUID();
      await write(after, 'written after the change');
      const cells = await readAll();
      expect(cells.get(before)).to.deep.equal({ value: 'written before the change', guid: newKey });
      expect(cells.get(after)).to.deep.equal({ value: 'written after the change', guid: newKey });
      expect([...cells.values()].every((c) => c.value !== null)).to.equal(true);
      expect((await verify(tk)).ok).to.equal(true);
    });

    it('mid batched change (both keys present) writes use the new key, every cell reads; then it ends', async () => {
      const before = randomUUID();
      await write(before, 'written before the change');
      const oldKey = await activeKey();
      const stopped = await changeKey(tk, {
        generate: true,
        batchSize: 5,
        afterBatch: dieAfterBatches(1, 'stopped after one batch'),
      }).catch((error: unknown) => error as Error);
      expect((stopped as Error).message).to.contain('stopped after one batch');
      const newKey = await activeKey();
      expect(newKey).not.to.equal(oldKey);
      expect(await currentGuid(), 'the new generation is current while both exist').to.equal(newKey);
      const during = randomUUID();
      await write(during, 'written mid-change');
      let cells = await readAll();
      const guids = new Set([...cells.values()].map((c) => c.guid));
      expect([...guids].sort()).to.deep.equal([oldKey, newKey].sort());
      expect(cells.get(during)).to.deep.equal({ value: 'written mid-change', guid: newKey });
      expect(
        [...cells.values()].every((c) => c.value !== null),
        'old and new cells read',
      ).to.equal(true);

      await changeKey(tk, { resume: true, batchSize: 50 });
      cells = await readAll();
      expect(new Set([...cells.values()].map((c) => c.guid))).to.deep.equal(new Set([newKey]));
      expect(cells.get(before)?.value).to.equal('written before the change');
      expect(cells.get(during)?.value).to.equal('written mid-change');
      expect((await verify(tk)).ok).to.equal(true);
    });
  });
}
