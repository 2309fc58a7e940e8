import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { encryptByKey, guidStringToBytes, nvarcharBytes } from '../../src/cellcrypt';
import { changeKey } from '../../src/core/change-key';
import { install } from '../../src/core/install';
import { seedDemo } from '../../src/core/demo-seed';
import { readStatus, needsAttention } from '../../src/core/status';
import type { Toolkit } from '../../src/core/toolkit';
import { verify } from '../../src/core/verify';
import { DEMO_TABLE_NAMES, dropDemoViews, tableChecksums } from '../support/org-data';
import { rejection } from '../support/refusal';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';

/** Damaged and hostile data: every case is named, gets its exit code, and changes nothing. */
export function scenarios(target: TargetName): void {
  describe(`hostile data on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
    });

    afterEach(async () => {
      await tk.close();
      await org.cleanup();
    });

    const checksums = () => tableChecksums(tk.engine.knex, [...DEMO_TABLE_NAMES]);

    it('a primary key that is not a uuid is refused (exit 2) before anything changes', async () => {
      await seedDemo(tk, 5);
      await dropDemoViews(tk.engine.knex, 'QueueBase');
      await tk.engine.knex.raw(`alter table "QueueBase" alter column "QueueId" type text using "QueueId"::text`);
      const before = await checksums();
      const error = await rejection(install(tk));
      expect(error.exitCode).to.equal(2);
      expect(error.message).to.contain('QueueBase');
      expect(await checksums()).to.deep.equal(before);
      expect(await tk.organizationId(), 'not even the toolkit tables were created').to.equal(undefined);
    });

    it(
      'truncated, flipped, moved and foreign-key cells: status and ' +
        'verify exit 3 naming them, change-key refuses, nothing changes',
      async () => {
        await seedDemo(tk, 10);
        await install(tk);
        const ids: string[] = (
          await tk.engine.knex.raw(
            `select "MailboxId"::text as id from "MailboxBase" where "Password" is not null order by 1 limit 5`,
          )
        ).rows.map((r: { id: string }) => r.id);
        const db = tk.engine.knex;
        await db.raw(
          `update "MailboxBase" set "Password" = substring("Password" from 1 for 40) where "MailboxId" = ?`,
          [ids[0]],
        );
        await db.raw(
          `update "MailboxBase" set "Password" = set_byte("Password", ` +
            `60, get_byte("Password", 60) # 1) where "MailboxId" = ?`,
          [ids[1]],
        );
        await db.raw(
          `update "MailboxBase" set "Password" = (select "Password" from ` +
            `"MailboxBase" where "MailboxId" = ?) where "MailboxId" = ?`,
          [ids[3], ids[2]],
        );
        // A cell written under a key generation nobody has (a valid blob, unknown key GUID).
        const stranger = encryptByKey(
          { keyGuid: randomBytes(16), key: randomBytes(32) },
          nvarcharBytes('from elsewhere'),
          { authenticator: guidStringToBytes(ids[4]) },
        );
        await db.raw(`update "MailboxBase" set "Password" = ? where "MailboxId" = ?`, [stranger, ids[4]]);
        const before = await checksums();

        const status = await readStatus(tk);
        const mailbox = status.columns.find((c) => c.table === 'MailboxBase')!;
        expect(mailbox.undecryptable).to.equal(4);
        expect(Object.keys(mailbox.byKey)).to.have.length(2); // the unknown GUID is counted apart
        expect(needsAttention(status)).to.equal(true);
        const verified = await verify(tk);
        expect(verified.ok).to.equal(false);

        const refused = await rejection(changeKey(tk, { generate: true }));
        expect(refused.code).to.equal('CellcryptCellsNotDecryptable');
        expect(refused.exitCode).to.equal(3);
        expect(refused.message).to.contain('MailboxBase.Password has 4 cell(s) that do not decrypt');
        expect(await checksums()).to.deep.equal(before);
        expect(await (await tk.keystore()).get('passphrase.pending')).to.equal(undefined);
        // A dry run makes the same refusal (issue 16: it printed a full plan and exited 0) and
        // records nothing; the real run's rolled-back refusal left the one audit row.
        const dry = await rejection(changeKey(tk, { generate: true, dryRun: true }));
        expect([dry.code, dry.exitCode]).to.deep.equal(['CellcryptCellsNotDecryptable', 3]);
        const audit = await db.raw(`select outcome, detail from cellcrypt.audit where operation = 'change-key'`);
        expect(audit.rows.map((row: { outcome: string }) => row.outcome)).to.deep.equal(['refused']);
        expect(audit.rows[0].detail).to.match(/^rolled back, every cell as it was: CellcryptCellsNotDecryptable/);
        expect(await checksums()).to.deep.equal(before);
      },
    );

    it(
      'a registered column that is already binary and holds garbage, ' +
        'with no key: install refuses (exit 2) and changes nothing',
      async () => {
        await seedDemo(tk, 4);
        await dropDemoViews(tk.engine.knex, 'QueueBase');
        await tk.engine.knex
          .raw(
            `alter table "QueueBase" alter column "EmailPassword" type bytea using ` +
              `case when "EmailPassword" is null then null else gen_random_bytes(30) end`,
          )
          .catch(async () => {
            await tk.engine.knex.raw(
              `alter table "QueueBase" alter column "EmailPassword" type ` +
                `bytea using convert_to(coalesce("EmailPassword", ''), 'UTF8')`,
            );
          });
        const before = await checksums();
        const error = await rejection(install(tk));
        expect(error.code).to.equal('SqlEncryptionSymmetricKeyDoesNotExist');
        expect(error.exitCode).to.equal(2);
        expect(error.message).to.contain('QueueBase.EmailPassword');
        expect(error.hint).to.contain('activate');
        expect(await checksums()).to.deep.equal(before);
        expect(await tk.organizationId()).to.equal(undefined);
      },
    );
  });
}
