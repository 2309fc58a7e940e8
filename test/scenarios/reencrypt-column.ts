import { expect } from 'chai';
import type { Knex } from 'knex';
import { install } from '../../src/core/install';
import { assessActivity, type KeyAccess } from '../../src/core/key-access';
import { CERTIFICATE_NAME, keyName } from '../../src/common/key-names';
import { identityValueFor, keyGuidFor } from '../../src/cellcrypt/key-identity';
import { keyTransaction } from '../../src/core/key-transaction';
import { generatePassphrase } from '../../src/core/passphrase';
import { seedDemo } from '../../src/core/demo-seed';
import type { Toolkit } from '../../src/core/toolkit';
import type { ColumnOps } from '../../src/engines/engine';
import { postgresColumns } from '../../src/engines/postgres/columns';
import { decryptedValues, q, rawCells } from '../support/org-data';
import { rejection } from '../support/refusal';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';

/**
 * The one-transaction move of the PostgreSQL engines (columns.reencryptColumn) on its own, with
 * one page per statement so that a small table crosses many chunks: every cell moves exactly
 * once, the values stay, damaged cells stay damaged, and a key that is not open raises instead
 * of writing NULL cells. change-key.test.ts covers the whole command around it.
 */
export function scenarios(target: TargetName): void {
  describe(`reencryptColumn on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit;
    let access: KeyAccess;
    const onePagePerChunk: ColumnOps = postgresColumns({ chunkPages: 1 });

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
      await seedDemo(tk, 400);
      await install(tk);
      const activity = await assessActivity(tk);
      if (!activity.active) throw new Error(activity.reason);
      access = activity.access;
    });

    afterEach(async () => {
      await tk?.close();
      await org?.cleanup();
    });

    const mailbox = () => tk.registry.find((c) => c.table === 'MailboxBase')!;

    /** A new key generation inside `trx`, both keys open; returns its GUID. */
    async function withBothKeys(trx: Knex.Transaction, options: { openNew: boolean }): Promise<string> {
      const passphrase = generatePassphrase();
      await tk.engine.keys.openMasterKey(trx, access.masterPassword);
      await tk.engine.keys.openSymmetricKey(trx, access.current.name, CERTIFICATE_NAME);
      const name = keyName(2);
      await tk.engine.keys.createSymmetricKey(trx, {
        name,
        certificate: CERTIFICATE_NAME,
        keySource: passphrase,
        identityValue: identityValueFor(passphrase),
      });
      if (options.openNew) await tk.engine.keys.openSymmetricKey(trx, name, CERTIFICATE_NAME);
      return keyGuidFor(passphrase);
    }

    it('moves every cell once across many one-page chunks, values intact, progress per chunk', async () => {
      const column = mailbox();
      const before = await decryptedValues(tk, column);
      const pages = Number(
        (
          await tk.engine.knex.raw(`select pg_relation_size(?::regclass) / current_setting('block_size')::int as n`, [
            q(column.table),
          ])
        ).rows[0].n,
      );
      expect(pages, 'the table must span several pages for this test to mean anything').to.be.greaterThan(3);
      const ticks: number[] = [];
      await keyTransaction(tk.engine, async (trx) => {
        const newGuid = await withBothKeys(trx, { openNew: true });
        await onePagePerChunk.lockTable(trx, column);
        const { moved, undecryptable } = await onePagePerChunk.reencryptColumn(
          trx,
          column,
          access.current.keyGuid,
          newGuid,
          (n) => ticks.push(n),
        );
        expect(undecryptable, 'PostgreSQL leaves the decrypt check to the proof').to.equal(0);
        const census = await onePagePerChunk.census(trx, column, { decrypt: true });
        expect(moved).to.equal(census.cells);
        expect(census.byKey).to.deep.equal({ [newGuid]: census.cells });
        expect(census.undecryptable).to.equal(0);
        // The census inside the transaction is the proof; rolled back so the values below are the old key's.
        throw new Error('roll back');
      }).catch((error) => {
        if (!/roll back/.test(String(error))) throw error;
      });
      expect(ticks).to.have.length(pages);
      expect(ticks.filter((n) => n > 0).length).to.be.greaterThan(1);
      expect(ticks.reduce((a, b) => a + b, 0)).to.equal([...before.values()].filter((v) => v !== null).length);
      expect(await decryptedValues(tk, column)).to.deep.equal(before);
    });

    it(
      'keeps the plaintext block byte for byte (same length, ' + 'new GUID and IV), so a damaged cell stays damaged',
      async () => {
        const column = mailbox();
        const cells = await rawCells(tk.engine.knex, column);
        const [damagedId, damaged] = [...cells].find(([, cell]) => cell !== null)!;
        const flipped = Buffer.from(damaged!);
        flipped[flipped.length - 20] ^= 0x01;
        await tk.engine.knex.raw(
          `update ${q(column.table)} set ${q(column.column)} = ? where ${q(column.primaryKey)} = ?`,
          [flipped, damagedId],
        );
        await keyTransaction(tk.engine, async (trx) => {
          const newGuid = await withBothKeys(trx, { openNew: true });
          await onePagePerChunk.lockTable(trx, column);
          await onePagePerChunk.reencryptColumn(trx, column, access.current.keyGuid, newGuid, () => undefined);
          const after = await rawCells(trx, column);
          for (const [id, cell] of cells) {
            const moved = after.get(id)!;
            if (cell === null) {
              expect(moved).to.equal(null);
              continue;
            }
            expect(moved.length, id).to.equal(cell.length);
            expect(moved.subarray(16, 20).toString('hex')).to.equal(cell.subarray(16, 20).toString('hex'));
            expect(moved.subarray(20, 36).equals(cell.subarray(20, 36)), `${id}: a fresh IV`).to.equal(false);
          }
          const census = await onePagePerChunk.census(trx, column, { decrypt: true });
          expect(census.byKey).to.deep.equal({ [newGuid]: census.cells });
          expect(census.undecryptable, 'the flipped cell is still undecryptable').to.equal(1);
          throw new Error('roll back');
        }).catch((error) => {
          if (!/roll back/.test(String(error))) throw error;
        });
      },
    );

    it('raises (no NULL cell) when the new key is not open, and the rollback leaves every cell as it was', async () => {
      const column = mailbox();
      const before = await rawCells(tk.engine.knex, column);
      const error = await rejection(
        keyTransaction(tk.engine, async (trx) => {
          const newGuid = await withBothKeys(trx, { openNew: false });
          await onePagePerChunk.reencryptColumn(trx, column, access.current.keyGuid, newGuid, () => undefined);
        }),
      );
      expect(error.code).to.equal('SqlEncryptionSymmetricKeyDoesNotExist');
      expect(error.message).to.match(/is not open/);
      expect(await rawCells(tk.engine.knex, column)).to.deep.equal(before);
    });
  });
}
