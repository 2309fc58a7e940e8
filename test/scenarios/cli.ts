import { expect } from 'chai';
import type { Knex } from 'knex';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gitWorkTreeOf } from '../../src/cli/commands/show-key';
import { parseKeyFile } from '../../src/core/key-file';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../src/core/registry';
import { ORG_MIGRATIONS } from '../../src/core/install-run';
import { randomBytes } from 'node:crypto';
import { encryptByKey, guidStringToBytes, nvarcharBytes } from '../../src/cellcrypt';
import { q, rawCells } from '../support/org-data';
import { inProcessCli } from '../support/in-process-cli';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';
import { seedPgliteDirectory } from '../support/pglite-template';

/**
 * The CLI contract (README "Commands", docs/architecture.md), through the real yargs root
 * (in-process, output captured).
 */
export function scenarios(target: TargetName): void {
  describe(`CLI on ${target}`, function () {
    let org: TestOrg;
    const savedEnv = { ...process.env };

    beforeEach(async () => {
      org = await createTestOrg(target);
      Object.assign(process.env, org.env);
    });

    afterEach(async () => {
      for (const key of Object.keys(org.env)) {
        if (savedEnv[key] === undefined) delete process.env[key];
        else process.env[key] = savedEnv[key];
      }
      await org.cleanup();
    });

    async function withOrg<T>(work: (db: Knex) => Promise<T>): Promise<T> {
      const tk = await org.open();
      try {
        return await work(tk.engine.knex);
      } finally {
        await tk.close();
      }
    }

    it('demo seed, install, status --json (docs/architecture.md shape), verify, show-key', async () => {
      expect((await inProcessCli('demo', 'seed', '--rows', '40')).code).to.equal(0);
      const before = await inProcessCli('status', '--json');
      expect(before.code).to.equal(3); // plaintext left
      expect(before.json.columns.every((c: any) => c.state === 'plaintext' && c.plaintext > 0)).to.equal(true);

      const installed = await inProcessCli('install', '--json');
      expect(installed.code, installed.stderr).to.equal(0);

      const status = await inProcessCli('status', '--json');
      expect(status.code).to.equal(0);
      expect(status.json).to.have.keys('active', 'engine', 'keys', 'keySavedAt', 'keyAgeDays', 'columns');
      expect(status.json).to.include({ keySavedAt: null, keyAgeDays: 0 }); // installed just now, not saved yet
      const text = (await inProcessCli('status')).stdout;
      expect(text).to.contain('current key: 0 day(s) old, saved never');
      expect(text).to.contain('warning: the current key was never saved');
      expect(status.json.active).to.equal(true);
      expect(status.json.engine).to.equal(target);
      expect(status.json.keys).to.have.length(1);
      expect(status.json.keys[0]).to.have.keys('name', 'guid', 'algorithm', 'createdAt');
      expect(status.json.keys[0].guid).to.match(/^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
      expect(status.json.columns).to.have.length(5);
      for (const column of status.json.columns) {
        expect(column).to.include.keys('table', 'column', 'state', 'cells', 'byKey', 'plaintext', 'undecryptable');
        expect(column).to.include({ state: 'encrypted', plaintext: 0, undecryptable: 0 });
        // 40 rows, every 10th NULL: 36 non-null cells, all under the one key.
        expect(column.cells).to.equal(36);
        expect(column.byKey).to.deep.equal({ [status.json.keys[0].guid]: 36 });
      }

      const verified = await inProcessCli('verify');
      expect(verified.code, verified.stdout).to.equal(0);
      expect(verified.stdout).to.contain('verify: OK');

      const keyFile = join(org.dir, 'key.txt');
      expect((await inProcessCli('show-key', '--out', keyFile)).code).to.equal(0);
      expect(statSync(keyFile).mode & 0o777).to.equal(0o600);
      const parsed = parseKeyFile(readFileSync(keyFile));
      expect(parsed.checksum).to.equal('verified');
      const again = await inProcessCli('show-key', '--out', keyFile);
      expect(again.code).to.equal(2); // never overwrites a key file
      const saved = (await inProcessCli('status', '--json')).json;
      expect(saved.keySavedAt, 'show-key --out records the save').to.be.a('string');
      expect(new Date(saved.keySavedAt).toISOString()).to.equal(saved.keySavedAt);
      expect(saved.keyAgeDays).to.equal(0);
      expect((await inProcessCli('status')).stdout).not.to.contain('never saved');

      // The key never shows up in any other command's output.
      const passphrase = parsed.passphrase.reveal();
      for (const run of [installed, status, verified, await inProcessCli('install'), await inProcessCli('status')]) {
        expect(run.stdout + run.stderr + JSON.stringify(run.json ?? {})).not.to.contain(passphrase);
      }
    });

    it('verify names the rows whose cell does not decrypt (text and --json), capped per column', async () => {
      expect((await inProcessCli('demo', 'seed', '--rows', '40')).code).to.equal(0);
      expect((await inProcessCli('install')).code).to.equal(0);
      const clean = await inProcessCli('verify', '--json');
      expect(clean.code, clean.stderr).to.equal(0);
      expect(clean.json.undecryptable).to.deep.equal([]);

      // 23 bad cells in one column (more than the cap of 20) of every kind the census counts:
      // truncated, on a key nobody has, moved from another row, a flipped byte. Spread over
      // the column, so "the first 20" means primary-key order, not the damaged rows' order.
      const damaged = await withOrg(async (db) => {
        const ids = async (table: string, pk: string, column: string): Promise<string[]> =>
          (
            await db.raw(`select ${q(pk)}::text as id from ${q(table)} where ${q(column)} is not null order by 1`)
          ).rows.map((r: { id: string }) => r.id);
        const mailbox = (await ids('MailboxBase', 'MailboxId', 'Password')).filter((_, i) => i % 3 !== 1);
        const [truncated, foreign, moved, ...flipped] = mailbox.slice(0, 23);
        const good = (await ids('MailboxBase', 'MailboxId', 'Password')).filter((_, i) => i % 3 === 1)[0];
        await db.raw(
          `update "MailboxBase" set "Password" = substring("Password" from 1 for 40) where "MailboxId" = ?`,
          [truncated],
        );
        const stranger = encryptByKey({ keyGuid: randomBytes(16), key: randomBytes(32) }, nvarcharBytes('elsewhere'), {
          authenticator: guidStringToBytes(foreign),
        });
        await db.raw(`update "MailboxBase" set "Password" = ? where "MailboxId" = ?`, [stranger, foreign]);
        await db.raw(
          `update "MailboxBase" set "Password" = (select "Password" from "MailboxBase" where "MailboxId" = ?) ` +
            `where "MailboxId" = ?`,
          [good, moved],
        );
        const flip = (table: string, pk: string, column: string, rows: string[]) =>
          db.raw(
            `update ${q(table)} set ${q(column)} = set_byte(${q(column)}, length(${q(column)}) - 20, ` +
              `get_byte(${q(column)}, length(${q(column)}) - 20) # 1) where ${q(pk)} = any(?::uuid[])`,
            [rows],
          );
        await flip('MailboxBase', 'MailboxId', 'Password', flipped);
        const queue = (await ids('QueueBase', 'QueueId', 'EmailPassword')).slice(-2);
        await flip('QueueBase', 'QueueId', 'EmailPassword', queue);
        return { mailbox: [truncated, foreign, moved, ...flipped].sort(), queue };
      });
      expect(damaged.mailbox).to.have.length(23);

      const json = await inProcessCli('verify', '--json');
      expect(json.code).to.equal(3);
      expect(json.json.ok).to.equal(false);
      expect(json.json.undecryptable).to.deep.equal([
        {
          table: 'MailboxBase',
          column: 'Password',
          primaryKey: 'MailboxId',
          count: 23,
          ids: damaged.mailbox.slice(0, 20),
          omitted: 3,
        },
        {
          table: 'QueueBase',
          column: 'EmailPassword',
          primaryKey: 'QueueId',
          count: 2,
          ids: damaged.queue,
          omitted: 0,
        },
      ]);

      const text = await inProcessCli('verify');
      expect(text.code).to.equal(3);
      const lines = text.stdout.split('\n');
      // A column's list: its heading and the indented lines under it (the offline check prints
      // sampled failures with ids too, so the whole output is not what is compared).
      const listUnder = (heading: string): string[] => {
        const at = lines.indexOf(heading);
        expect(at, `${heading}\n---\n${text.stdout}`).to.be.greaterThan(-1);
        const rest = lines.slice(at + 1);
        const end = rest.findIndex((line) => !line.startsWith('  '));
        return end === -1 ? rest : rest.slice(0, end);
      };
      expect(
        listUnder(
          '23 cell(s) of MailboxBase.Password do not decrypt; restore these rows (MailboxId), e.g. from a backup:',
        ),
      ).to.deep.equal([
        ...damaged.mailbox.slice(0, 20).map((id) => `  ${id}`),
        '  ... and 3 more (only the first 20, in primary-key order, are listed)',
      ]);
      expect(
        listUnder(
          '2 cell(s) of QueueBase.EmailPassword do not decrypt; restore these rows (QueueId), e.g. from a backup:',
        ),
      ).to.deep.equal(damaged.queue.map((id) => `  ${id}`));
      expect(text.stdout).not.to.contain('of EmailServerProfileBase.');
      expect(text.stdout).not.to.contain('of UserSettingsBase.');
      expect(lines[lines.length - 1]).to.equal('verify: FAILED');
    });

    it('decrypt-offline reads a cell written by install with the key show-key saved (the recovery path)', async () => {
      expect((await inProcessCli('demo', 'seed', '--rows', '3')).code).to.equal(0);
      const mailbox = DYNAMICS_DEFAULT_COLUMNS.find((c) => c.table === 'MailboxBase')!;
      // One connection at a time: PGlite is single-process, so the test's own handle is closed
      // before the CLI opens the org again.
      const { id, value } = await withOrg(
        async (db) =>
          (
            await db.raw(
              `select "MailboxId"::text as id, "Password" as value from "MailboxBase" where "Password" <> '' limit 1`,
            )
          ).rows[0] as { id: string; value: string },
      );
      expect((await inProcessCli('install')).code).to.equal(0);
      const keyFile = join(org.dir, 'recovery-key.txt');
      expect((await inProcessCli('show-key', '--out', keyFile)).code).to.equal(0);
      const cell = await withOrg(async (db) => (await rawCells(db, mailbox)).get(id)!);
      expect(cell.toString('hex')).not.to.contain(Buffer.from(value, 'utf16le').toString('hex'));
      const hex = `0x${cell.toString('hex')}`;

      const read = await inProcessCli(
        'decrypt-offline',
        '--key-file',
        keyFile,
        '--authenticator-uuid',
        id,
        '--json',
        hex,
      );
      expect(read.code, read.stderr).to.equal(0);
      expect(read.json.results).to.have.length(1);
      expect(read.json.results[0]).to.include({
        ok: true,
        plaintext: value,
        derivation: 'sql2017',
        integrityChecked: true,
      });
      const plain = await inProcessCli('decrypt-offline', '--key-file', keyFile, '--authenticator-uuid', id, hex);
      expect(plain.stdout).to.equal(value);

      // Another row's key as authenticator: the cell is refused, exit 3 with the reason.
      const wrongRow = await inProcessCli(
        'decrypt-offline',
        '--key-file',
        keyFile,
        '--authenticator-uuid',
        '00000000-0000-0000-0000-000000000001',
        hex,
      );
      expect(wrongRow.code).to.equal(3);
      expect(wrongRow.stdout).not.to.contain(value);
    });

    it('show-key --out refuses a file in a git work tree unless --force; outside it writes (issue 16)', async () => {
      expect((await inProcessCli('demo', 'seed', '--rows', '3')).code).to.equal(0);
      expect((await inProcessCli('install')).code).to.equal(0);
      const outside = join(org.dir, 'keys', 'cellcrypt-key.txt');
      mkdirSync(dirname(outside));
      expect(gitWorkTreeOf(outside), 'the test directory itself must not be in a checkout').to.equal(undefined);

      // A checkout (.git directory), a file deeper in it, and a linked work tree (.git file).
      const checkout = join(org.dir, 'checkout');
      mkdirSync(join(checkout, '.git'), { recursive: true });
      mkdirSync(join(checkout, 'src', 'deep'), { recursive: true });
      const linked = join(org.dir, 'linked');
      mkdirSync(linked);
      writeFileSync(join(linked, '.git'), 'gitdir: /elsewhere/.git/worktrees/linked\n');
      for (const [file, tree] of [
        [join(checkout, 'cellcrypt-key.txt'), checkout],
        [join(checkout, 'src', 'deep', 'key.txt'), checkout],
        [join(linked, 'key.txt'), linked],
      ]) {
        const refused = await inProcessCli('--json', 'show-key', '--out', file);
        expect(refused.code, refused.stderr).to.equal(2);
        expect(refused.json.error.code).to.equal('CellcryptUsage');
        expect(refused.json.error.message).to.contain(file).and.to.contain(tree).and.to.contain('`git add -A`');
        expect(refused.json.error.hint).to.contain('--out ~/cellcrypt-key.txt').and.to.contain('--force');
        expect(existsSync(file), file).to.equal(false);
      }
      const text = await inProcessCli('show-key', '--out', join(checkout, 'cellcrypt-key.txt'));
      expect(text.code).to.equal(2);
      expect(text.stderr).to.contain('inside the git work tree').and.to.contain('--force');

      const forced = join(checkout, 'cellcrypt-key.txt');
      const written = await inProcessCli('show-key', '--out', forced, '--force');
      expect(written.code, written.stderr).to.equal(0);
      expect(statSync(forced).mode & 0o777).to.equal(0o600);
      expect((await inProcessCli('show-key', '--out', outside)).code).to.equal(0);
      const [a, b] = [forced, outside].map((file) => parseKeyFile(readFileSync(file)));
      expect(a.checksum).to.equal('verified');
      expect(a.passphrase.reveal()).to.equal(b.passphrase.reveal());
      // --force says nothing without a file to write.
      expect((await inProcessCli('show-key', '--force')).code).to.equal(2);
    });

    it('show-key --master-key-password --out F: a 0600 file with what opens the keys, printed nowhere', async () => {
      expect((await inProcessCli('demo', 'seed', '--rows', '20')).code).to.equal(0);
      expect((await inProcessCli('install')).code).to.equal(0);
      const file = join(org.dir, 'app-master-key-password');
      const saved = await inProcessCli('show-key', '--master-key-password', '--out', file, '--json');
      expect(saved.code, saved.stderr).to.equal(0);
      expect(saved.json).to.deep.equal({ file, secret: 'master-key-password' });
      expect(statSync(file).mode & 0o777).to.equal(0o600);
      const password = readFileSync(file, 'utf8');
      const tk = await org.open();
      try {
        expect(password).to.equal((await (await tk.keystore()).get('master-key-password'))!.reveal());
        // What an application does with it: open the keys, read every cell.
        const { cells, read } = await tk.engine.knex.transaction(async (trx) => {
          await trx.raw('select cellcrypt.open_keys(?::text)', [password]);
          const counted = await trx.raw(
            'select count("Password")::int as cells, count(cellcrypt.decrypt_text("Password", "MailboxId"))::int ' +
              'as read from "MailboxBase"',
          );
          return counted.rows[0] as { cells: number; read: number };
        });
        expect(cells).to.be.greaterThan(0);
        expect(read).to.equal(cells);
      } finally {
        await tk.close();
      }
      expect(`${saved.stdout}\n${saved.stderr}`).to.not.include(password);
      // Never over an existing file, never to the terminal.
      const again = await inProcessCli('show-key', '--master-key-password', '--out', file);
      expect(again.code).to.equal(2);
      expect(again.stderr).to.contain('already exists');
      expect(readFileSync(file, 'utf8')).to.equal(password);
      const printed = await inProcessCli('show-key', '--master-key-password');
      expect(printed.code).to.equal(2);
      expect(printed.stderr).to.contain('name it with --out F');
      expect(`${printed.stdout}\n${printed.stderr}\n${again.stdout}\n${again.stderr}`).to.not.include(password);
    });

    it('migrate status names pending and done migrations; unlock says whether there was a lock', async () => {
      expect((await inProcessCli('demo', 'seed', '--rows', '3')).code).to.equal(0);
      const names = ORG_MIGRATIONS.names();
      expect(names).to.have.length.greaterThan(3);
      const pending = await inProcessCli('migrate', 'status', '--json');
      expect(pending.json, pending.stderr).to.deep.equal({ completed: [], pending: names });
      expect((await inProcessCli('install')).code).to.equal(0);
      expect((await inProcessCli('migrate', 'status', '--json')).json).to.deep.equal({ completed: names, pending: [] });
      const none = await inProcessCli('migrate', 'unlock', '--json');
      expect(none.code, none.stderr).to.equal(0);
      expect(none.json).to.deep.equal({ wasLocked: false, unlocked: false });
      // What a SIGKILL in the middle of a migration leaves behind.
      const tk = await org.open();
      try {
        await tk.engine.knex.raw('update cellcrypt_migrations_lock set is_locked = 1');
      } finally {
        await tk.close();
      }
      const stuck = await inProcessCli('migrate', 'unlock');
      expect(stuck.code, stuck.stderr).to.equal(0);
      expect(stuck.stdout).to.match(/^released the migration lock/);
      expect(stuck.stdout).to.not.match(/[{}]/);
      expect((await inProcessCli('migrate', 'unlock', '--json')).json).to.deep.equal({
        wasLocked: false,
        unlocked: false,
      });
    });

    it('bad usage exits 2 and changes nothing', async () => {
      expect((await inProcessCli('no-such-command')).code).to.equal(2);
      expect((await inProcessCli('demo', 'seed', '--rows', '-4')).code).to.equal(2);
      const badUrl = await inProcessCli('--database-url', 'mysql://u:pw@h/db', 'status', '--json');
      expect(badUrl.code).to.equal(2);
      expect(badUrl.json.error.code).to.equal('CellcryptConfigInvalid');
    });

    it('status without its key store: inactive, names activate, cells unchecked, not undecryptable', async () => {
      await inProcessCli('demo', 'seed', '--rows', '10');
      expect((await inProcessCli('install')).code).to.equal(0);
      // Lose the key store: point the org at an empty one.
      await seedPgliteDirectory(`${org.dir}/other-config`);
      const otherConfig = `pglite:${org.dir}/other-config`;
      const status = await inProcessCli('--config-url', otherConfig, 'status', '--json');
      // Issue 15: every cell showed as "undecryptable", exactly like real damage.
      expect(status.code).to.equal(4);
      for (const column of status.json.columns) {
        expect(column.undecryptable, column.column).to.equal(0);
        expect(column.unchecked, column.column).to.equal(column.cells);
      }
      const text = await inProcessCli('--config-url', otherConfig, 'verify');
      expect(text.code).to.equal(4);
      expect(text.stdout).to.contain('verify: NOT CHECKED (no usable key)');
      expect(status.json.active).to.equal(false);
      expect(status.json.reason).to.match(/^inactive: encrypted cells exist, no usable key/);
      expect(status.json.hint).to.contain('cellcrypt activate --key-file');
      const reinstall = await inProcessCli('--config-url', otherConfig, 'install', '--json');
      expect(reinstall.code).to.equal(2);
      expect(reinstall.json.error.code).to.equal('SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB');
    });
  });
}
