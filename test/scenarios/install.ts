import { expect } from 'chai';
import { decryptByKey, deriveKey, guidStringToBytes, keyGuidFromIdentity, nvarcharText } from '../../src/cellcrypt';
import { convertColumns } from '../../src/core/convert';
import { install } from '../../src/core/install';
import { identityValueFor } from '../../src/cellcrypt/key-identity';
import { MIGRATIONS_CONFIG, ORG_MIGRATIONS, runMigrationsWith } from '../../src/core/install-run';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../src/core/registry';
import { seedDemo } from '../../src/core/demo-seed';
import { needsAttention, readStatus } from '../../src/core/status';
import { verify } from '../../src/core/verify';
import type { Toolkit } from '../../src/core/toolkit';
import { rejection } from '../support/refusal';
import { DEMO_TABLES } from '../../src/engines/demo-tables';
import { entityViewName } from '../../src/engines/postgres/demo';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';
import { isUntouchedCopy } from '../support/pglite-template';
import {
  DEMO_TABLE_NAMES,
  TRICKY_VALUES,
  decryptedValues,
  insertRows,
  q,
  rawCells,
  tableChecksums,
} from '../support/org-data';
import { dieAfterBatches, installKeysOnly } from '../support/interrupted-runs';

const [profileIncoming, , mailbox] = DYNAMICS_DEFAULT_COLUMNS;

export function scenarios(target: TargetName): void {
  describe(`install on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
    });

    afterEach(async () => {
      await tk?.close();
      await org?.cleanup();
    });

    it('new org (empty tables): every registered column becomes encrypted binary, one AES_256 key', async () => {
      await seedDemo(tk, 0);
      await install(tk);
      const status = await readStatus(tk);
      expect(status.active).to.equal(true);
      expect(status.keys).to.have.length(1);
      expect(status.keys[0].algorithm).to.equal('AES_256');
      expect(status.columns.map((c) => c.state)).to.deep.equal([
        'encrypted',
        'encrypted',
        'encrypted',
        'encrypted',
        'encrypted',
      ]);
      const types = await tk.engine.knex.raw(
        `select data_type from information_schema.columns where ` +
          `table_name = 'MailboxBase' and column_name = 'Password'`,
      );
      expect(types.rows[0].data_type).to.equal('bytea');
    });

    it(
      'upgraded org: every plaintext value (NULL, empty, max length, ' +
        'non-BMP, quotes) round-trips with its row authenticator',
      async () => {
        await seedDemo(tk, 0);
        const expected = await insertRows(
          tk.engine.knex,
          profileIncoming,
          TRICKY_VALUES.map((v) => (v === 'x'.repeat(200) ? 'y'.repeat(250) : v)),
        );
        const mailboxExpected = await insertRows(tk.engine.knex, mailbox, TRICKY_VALUES);
        await install(tk);
        expect(await decryptedValues(tk, profileIncoming)).to.deep.equal(expected);
        expect(await decryptedValues(tk, mailbox)).to.deep.equal(mailboxExpected);
        const status = await readStatus(tk);
        const nonNull = TRICKY_VALUES.filter((v) => v !== null).length;
        expect(status.columns[0]).to.include({ state: 'encrypted', cells: nonNull, plaintext: 0, undecryptable: 0 });
        expect(Object.values(status.columns[0].byKey)).to.deep.equal([nonNull]);
        expect(needsAttention(status)).to.equal(false);
      },
    );

    it(
      'cells are readable offline from the key-store passphrase ' + 'alone (TypeScript codec, SQL Server derivation)',
      async () => {
        await seedDemo(tk, 0);
        const expected = await insertRows(tk.engine.knex, mailbox, TRICKY_VALUES);
        await install(tk);
        const passphrase = (await (await tk.keystore()).get('passphrase'))!;
        const key = {
          keyGuid: keyGuidFromIdentity(identityValueFor(passphrase).reveal()),
          key: deriveKey(passphrase.reveal(), 'sql2017'),
        };
        for (const [id, cell] of await rawCells(tk.engine.knex, mailbox)) {
          const plaintext = cell === null ? null : decryptByKey(cell, key, guidStringToBytes(id));
          expect(plaintext === null ? null : nvarcharText(plaintext)).to.equal(expected.get(id));
        }
        expect((await verify(tk)).ok).to.equal(true);
      },
    );

    it('one install prepares the engine once and plans the conversion once (regression: three of each)', async () => {
      await seedDemo(tk, 5);
      const counts = { prepare: 0, plannedColumns: 0 };
      const engine = tk.engine as { prepare: () => Promise<void> };
      const prepare = engine.prepare.bind(engine);
      engine.prepare = () => (counts.prepare++, prepare());
      const columns = tk.engine.columns as { findTooLong: typeof tk.engine.columns.findTooLong };
      const findTooLong = columns.findTooLong.bind(columns);
      // Planning measures every plaintext column once for values too long for its cell (outside any
      // transaction: the final transaction of each column counts again under its table lock).
      columns.findTooLong = (db, ...args) => {
        if (db === tk.engine.knex) counts.plannedColumns++;
        return findTooLong(db, ...args);
      };
      const result = await install(tk);
      // Every migration, one of them per release that adds engine functions (the last: rewrap's).
      expect(result.migrations).to.have.length(ORG_MIGRATIONS.names().length);
      expect(result.conversions).to.have.length(tk.registry.length);
      expect(counts).to.deep.equal({ prepare: 1, plannedColumns: tk.registry.length });
    });

    it(
      'a Dynamics-shaped org (entity and Filtered views over all four Base tables) installs: every view ' +
        'returns the encrypted cells, keeps its grants and comment, and verify passes',
      async () => {
        await seedDemo(tk, 20);
        const db = tk.engine.knex;
        const views = DEMO_TABLES.flatMap((spec) => [entityViewName(spec), `Filtered${entityViewName(spec)}`]);
        const present = await db.raw(
          `select count(*)::int as n from pg_views where schemaname = current_schema() and viewname = any(?)`,
          [views],
        );
        expect(present.rows[0].n, 'the demo has the views of a real org').to.equal(8);
        const result = await install(tk);
        expect(result.conversions).to.have.length(tk.registry.length);
        for (const column of tk.registry) {
          const entity = entityViewName(DEMO_TABLES.find((t) => t.table === column.table)!);
          for (const view of [entity, `Filtered${entity}`]) {
            const through = await db.raw(
              `select count(*)::int as n from ${q(view)} as v join ${q(column.table)} as b ` +
                `using (${q(column.primaryKey)}) ` +
                `where v.${q(column.column)} is not distinct from b.${q(column.column)}`,
            );
            const all = await db.raw(`select count(*)::int as n from ${q(column.table)}`);
            expect(through.rows[0].n, `${view}.${column.column}`).to.equal(all.rows[0].n);
            const type = await db.raw(
              `select data_type from information_schema.columns where table_name = ? and column_name = ?`,
              [view, column.column],
            );
            expect(type.rows[0].data_type, `${view}.${column.column}`).to.equal('bytea');
          }
          const grants = await db.raw(
            `select grantee, privilege_type from information_schema.role_table_grants where table_name = ?`,
            [`Filtered${entity}`],
          );
          expect(grants.rows, `Filtered${entity}`).to.deep.include({ grantee: 'PUBLIC', privilege_type: 'SELECT' });
          const comment = await db.raw(`select obj_description(to_regclass(?), 'pg_class') as c`, [
            q(`Filtered${entity}`),
          ]);
          expect(comment.rows[0].c).to.equal(`Filtered view of ${entity} (cellcrypt demo)`);
        }
        expect((await verify(tk)).ok).to.equal(true);
        expect((await install(tk)).conversions, 'a second install changes nothing').to.deep.equal([]);
      },
    );

    it('a materialized view over a registered column is refused before anything changes (exit 2)', async () => {
      await seedDemo(tk, 5);
      await tk.engine.knex.raw('create materialized view "MailboxPasswords" as select "Password" from "MailboxBase"');
      const before = await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES);
      const error = await rejection(install(tk));
      expect(error.exitCode).to.equal(2);
      expect(error.message).to.match(/MailboxBase\.Password is used by materialized view .*"MailboxPasswords"/);
      expect(await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES)).to.deep.equal(before);
    });

    it('a second install changes nothing', async () => {
      await seedDemo(tk, 30);
      await install(tk);
      const keystore = await tk.keystore();
      const before = {
        tables: await tableChecksums(tk.engine.knex, [...DEMO_TABLE_NAMES, 'cellcrypt_migrations']),
        passphrase: (await keystore.get('passphrase'))!.reveal(),
      };
      const again = await install(tk);
      expect(again.migrations).to.deep.equal([]);
      expect(again.conversions).to.deep.equal([]);
      const after = {
        tables: await tableChecksums(tk.engine.knex, [...DEMO_TABLE_NAMES, 'cellcrypt_migrations']),
        passphrase: (await keystore.get('passphrase'))!.reveal(),
      };
      expect(after).to.deep.equal(before);
    });

    it('an interrupted conversion resumes where it stopped and loses nothing', async () => {
      await seedDemo(tk, 0);
      const expected = await insertRows(
        tk.engine.knex,
        mailbox,
        Array.from({ length: 40 }, (_, i) => (i % 5 === 0 ? null : `secret-${i}-😀`)),
      );
      // Install the keys but interrupt the conversion after its first batch.
      await installKeysOnly(tk);
      const crash = await convertColumns(tk, {
        batchSize: 7,
        afterBatch: dieAfterBatches(2),
      }).catch((e) => e);
      expect(crash).to.be.instanceOf(Error).with.property('message', 'simulated crash');
      const midway = await readStatus(tk);
      const mailboxState = midway.columns.find((c) => c.table === 'MailboxBase')!;
      expect(mailboxState.state).to.equal('converting');
      expect(mailboxState.cells).to.equal(14);
      await install(tk);
      expect(await decryptedValues(tk, mailbox)).to.deep.equal(expected);
      const done = await readStatus(tk);
      expect(done.columns.every((c) => c.state === 'encrypted' && c.plaintext === 0 && c.undecryptable === 0)).to.equal(
        true,
      );
    });

    it(
      'rows written between batches, behind the batch cursor ' +
        'or already encrypted, are caught by the final reconcile',
      async () => {
        await seedDemo(tk, 0);
        const expected = await insertRows(
          tk.engine.knex,
          mailbox,
          Array.from({ length: 30 }, (_, i) => `secret-${i}`),
        );
        await tk.engine.prepare();
        await runMigrationsWith(tk, () => tk.engine.knex.migrate.up({ ...MIGRATIONS_CONFIG }));
        await runMigrationsWith(tk, () => tk.engine.knex.migrate.up({ ...MIGRATIONS_CONFIG }));
        const [firstId] = [...expected.keys()].sort();
        const lowest = '00000000-0000-4000-8000-000000000000';
        let batches = 0;
        await convertColumns(tk, {
          batchSize: 5,
          afterBatch: async (column) => {
            if (column.table !== 'MailboxBase' || ++batches !== 2) return;
            // What an application may do while the conversion runs: a new row that sorts before
            // every batch still to come, and a new value for a row already encrypted.
            await tk.engine.knex
              .table('MailboxBase')
              .insert({ MailboxId: lowest, Name: 'late row', Password: 'late secret' });
            await tk.engine.knex
              .table('MailboxBase')
              .where('MailboxId', firstId)
              .update({ Password: 'changed after its batch' });
          },
        });
        expect(batches).to.be.greaterThan(2);
        expected.set(lowest, 'late secret');
        expected.set(firstId, 'changed after its batch');
        expect(await decryptedValues(tk, mailbox)).to.deep.equal(expected);
      },
    );

    it('an install killed while knex held its migration lock does not block the next install', async () => {
      await seedDemo(tk, 5);
      await tk.engine.prepare();
      await runMigrationsWith(tk, () => tk.engine.knex.migrate.up({ ...MIGRATIONS_CONFIG }));
      // What a SIGKILL in the middle of a migration leaves behind.
      await tk.engine.knex.raw('update cellcrypt_migrations_lock set is_locked = 1');
      const result = await install(tk);
      // All but the first, which `migrate.up` applied before the kill.
      expect(result.migrations).to.have.length(ORG_MIGRATIONS.names().length - 1);
      expect((await readStatus(tk)).columns.every((c) => c.state === 'encrypted' && c.plaintext === 0)).to.equal(true);
    });

    it('down migrations refuse: encryption cannot be turned off', async () => {
      await seedDemo(tk, 5);
      await install(tk);
      const before = await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES);
      const error = await rejection(tk.engine.knex.migrate.down(MIGRATIONS_CONFIG));
      expect(error.code).to.equal('CellcryptEncryptionCannotBeDisabled');
      expect(await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES)).to.deep.equal(before);
      expect((await tk.engine.knex.migrate.list(MIGRATIONS_CONFIG))[1]).to.have.length(0);
    });

    it('a cell copied to another row does not decrypt (the primary key authenticates it)', async () => {
      await seedDemo(tk, 0);
      const [first, second] = [
        ...(await insertRows(tk.engine.knex, mailbox, ['first-secret', 'second-secret'])).keys(),
      ];
      await install(tk);
      await tk.engine.knex.raw(
        `update "MailboxBase" set "Password" = (select "Password" from ` +
          `"MailboxBase" where "MailboxId" = ?) where "MailboxId" = ?`,
        [first, second],
      );
      const values = await decryptedValues(tk, mailbox);
      expect(values.get(first)).to.equal('first-secret');
      expect(values.get(second)).to.equal('<undecryptable>');
      const status = await readStatus(tk);
      expect(status.columns.find((c) => c.table === 'MailboxBase')!.undecryptable).to.equal(1);
      expect(needsAttention(status)).to.equal(true);
      expect((await verify(tk)).ok).to.equal(false);
    });

    it('a value too long for its cell is refused before anything changes (exit 2)', async () => {
      await seedDemo(tk, 3);
      // 200 characters outside the BMP are 400 UTF-16 units: too long for nvarchar(200).
      await insertRows(tk.engine.knex, mailbox, ['😀'.repeat(200)]);
      const before = await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES);
      const error = await rejection(install(tk));
      expect(error.code).to.equal('CellcryptValueTooLong');
      expect(error.exitCode).to.equal(2);
      expect(error.message).to.match(/MailboxBase\.Password: 1 value/);
      expect(await tableChecksums(tk.engine.knex, DEMO_TABLE_NAMES)).to.deep.equal(before);
      const schema = await tk.engine.knex.raw(
        `select to_regclass('cellcrypt.symmetric_keys') is null as absent, ` +
          `to_regclass('cellcrypt_migrations') is null as no_migrations`,
      );
      expect(schema.rows[0]).to.deep.equal({ absent: true, no_migrations: true });
      // The key store was never opened: its database is still the empty cluster it was made as.
      if (target === 'pglite') expect(await isUntouchedCopy(`${org.dir}/config`)).to.equal(true);
    });

    it(
      'finds every value whose UTF-16 form is over the limit, at the ' +
        'boundary, whatever its mix of ASCII, 2-, 3- and 4-byte characters',
      async () => {
        await seedDemo(tk, 0);
        // A 10-byte limit: 5 UTF-16 units. UTF-8 sizes differ (1, 2, 3, 4 bytes per character), which
        // is what the cheap "2 * octet_length" pre-filter must never get wrong.
        const values: Array<[string, boolean]> = [
          ['abcde', false],
          ['abcdef', true],
          ['ééééé', false],
          ['éééééé', true],
          ['€€€€€', false],
          ['€€€€€€', true],
          ['😀😀a', false],
          ['😀😀ab', true],
          ['😀a😀', false],
          ['', false],
        ];
        const ids = await insertRows(
          tk.engine.knex,
          mailbox,
          values.map(([v]) => v),
        );
        const idOf = new Map([...ids].map(([id, v]) => [v, id]));
        const found = await tk.engine.columns.findTooLong(tk.engine.knex, mailbox, 10);
        const expected = values
          .filter(([, tooLong]) => tooLong)
          .map(([v]) => idOf.get(v)!)
          .sort();
        expect(found.count).to.equal(expected.length);
        expect([...found.examples].sort()).to.deep.equal(expected);
        expect(await tk.engine.columns.findTooLong(tk.engine.knex, mailbox, 12)).to.deep.equal({
          count: 0,
          examples: [],
        });
      },
    );

    it('a registered table that does not exist is refused before anything changes (exit 2)', async () => {
      await seedDemo(tk, 2);
      await tk.engine.knex.raw(`drop table ${q('QueueBase')} cascade`); // with its entity and Filtered views
      const error = await rejection(install(tk));
      expect(error.code).to.equal('CellcryptRegistryInvalid');
      expect(error.exitCode).to.equal(2);
      expect(error.message).to.contain('QueueBase.EmailPassword: table QueueBase does not exist');
    });
  });
}
