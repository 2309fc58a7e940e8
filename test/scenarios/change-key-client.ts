import { expect } from 'chai';
import { changeKey } from '../../src/core/change-key';
import { seedDemo } from '../../src/core/demo-seed';
import { install } from '../../src/core/install';
import { readStatus } from '../../src/core/status';
import type { Toolkit } from '../../src/core/toolkit';
import { verify } from '../../src/core/verify';
import { DEMO_TABLE_NAMES, decryptedValues, q, tableChecksums } from '../support/org-data';
import { rejection } from '../support/refusal';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';

/**
 * change-key's client-side path (issue 7): cells streamed through the TypeScript codec in
 * primary-key order and written back per batch, in the one transaction. Same guarantees as the
 * server-side path: every value intact under the new key, the server's census proves it
 * before commit, a cell that does not decrypt stops it and nothing changes.
 */
export function scenarios(target: TargetName): void {
  describe(`change-key --client-side on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
      await seedDemo(tk, 12_011 % 997); // 47 rows: not a multiple of anything
      await install(tk);
    });

    afterEach(async () => {
      await tk?.close();
      await org?.cleanup();
    });

    async function values() {
      const out: Record<string, Map<string, string | null>> = {};
      for (const column of tk.registry) out[`${column.table}.${column.column}`] = await decryptedValues(tk, column);
      return out;
    }

    it(
      'moves every cell to the new key with every value ' + 'intact; verify passes; the server sees only the new key',
      async () => {
        const before = await values();
        const result = await changeKey(tk, { generate: true, path: 'client' });
        expect(result.cells).to.be.greaterThan(0);
        expect(await values()).to.deep.equal(before);
        const status = await readStatus(tk);
        for (const column of status.columns) {
          expect(Object.keys(column.byKey), `${column.table}.${column.column}`).to.deep.equal([result.newKey.guid]);
          expect(column.undecryptable).to.equal(0);
        }
        expect((await verify(tk)).ok).to.equal(true);
      },
    );

    it(
      'a cell that does not decrypt (moved onto another row) stops ' +
        'it: rolled back, every table byte-identical, old key kept',
      async () => {
        const column = tk.registry.find((c) => c.table === 'MailboxBase')!;
        const { t, c, pk } = { t: q(column.table), c: q(column.column), pk: q(column.primaryKey) };
        await tk.engine.knex
          .raw(`update ${t} set ${c} = (select ${c} from ${t} where ${c} is not null order by ${pk} limit 1)
        where ${pk} = (select ${pk} from ${t} where ${c} is not null order by ${pk} desc limit 1)`);
        const before = await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES);
        const keysBefore = (await readStatus(tk)).keys.map((k) => k.guid);
        const error = await rejection(changeKey(tk, { generate: true, path: 'client' }));
        expect(error.exitCode).to.be.oneOf([1, 3]);
        expect(await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES)).to.deep.equal(before);
        expect((await readStatus(tk)).keys.map((k) => k.guid)).to.deep.equal(keysBefore);
      },
    );
  });
}
