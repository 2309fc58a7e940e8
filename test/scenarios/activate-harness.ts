import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/settings';
import { openToolkit } from '../../src/open-toolkit';
import { parseKeyFile } from '../../src/core/key-file';
import { inProcessCli, type CliRun } from '../support/in-process-cli';
import { DEMO_TABLE_NAMES, q, tableChecksums } from '../support/org-data';
import { adminQuery, createThrowAwayDatabase, pgServerUrl } from '../support/pg-server';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';
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
export const AWKWARD_KEYS: Record<string, string> = {
  'SQL and placeholder syntax': `O'Brien"]; drop table x; -- ?? ? :k $1 $$ \\ %s 7`,
  'non-BMP only numeral (mathematical bold 1)': '😀🔑𝐀𝐁𝟏 emoji 🦄 key!',
  'combining marks, not NFC': 'e\u0301 n\u0303 a\u0308 \u0915\u094D\u0937 combining 7!',
  'right-to-left only, Arabic-Indic digits': 'مفتاح سري ٣٤؟ שלום עולם',
  'exactly 10 UTF-16 units, 7 code points': '😀😀😀ab1!',
  'exactly 100 UTF-16 units, 51 code points': `${'𝐀'.repeat(49)}1!`,
};

/** Keys the Dynamics rule refuses (SqlEncryptionEncryptionKeyValidationError). */
export const WEAK_KEYS: Record<string, string> = {
  'too short': 'short1!',
  '102 UTF-16 units though only 52 code points': `${'𝐀'.repeat(50)}1!`,
  'no numeral': 'abcdefghij!',
  'no symbol': 'abcdefghij1',
  'a right-to-left mark (format character)': 'שלום עולם 12!\u200F',
};

export const DEMO_ROWS = 12;
/** Rows for the damaged-cell test: 270 non-null cells, so a sample of 50 misses one cell 81% of the time. */
export const DAMAGED_ROWS = 300;
export const DAMAGED_ATTEMPTS = 6;

export let org: TestOrg;
/** Every CLI run of the current test, for the leak check. */
export let runs: Array<{ args: string[]; run: CliRun }>;
/** Every secret the current test has seen: passphrases (typed, generated, refused) and master-key passwords. */
export let secrets: Set<string>;
/** Extra server databases (lost key stores, backups) to drop after the test. */
export let drops: Array<() => Promise<void>>;
const savedEnv = { ...process.env };
const touchedEnv = [
  'DATABASE_URL',
  'CELLCRYPT_CONFIG_URL',
  'CELLCRYPT_HOME',
  'CELLCRYPT_KEYSTORE_SECRET',
  'CELLCRYPT_CHANGE_QUOTA',
];
/** The target the current suite runs on. */
export let target: TargetName;

/** Registers the per-test set-up and clean-up of an activate suite on `on`. */
export function useActivateHarness(on: TargetName): void {
  // Set per test, not per registration: in a serial run every suite registers before any runs.
  beforeEach(async () => {
    target = on;
    org = await createTestOrg(target);
    Object.assign(process.env, org.env);
    runs = [];
    secrets = new Set();
    drops = [];
    keyStoreIsNew = false;
  });

  afterEach(async () => {
    for (const key of touchedEnv) {
      if (savedEnv[key] === undefined) delete process.env[key];
      else process.env[key] = savedEnv[key];
    }
    for (const drop of drops) await drop();
    await org.cleanup();
  });
}

// ---- helpers -------------------------------------------------------------------------

/** One CLI run, recorded for the leak check. */
export async function cli(...args: string[]): Promise<CliRun> {
  const run = await inProcessCli(...args);
  runs.push({ args, run });
  return run;
}

/** The command line for an assertion message, with any URL password hidden. */
export function label(args: string[]): string {
  return args.join(' ').replace(/\/\/([^:/@\s]+):[^@\s]*@/g, '//$1:***@');
}

export async function expectOk(...args: string[]): Promise<CliRun> {
  const run = await cli(...args);
  expect(run.code, `${label(args)}: ${run.stderr}`).to.equal(0);
  return run;
}

/** Runs with --json and expects a refusal with this exit code and error code. */
export async function expectRefused(exitCode: number, code: string, ...args: string[]): Promise<CliRun> {
  const run = await cli(...args, '--json');
  expect(run.code, `${label(args)}: ${run.stderr}`).to.equal(exitCode);
  expect(run.json?.error?.code, `${label(args)}: ${run.stderr}`).to.equal(code);
  return run;
}

/** A demo org, installed: plaintext rows (every 10th NULL) encrypted under a generated key. */
export async function installDemo(rows = DEMO_ROWS): Promise<void> {
  await expectOk('demo', 'seed', '--rows', String(rows));
  await expectOk('install');
  await rememberKeyStoreSecrets();
}

/** The toolkit as the environment now configures it (the org and key store may have moved). */
export function openCurrent() {
  return openToolkit(loadSettings({ env: process.env, cwd: org.dir }));
}

/** Reads the key store directly and adds whatever it holds to the secrets of this test. */
export async function rememberKeyStoreSecrets(): Promise<void> {
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
export async function fingerprint(): Promise<Record<string, unknown>> {
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
      out[`keystore.${name}`] = value ? createHash('sha256').update(value.reveal()).digest('hex').slice(0, 16) : null;
    }
    return out;
  } finally {
    await tk.close();
  }
}

export async function statusJson(): Promise<any> {
  return (await cli('status', '--json')).json;
}

/** `show-key --out F`, parsed back; the passphrase becomes a known secret. */
export async function saveKey(name: string, encoding = 'utf8'): Promise<{ file: string; passphrase: string }> {
  const file = join(org.dir, name);
  await expectOk('show-key', '--out', file, '--encoding', encoding);
  expect(statSync(file).mode & 0o777, 'key files are private').to.equal(0o600);
  const passphrase = parseKeyFile(readFileSync(file)).passphrase.reveal();
  secrets.add(passphrase);
  return { file, passphrase };
}

export function writeKey(name: string, bytes: Buffer): string {
  const file = join(org.dir, name);
  writeFileSync(file, bytes, { mode: 0o600 });
  return file;
}

/**
 * Loses the key store the way a new deployment does. PGlite: delete the config database and
 * the secret that seals it (both are re-created empty by the next command). Server: point
 * the org at a new, empty config database.
 */
/** Set by loseKeyStore until an activation has written the new key store. */
let keyStoreIsNew = false;

export async function loseKeyStore(): Promise<void> {
  keyStoreIsNew = true;
  if (target === 'pglite') {
    const config = process.env.CELLCRYPT_CONFIG_URL!.replace(/^pglite:/, '');
    rmSync(config, { recursive: true, force: true });
    rmSync(join(org.dir, 'keystore.secret'), { force: true });
    await seedPgliteDirectory(config); // what the next command would create: an empty cluster
  } else {
    process.env.CELLCRYPT_CONFIG_URL = await newServerDatabase('cfg');
  }
  const status = await cli('status', '--json');
  expect(status.code, 'status of an org without its key store').to.equal(4);
  expect(status.json.active).to.equal(false);
  expect(status.json.hint).to.contain('activate');
}

export async function newServerDatabase(kind: string, template = 'template0'): Promise<string> {
  const database = await createThrowAwayDatabase(pgServerUrl()!, `cellcrypt_test_${kind}`, template);
  drops.push(database.drop);
  return database.url;
}

/** A restorable copy of the org database as it is now (PGlite: its directory; server: a template copy). */
export async function backupOrg(): Promise<() => Promise<void>> {
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
  // Restored in place, as a DBA restores an org: the same database name, so the key store's
  // record of where the org lives still names it (a copy elsewhere is another case: --copy).
  const name = decodeURIComponent(new URL(current).pathname.slice(1));
  const copyUrl = await newServerDatabase('bak', name);
  const copyName = decodeURIComponent(new URL(copyUrl).pathname.slice(1));
  return async () => {
    const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;
    await adminQuery(pgServerUrl()!, `drop database ${quote(name)} with (force)`);
    await adminQuery(pgServerUrl()!, `create database ${quote(name)} template ${quote(copyName)}`);
  };
}

/** `activate --key-file F` that must succeed; the new master-key password becomes a known secret. */
export async function activateOk(file: string): Promise<CliRun> {
  // A key store lost and rebuilt empty is what --new-key-store is for; activate refuses it without.
  const run = await expectOk('activate', '--key-file', file, '--json', ...(keyStoreIsNew ? ['--new-key-store'] : []));
  keyStoreIsNew = false;
  await rememberKeyStoreSecrets();
  return run;
}

/**
 * No secret in any output: only `show-key` without --out may print the passphrase, and only
 * on stdout / in its JSON document. Checked as text, as base64 and hex of its UTF-8 bytes and
 * hex of its UTF-16LE bytes; JSON documents string by string (JSON escapes `"` and `\`).
 */
export function expectNoSecretLeaks(): void {
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

/** Every string in a JSON document (keys and values). */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...stringsOf(v)]);
  return [];
}

/**
 * An org restored from a backup taken before a key change: its cells are under the key saved as
 * k1.txt, the key store holds the newer key (saved as k2.txt too with `saveNewer`).
 */
export async function restoreFromBeforeKeyChange(options: { rows?: number; saveNewer?: boolean } = {}) {
  await installDemo(options.rows);
  const k1 = await saveKey('k1.txt');
  const restore = await backupOrg();
  await expectOk('change-key', '--generate');
  const k2 = options.saveNewer ? await saveKey('k2.txt') : undefined;
  await rememberKeyStoreSecrets();
  await restore();
  return { k1, k2 };
}
