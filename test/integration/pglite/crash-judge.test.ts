import { expect } from 'chai';
import { checkOrg, recordOriginals } from '../../../scripts/crash/org-check';
import { seedDemo } from '../../../src/core/demo-seed';
import { install } from '../../../src/core/install';
import type { Toolkit } from '../../../src/core/toolkit';
import { createTestOrg, type TestOrg } from '../../support/targets';

/** The crash harness's judge must be able to fail: it is shown damage it has to find. */
describe('crash harness judge', function () {
  let org: TestOrg;
  let tk: Toolkit;

  beforeEach(async () => {
    org = await createTestOrg('pglite');
    tk = await org.open();
    await seedDemo(tk, 20);
  });

  afterEach(async () => {
    await tk.close();
    await org.cleanup();
  });

  it('passes an intact org, and counts a NULLed cell, a cell moved to another row and a missing key', async () => {
    const originals = await recordOriginals(tk);
    await install(tk);
    const passphrase = (await (await tk.keystore()).get('passphrase'))!;
    const clean = await checkOrg(tk, originals, [passphrase]);
    expect(clean).to.include({ cells: 5 * 18, lost: 0, corrupted: 0, ambiguous: 0, plaintextLeft: 0 });

    const ids = (
      await tk.engine.knex.raw(
        `select "MailboxId" as id from "MailboxBase" where "Password" is not null order by 1 limit 3`,
      )
    ).rows.map((r: { id: string }) => r.id);
    await tk.engine.knex.raw(`update "MailboxBase" set "Password" = null where "MailboxId" = ?`, [ids[0]]);
    await tk.engine.knex.raw(
      `update "MailboxBase" set "Password" = (select "Password" from ` +
        `"MailboxBase" where "MailboxId" = ?) where "MailboxId" = ?`,
      [ids[1], ids[2]],
    );
    const damaged = await checkOrg(tk, originals, [passphrase]);
    expect(damaged.lost).to.equal(2); // the NULL, and the moved cell (its authenticator is the other row)
    expect((await checkOrg(tk, originals, [])).lost).to.equal(5 * 18);
  });
});
