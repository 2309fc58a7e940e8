import { expect } from 'chai';
import knex from 'knex';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Secret } from '../../src/common/secret';
import { loadSettings } from '../../src/config/settings';
import { openToolkit } from '../../src/open-toolkit';
import { formatKeyFile, parseKeyFile } from '../../src/core/key-file';
import { keyGuidFor } from '../../src/cellcrypt/key-identity';
import { checkPostgresPermission } from '../../src/engines/postgres/permissions';
import { inProcessCli, type CliRun } from '../support/in-process-cli';
import { DEMO_TABLE_NAMES, q, tableChecksums } from '../support/org-data';
import { adminQuery, createThrowAwayDatabase, pgServerUrl } from '../support/pg-server';
import { createTestOrg, targetNames, type TestOrg } from '../support/targets';
import { seedPgliteDirectory } from '../support/pglite-template';

/**
 * Issue 4, the activate / show-key half, through the real CLI (in-process, output captured):
 * a new user's key lifecycle, key files in every encoding, awkward passphrases, secrets that
 * must never leak, and (on a PostgreSQL server) the three key permissions.
 *
 * PGlite is single-process: the test never keeps the org or the key store open while a
 * command runs (every direct look is open, read, close).
 */

/**
 * Passphrases an administrator might type. Each meets the Dynamics rule (10-100 UTF-16 units,
 * a numeral, a letter, a symbol) and each aims at one way a key gets mangled on its way to the
 * database and back: SQL and knex placeholders, surrogate pairs, normalization, bidi text, and
 * the length limits counted in UTF-16 units rather than code points.
 */
const AWKWARD_KEYS: Record<string, string> = {
  'SQL and placeholder syntax': `O'Brien"]; drop table x; -- ?? ? :k $1 $$ \\ %s 7`,
  'non-BMP only numeral (mathematical bold 1)': '😀🔑𝐀𝐁𝟏 emoji 🦄 key!',
  'combining marks, not NFC': 'e\u0301 n\u0303 a\u0308 \u0915\u094D\u0937 combining 7!',
  'right-to-left only, Arabic-Indic digits': 'مفتاح سري ٣٤؟ שלום עולם',
  'exactly 10 UTF-16 units, 7 code points': '😀😀😀ab1!',
  'exactly 100 UTF-16 units, 51 code points': `${'𝐀'.repeat(49)}1!`,
};

/** Keys the Dynamics rule refuses (SqlEncryptionEncryptionKeyValidationError). */
const WEAK_KEYS: Record<string, string> = {
  'too short': 'short1!',
  '102 UTF-16 units though only 52 code points': `${'𝐀'.repeat(50)}1!`,
  'no numeral': 'abcdefghij!',
  'no symbol': 'abcdefghij1',
  'a right-to-left mark (format character)': 'שלום עולם 12!\u200F',
};

const DEMO_ROWS = 12;
/** Rows for the damaged-cell test: 270 non-null cells, so a sample of 50 misses one cell 81% of the time. */
const DAMAGED_ROWS = 300;
const DAMAGED_ATTEMPTS = 6;

for (const target of targetNames()) {
  describe(`activate and show-key (issue 4) on ${target}`, function () {
    let org: TestOrg;
    /** Every CLI run of the current test, for the leak check. */
    let runs: Array<{ args: string[]; run: CliRun }>;
    /** Every secret the current test has seen: passphrases (typed, generated, refused) and master-key passwords. */
    let secrets: Set<string>;
    /** Extra server databases (lost key stores, backups) to drop after the test. */
    let drops: Array<() => Promise<void>>;
    const savedEnv = { ...process.env };
    const touchedEnv = [
      'DATABASE_URL',
      'CELLCRYPT_CONFIG_URL',
      'CELLCRYPT_HOME',
      'CELLCRYPT_KEYSTORE_SECRET',
      'CELLCRYPT_CHANGE_QUOTA',
    ];

    beforeEach(async () => {
      org = await createTestOrg(target);
      Object.assign(process.env, org.env);
      runs = [];
      secrets = new Set();
      drops = [];
    });

    afterEach(async () => {
      for (const key of touchedEnv) {
        if (savedEnv[key] === undefined) delete process.env[key];
        else process.env[key] = savedEnv[key];
      }
      for (const drop of drops) await drop();
      await org.cleanup();
    });

    // ---- helpers -------------------------------------------------------------------------

    /** One CLI run, recorded for the leak check. */
    async function cli(...args: string[]): Promise<CliRun> {
      const run = await inProcessCli(...args);
      runs.push({ args, run });
      return run;
    }

    /** The command line for an assertion message, with any URL password hidden. */
    function label(args: string[]): string {
      return args.join(' ').replace(/\/\/([^:/@\s]+):[^@\s]*@/g, '//$1:***@');
    }

    async function expectOk(...args: string[]): Promise<CliRun> {
      const run = await cli(...args);
      expect(run.code, `${label(args)}: ${run.stderr}`).to.equal(0);
      return run;
    }

    /** Runs with --json and expects a refusal with this exit code and error code. */
    async function expectRefused(exitCode: number, code: string, ...args: string[]): Promise<CliRun> {
      const run = await cli(...args, '--json');
      expect(run.code, `${label(args)}: ${run.stderr}`).to.equal(exitCode);
      expect(run.json?.error?.code, `${label(args)}: ${run.stderr}`).to.equal(code);
      return run;
    }

    /** A demo org, installed: plaintext rows (every 10th NULL) encrypted under a generated key. */
    async function installDemo(rows = DEMO_ROWS): Promise<void> {
      await expectOk('demo', 'seed', '--rows', String(rows));
      await expectOk('install');
      await rememberKeyStoreSecrets();
    }

    /** The toolkit as the environment now configures it (the org and key store may have moved). */
    function openCurrent() {
      return openToolkit(loadSettings({ env: process.env, cwd: org.dir }));
    }

    /** Reads the key store directly and adds whatever it holds to the secrets of this test. */
    async function rememberKeyStoreSecrets(): Promise<void> {
      const tk = await openCurrent();
      try {
        const keystore = await tk.keystore();
        for (const name of ['passphrase', 'passphrase.pending', 'master-key-password'] as const) {
          const value = await keystore.get(name);
          if (value) secrets.add(value.reveal());
        }
      } finally {
        await tk.close();
      }
    }

    /** Everything a refused command must leave alone: org tables, the cellcrypt schema, the key store. */
    async function fingerprint(): Promise<Record<string, unknown>> {
      const tk = await openCurrent();
      try {
        const db = tk.engine.knex;
        const out: Record<string, unknown> = await tableChecksums(db, DEMO_TABLE_NAMES);
        const tables = await db.raw(
          `select table_name as name from information_schema.tables where ` +
            `table_schema = 'cellcrypt' and table_type = 'BASE TABLE' order by 1`,
        );
        for (const { name } of tables.rows as Array<{ name: string }>) {
          const rows = await db.raw(
            `select count(*)::int as n, md5(coalesce(string_agg(t::text, ` +
              `'|' order by t::text), '')) as sum from cellcrypt.${q(name)} t`,
          );
          out[`cellcrypt.${name}`] = `rows=${rows.rows[0].n} md5=${rows.rows[0].sum}`;
        }
        const keystore = await tk.keystore();
        for (const name of ['passphrase', 'passphrase.pending', 'master-key-password'] as const) {
          // Hashed: a failing deep-equal prints both sides, and test logs must not show keys either.
          const value = await keystore.get(name);
          out[`keystore.${name}`] = value
            ? createHash('sha256').update(value.reveal()).digest('hex').slice(0, 16)
            : null;
        }
        return out;
      } finally {
        await tk.close();
      }
    }

    async function statusJson(): Promise<any> {
      return (await cli('status', '--json')).json;
    }

    /** `show-key --out F`, parsed back; the passphrase becomes a known secret. */
    async function saveKey(name: string, encoding = 'utf8'): Promise<{ file: string; passphrase: string }> {
      const file = join(org.dir, name);
      await expectOk('show-key', '--out', file, '--encoding', encoding);
      expect(statSync(file).mode & 0o777, 'key files are private').to.equal(0o600);
      const passphrase = parseKeyFile(readFileSync(file)).passphrase.reveal();
      secrets.add(passphrase);
      return { file, passphrase };
    }

    function writeKey(name: string, bytes: Buffer): string {
      const file = join(org.dir, name);
      writeFileSync(file, bytes, { mode: 0o600 });
      return file;
    }

    /**
     * Loses the key store the way a new deployment does. PGlite: delete the config database and
     * the secret that seals it (both are re-created empty by the next command). Server: point
     * the org at a new, empty config database.
     */
    async function loseKeyStore(): Promise<void> {
      if (target === 'pglite') {
        const config = process.env.CELLCRYPT_CONFIG_URL!.replace(/^pglite:/, '');
        rmSync(config, { recursive: true, force: true });
        rmSync(join(org.dir, 'keystore.secret'), { force: true });
        await seedPgliteDirectory(config); // what the next command would create: an empty cluster
      } else {
        process.env.CELLCRYPT_CONFIG_URL = await newServerDatabase('cfg');
      }
      const status = await cli('status', '--json');
      expect(status.code, 'status of an org without its key store').to.equal(3);
      expect(status.json.active).to.equal(false);
      expect(status.json.hint).to.contain('activate');
    }

    async function newServerDatabase(kind: string, template = 'template0'): Promise<string> {
      const database = await createThrowAwayDatabase(pgServerUrl()!, `cellcrypt_test_${kind}`, template);
      drops.push(database.drop);
      return database.url;
    }

    /** A restorable copy of the org database as it is now (PGlite: its directory; server: a template copy). */
    async function backupOrg(): Promise<() => Promise<void>> {
      const current = process.env.DATABASE_URL!;
      if (target === 'pglite') {
        const dir = current.replace(/^pglite:/, '');
        const copy = `${dir}-backup-${randomBytes(4).toString('hex')}`;
        cpSync(dir, copy, { recursive: true });
        return async () => {
          rmSync(dir, { recursive: true, force: true });
          cpSync(copy, dir, { recursive: true });
        };
      }
      const copyUrl = await newServerDatabase('bak', decodeURIComponent(new URL(current).pathname.slice(1)));
      return async () => {
        process.env.DATABASE_URL = copyUrl;
      };
    }

    /** `activate --key-file F` that must succeed; the new master-key password becomes a known secret. */
    async function activateOk(file: string): Promise<CliRun> {
      const run = await expectOk('activate', '--key-file', file, '--json');
      await rememberKeyStoreSecrets();
      return run;
    }

    /**
     * No secret in any output: only `show-key` without --out may print the passphrase, and only
     * on stdout / in its JSON document. Checked as text, as base64 and hex of its UTF-8 bytes and
     * hex of its UTF-16LE bytes; JSON documents string by string (JSON escapes `"` and `\`).
     */
    function expectNoSecretLeaks(): void {
      expect(runs.length).to.be.greaterThan(0);
      expect(secrets.size).to.be.greaterThan(0);
      const forms = [...secrets].flatMap((s) => [
        s,
        Buffer.from(s, 'utf8').toString('base64'),
        Buffer.from(s, 'utf8').toString('hex'),
        Buffer.from(s, 'utf16le').toString('hex'),
      ]);
      for (const { args, run } of runs) {
        const showsKey = args.includes('show-key') && !args.includes('--out');
        const texts = [run.stderr, ...(showsKey ? [] : [run.stdout, ...stringsOf(run.json)])];
        for (const text of texts) {
          for (const form of forms) {
            if (text.toLowerCase().includes(form.toLowerCase()))
              expect.fail(`a secret appears in the output of \`${args.join(' ')}\``);
          }
        }
      }
    }

    // Every test ends with expectNoSecretLeaks(): no passphrase or master-key password in any
    // output of any command it ran, except the key printed by `show-key` itself.

    // ---- the new user's flow, and restores ----------------------------------------------

    it(
      'show-key, change-key, show-key; key store lost: status names activate, ' +
        'the old key is refused (0x8004852B) changing nothing, the new key activates ' +
        '(sql2017), verify passes, a second activate is refused (0x80048525)',
      async () => {
        await installDemo();
        const k1 = await saveKey('k1.txt');
        const guid1 = (await statusJson()).keys[0].guid;
        await expectOk('change-key', '--generate');
        await rememberKeyStoreSecrets();
        const k2 = await saveKey('k2.txt');
        expect(k2.passphrase).not.to.equal(k1.passphrase);
        await expectOk('verify');
        const active = await statusJson();
        expect(active.keys.map((k: any) => k.guid)).to.deep.equal([keyGuidFor(new Secret(k2.passphrase))]);
        expect(active.keys[0].guid).not.to.equal(guid1);
        const cells = active.columns.reduce((sum: number, c: any) => sum + c.cells, 0);
        expect(cells).to.be.greaterThan(0);

        await loseKeyStore();
        const lost = await statusJson();
        expect(lost.reason).to.match(/^inactive: encrypted cells exist, no usable key/);
        expect(lost.hint).to.contain('cellcrypt activate --key-file');
        // Nothing to show: the key store is empty (and show-key must not invent a key).
        await expectRefused(2, 'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB', 'show-key');

        const before = await fingerprint();
        const old = await expectRefused(
          2,
          'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
          'activate',
          '--key-file',
          k1.file,
        );
        expect(old.json.error.hresult).to.equal('0x8004852B');
        expect(old.json.error.message).to.contain(active.keys[0].guid);
        expect(await fingerprint(), 'a refused activate changes nothing').to.deep.equal(before);
        expect((await cli('status', '--json')).json.active).to.equal(false);

        const good = await activateOk(k2.file);
        expect(good.json).to.include({ derivation: 'sql2017', keyGuid: active.keys[0].guid, cells });
        expect(good.json.keyFile).to.deep.equal({ encoding: 'utf8-bom', checksum: 'verified' });
        await expectOk('verify');
        const after = await statusJson();
        expect(after.active).to.equal(true);
        expect(after.keys.map((k: any) => k.guid)).to.deep.equal([active.keys[0].guid]);
        expect((await expectOk('show-key', '--json')).json.key).to.equal(k2.passphrase);

        for (const file of [k2.file, k1.file]) {
          const again = await expectRefused(
            2,
            'SqlEncryptionIsActiveCannotRestoreEncryptionKey',
            'activate',
            '--key-file',
            file,
          );
          expect(again.json.error.hresult).to.equal('0x80048525');
          expect(again.json.error.hint).to.contain('change-key');
        }
        expectNoSecretLeaks();
      },
    );

    it(
      'org restored from a backup older than the last key change: the key ' +
        "store's newer key is refused, the key saved before the change activates",
      async () => {
        await installDemo();
        const k1 = await saveKey('k1.txt');
        const restore = await backupOrg();
        await expectOk('change-key', '--generate');
        const k2 = await saveKey('k2.txt');
        await rememberKeyStoreSecrets();
        await restore();

        const status = await cli('status', '--json');
        expect(status.code).to.equal(3);
        expect(status.json.active).to.equal(false);
        expect(status.json.hint).to.contain('activate');

        const before = await fingerprint();
        await expectRefused(
          2,
          'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
          'activate',
          '--key-file',
          k2.file,
        );
        expect(await fingerprint()).to.deep.equal(before);

        const good = await activateOk(k1.file);
        expect(good.json.keyGuid).to.equal(keyGuidFor(new Secret(k1.passphrase)));
        await expectOk('verify');
        expect((await expectOk('show-key', '--json')).json.key).to.equal(k1.passphrase);
        expectNoSecretLeaks();
      },
    );

    it(
      'show-key on an org whose key store holds another key (org restored from before ' +
        "a key change) does not hand that key out as the org's key without saying so",
      async () => {
        await installDemo();
        const k1 = await saveKey('k1.txt');
        const restore = await backupOrg();
        await expectOk('change-key', '--generate');
        await rememberKeyStoreSecrets();
        await restore();
        expect((await statusJson()).active).to.equal(false);

        // The key store holds the newer key, which opens none of these cells. Saving it silently
        // ("keep it somewhere safe") leaves the administrator with a copy that cannot restore
        // this org. Either refuse like status does, or warn as show-key does during a batched change.
        const file = join(org.dir, 'shown.txt');
        const run = await cli('show-key', '--out', file, '--json');
        if (run.code === 0) {
          expect(parseKeyFile(readFileSync(file)).passphrase.reveal()).not.to.equal(k1.passphrase);
          expect(run.stderr, 'show-key exit 0 with a key that does not open the data: it must say so').to.match(
            /warning/i,
          );
        } else {
          expect(run.code).to.equal(2);
          expect(run.json.error.code).to.equal('SqlEncryptionKeyCannotDecryptExistingData');
        }
        expectNoSecretLeaks();
      },
    );

    // Found while writing this suite, not covered by a test yet because the way out is a design
    // decision: an org backed up during an unfinished batched change (`change-key --batch-size N`,
    // cells under two key GUIDs) and restored without its key store cannot be activated at all:
    // `activate` takes one key file and refuses any key when the cells carry a second GUID
    // (0x8004852B "this key has GUID A, the organization's cells are under A, B"), for the old key
    // and for the new one alike.
    it(
      'an org restored from a backup taken during an unfinished ' +
        'batched key change can be activated with its two saved keys',
    );

    it(
      'a refused activate leaves the key store alone also when the refusal comes ' +
        'from the full check inside the transaction (one damaged cell the sample missed)',
      async () => {
        // Enough cells that the random sample of ACTIVATE_SAMPLE per column usually misses the one
        // damaged cell: the key then passes the sample and is refused by the in-transaction census.
        await installDemo(DAMAGED_ROWS);
        const k1 = await saveKey('k1.txt');
        const restore = await backupOrg();
        await expectOk('change-key', '--generate');
        await saveKey('k2.txt'); // the key store now holds k2, the key of the newer data
        await rememberKeyStoreSecrets();
        await restore(); // the org as it was before the change: cells under k1

        // One cell copied onto another row: right key GUID, wrong authenticator, so it never decrypts.
        const tk = await openCurrent();
        try {
          await tk.engine.knex.raw(
            `update "MailboxBase" set "Password" = ` +
              `(select "Password" from "MailboxBase" where "Password" is not null order by "MailboxId" limit 1)
           where "MailboxId" = ` +
              `(select "MailboxId" from "MailboxBase" where "Password" is not null order by "MailboxId" desc limit 1)`,
          );
        } finally {
          await tk.close();
        }

        const before = await fingerprint();
        // The sample is random: try until it has missed the damaged cell several times over.
        for (let attempt = 1; attempt <= DAMAGED_ATTEMPTS; attempt++) {
          const run = await expectRefused(
            2,
            'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
            'activate',
            '--key-file',
            k1.file,
          );
          expect(run.json.error.message).to.contain('nothing was changed');
          // "Nothing was changed" includes the key store: it may hold the only copy of another key.
          expect(await fingerprint(), `attempt ${attempt}: refused, yet something changed`).to.deep.equal(before);
        }
        expectNoSecretLeaks();
      },
    );

    it(
      'activate that dies after its database commit but before the key store ' +
        'write: status says inactive, the same key file activates again, verify passes',
      async () => {
        await installDemo();
        const k1 = await saveKey('k1.txt');
        const restore = await backupOrg();
        await expectOk('change-key', '--generate');
        await rememberKeyStoreSecrets();
        await restore(); // cells under k1, key store holds the newer key

        // The key store as it was before activate: putting it back after the commit is the state
        // a process killed between the two writes leaves behind.
        const keyStoreBefore = await readKeyStore();
        await activateOk(k1.file);
        await writeKeyStore(keyStoreBefore);
        const status = await statusJson();
        expect(status.active, 'key store without the activated key').to.equal(false);
        expect(status.hint).to.contain('activate');

        await activateOk(k1.file);
        expect((await statusJson()).active).to.equal(true);
        await expectOk('verify');
        expect((await expectOk('show-key', '--json')).json.key).to.equal(k1.passphrase);
        expectNoSecretLeaks();
      },
    );

    type KeyStoreNames = 'passphrase' | 'passphrase.pending' | 'master-key-password';
    const KEY_STORE_NAMES: KeyStoreNames[] = ['passphrase', 'passphrase.pending', 'master-key-password'];

    async function readKeyStore(): Promise<Map<KeyStoreNames, Secret | undefined>> {
      const tk = await openCurrent();
      try {
        const keystore = await tk.keystore();
        const out = new Map<KeyStoreNames, Secret | undefined>();
        for (const name of KEY_STORE_NAMES) out.set(name, await keystore.get(name));
        return out;
      } finally {
        await tk.close();
      }
    }

    async function writeKeyStore(values: Map<KeyStoreNames, Secret | undefined>): Promise<void> {
      const tk = await openCurrent();
      try {
        const keystore = await tk.keystore();
        for (const [name, value] of values) {
          if (value) await keystore.put(name, value);
          else await keystore.remove(name);
        }
      } finally {
        await tk.close();
      }
    }

    // ---- key files -------------------------------------------------------------------------

    it(
      'show-key --encoding utf8|utf16le|base64 files each activate ' +
        'a lost key store; hand-made files without BOM or checksum too',
      async () => {
        await installDemo();
        const expectedStart: Record<string, Buffer> = {
          utf8: Buffer.from([0xef, 0xbb, 0xbf]),
          utf16le: Buffer.from([0xff, 0xfe]),
          base64: Buffer.from('base64:', 'ascii'),
        };
        const detected: Record<string, string> = { utf8: 'utf8-bom', utf16le: 'utf16le-bom', base64: 'base64' };
        let passphrase: string | undefined;
        for (const encoding of ['utf8', 'utf16le', 'base64']) {
          const saved = await saveKey(`key-${encoding}.txt`, encoding);
          passphrase ??= saved.passphrase;
          expect(saved.passphrase, 'every encoding holds the same key').to.equal(passphrase);
          const bytes = readFileSync(saved.file);
          expect(
            bytes.subarray(0, expectedStart[encoding].length).equals(expectedStart[encoding]),
            `${encoding} file start`,
          ).to.equal(true);
          if (encoding === 'base64') expect(bytes.toString('ascii')).to.match(/^[\x20-\x7e\n]+$/); // ASCII only

          await loseKeyStore();
          const run = await activateOk(saved.file);
          expect(run.json.keyFile, encoding).to.deep.equal({ encoding: detected[encoding], checksum: 'verified' });
          await expectOk('verify');
        }

        const text = passphrase!;
        const cells = (await statusJson()).columns.reduce((sum: number, c: any) => sum + c.cells, 0);
        const handMade: Record<string, [Buffer, string]> = {
          'UTF-8, no BOM, no checksum, final newline': [Buffer.from(`${text}\n`, 'utf8'), 'utf8'],
          'UTF-8, no BOM, no checksum, no newline': [Buffer.from(text, 'utf8'), 'utf8'],
          'UTF-8 with BOM and CRLF, no checksum (Notepad)': [
            Buffer.concat([expectedStart.utf8, Buffer.from(`${text}\r\n`, 'utf8')]),
            'utf8-bom',
          ],
          'UTF-16LE with BOM, no checksum': [
            Buffer.concat([expectedStart.utf16le, Buffer.from(text, 'utf16le')]),
            'utf16le-bom',
          ],
          'UTF-16BE with BOM, no checksum': [
            Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]),
            'utf16be-bom',
          ],
        };
        for (const [name, [bytes, encoding]] of Object.entries(handMade)) {
          const file = writeKey(`hand-${randomBytes(4).toString('hex')}.txt`, bytes);
          await loseKeyStore();
          const run = await activateOk(file);
          expect(run.json.keyFile, name).to.deep.equal({ encoding, checksum: 'absent' });
          expect(run.json.cells, `${name}: every cell decrypted under the activated key`).to.equal(cells);
          expect(run.stderr, name).to.contain('no checksum line');
        }
        expectNoSecretLeaks();
      },
    );

    it(
      'damaged key files (one checksum digit flipped, saved as ANSI) ' +
        'are refused with CellcryptKeyFileInvalid and change nothing',
      async () => {
        await installDemo();
        const saved = await saveKey('key.txt');
        await loseKeyStore();
        const before = await fingerprint();

        // Flip one hex digit in the middle of the sha256: line; the key line is untouched.
        const good = readFileSync(saved.file, 'utf8');
        const flipped = good.replace(
          /(sha256:[0-9a-f]{31})([0-9a-f])/,
          (_, head: string, digit: string) => `${head}${digit === 'a' ? 'b' : 'a'}`,
        );
        expect(flipped).not.to.equal(good);
        // The same key as a Windows "ANSI" editor saves it: every character outside Latin-1 lost.
        const ansi = Buffer.from(saved.passphrase.replace(/[^\u0000-\u00ff]/gu, '?'), 'latin1');
        const damaged: Record<string, Buffer> = {
          'checksum digit flipped': Buffer.from(flipped, 'utf8'),
          'checksum digit flipped, UTF-16LE': Buffer.concat([
            Buffer.from([0xff, 0xfe]),
            Buffer.from(flipped.replace(/^\uFEFF/, ''), 'utf16le'),
          ]),
          'saved as ANSI, with its checksum line': Buffer.concat([
            ansi,
            Buffer.from(`\n${good.split('\n')[1]}\n`, 'ascii'),
          ]),
        };
        for (const [name, bytes] of Object.entries(damaged)) {
          const file = writeKey(`damaged-${randomBytes(4).toString('hex')}.txt`, bytes);
          const run = await expectRefused(2, 'CellcryptKeyFileInvalid', 'activate', '--key-file', file);
          expect(run.json.error.hint, name).to.contain('show-key --out');
        }
        expect(await fingerprint(), 'refused key files change nothing').to.deep.equal(before);
        const status = await statusJson();
        expect(status.active).to.equal(false);

        await activateOk(saved.file); // the undamaged file still works
        await expectOk('verify');
        expectNoSecretLeaks();
      },
    );

    // ---- awkward and weak passphrases -------------------------------------------------

    it(
      'awkward passphrases (quotes, ], ?, ;, --, non-BMP, combining marks, right-to-left, ' +
        'length limits in UTF-16 units) survive change-key, show-key and activate exactly',
      async () => {
        await installDemo();
        process.env.CELLCRYPT_CHANGE_QUOTA = '100'; // one change per key, more than 3 in 15 minutes
        expect(AWKWARD_KEYS['combining marks, not NFC'].normalize('NFC')).not.to.equal(
          AWKWARD_KEYS['combining marks, not NFC'],
        );
        let index = 0;
        for (const [name, key] of Object.entries(AWKWARD_KEYS)) {
          secrets.add(key);
          // Alternate the two ways an administrator hands over a key: a formatted key file, plain UTF-8.
          const bytes = index++ % 2 === 0 ? formatKeyFile(new Secret(key), 'utf8') : Buffer.from(`${key}\n`, 'utf8');
          const file = writeKey(`awkward-${index}.txt`, bytes);

          const changed = await expectOk('change-key', '--key-file', file, '--json');
          expect(changed.json.newKey.guid, name).to.equal(keyGuidFor(new Secret(key)));
          expect((await expectOk('show-key')).stdout, name).to.equal(key);
          expect((await expectOk('show-key', '--json')).json.key, name).to.equal(key);
          await expectOk('verify');
          await rememberKeyStoreSecrets();

          await loseKeyStore();
          const activated = await activateOk(file);
          expect(activated.json.keyGuid, name).to.equal(keyGuidFor(new Secret(key)));
          await expectOk('verify');
          expect((await expectOk('show-key', '--json')).json.key, name).to.equal(key);
        }
        expectNoSecretLeaks();
      },
    );

    it('weak passphrases are refused by change-key (0x80048528) and the key stays as it was', async () => {
      await installDemo();
      const before = await fingerprint();
      for (const [name, key] of Object.entries(WEAK_KEYS)) {
        secrets.add(key);
        const file = writeKey(`weak-${randomBytes(4).toString('hex')}.txt`, Buffer.from(`${key}\n`, 'utf8'));
        const run = await expectRefused(
          2,
          'SqlEncryptionEncryptionKeyValidationError',
          'change-key',
          '--key-file',
          file,
        );
        expect(run.json.error.hresult, name).to.equal('0x80048528');
      }
      expect(await fingerprint(), 'refused changes change nothing').to.deep.equal(before);
      await expectOk('verify');
      expectNoSecretLeaks();
    });

    // ---- permissions (PostgreSQL server only) -----------------------------------------

    if (target === 'postgres') {
      it(
        'a user who is neither superuser, database owner nor member of cellcrypt_key_*: show-key, change-key ' +
          'and activate exit 2 (CellcryptPermissionDenied) naming the role; the database owner passes the checks',
        async () => {
          await installDemo();
          const admin = pgServerUrl()!;
          const orgUrl = new URL(process.env.DATABASE_URL!);
          const database = decodeURIComponent(orgUrl.pathname.slice(1));
          const role = `cellcrypt_test_user_${randomBytes(5).toString('hex')}`;
          const password = `pw-${randomBytes(12).toString('hex')}`;
          secrets.add(password);
          const adminUser = decodeURIComponent(new URL(admin).username) || 'postgres';
          await adminQuery(
            admin,
            `create role "${role}" login nosuperuser nocreatedb nocreaterole password '${password}'`,
          );
          try {
            await adminQuery(admin, `grant connect on database "${database}" to "${role}"`);
            const url = new URL(orgUrl);
            url.username = role;
            url.password = password;
            const asRole = url.toString();

            const keyFile = (await saveKey('k.txt')).file;
            const before = await fingerprint();
            const expectations: Array<[string[], string]> = [
              [['show-key'], 'cellcrypt_key_reader'],
              [['show-key', '--out', join(org.dir, 'stolen.txt')], 'cellcrypt_key_reader'],
              [['change-key', '--generate'], 'cellcrypt_key_changer'],
              [['change-key', '--key-file', keyFile], 'cellcrypt_key_changer'],
              [['activate', '--key-file', keyFile], 'cellcrypt_key_activator'],
            ];
            for (const [args, neededRole] of expectations) {
              const run = await expectRefused(2, 'CellcryptPermissionDenied', '--database-url', asRole, ...args);
              const { message, hint } = run.json.error;
              expect(message, args.join(' ')).to.contain(`"${role}"`);
              expect(`${message} ${hint}`, args.join(' ')).to.contain(neededRole);
              expect(run.stderr, args.join(' ')).to.contain(neededRole);
            }
            expect(() => statSync(join(org.dir, 'stolen.txt')), 'no key file written').to.throw();
            expect(await fingerprint(), 'refused commands change nothing').to.deep.equal(before);

            // The database owner may do everything even without the roles (checked as that user).
            await adminQuery(admin, `alter database "${database}" owner to "${role}"`);
            const db = knex({ client: 'pg', connection: asRole, pool: { min: 0, max: 1 } });
            try {
              for (const permission of ['read-key', 'change-key', 'activate'] as const) {
                expect(await checkPostgresPermission(db, permission), permission).to.include({
                  granted: true,
                  user: role,
                });
              }
            } finally {
              await db.destroy();
            }
          } finally {
            await adminQuery(admin, `alter database "${database}" owner to "${adminUser}"`).catch(() => undefined);
            await adminQuery(admin, `drop owned by "${role}"`);
            await adminQuery(admin, `drop role "${role}"`);
          }
          expectNoSecretLeaks();
        },
      );
    }
  });
}

/** Every string in a JSON document (keys and values). */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...stringsOf(v)]);
  return [];
}
