import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';
import { Client } from 'pg';
import { requireActive, withOpenKeys } from '../../src/core/key-access';
import { parseKeyFile } from '../../src/core/key-file';
import { loadSettings } from '../../src/config/settings';
import { silentReporter } from '../../src/core/reporter';
import { openToolkit } from '../../src/open-toolkit';
import { keystoreSecretFile } from '../../src/keystore/keystore-secret';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../src/core/registry';
import { inProcessCli, type CliRun } from '../support/in-process-cli';
import { rawCells } from '../support/org-data';
import { adminQuery } from '../support/pg-server';
import { seedPgliteDirectory } from '../support/pglite-template';
import { createTestOrg, TEST_KEYSTORE_SECRET, type TestOrg, type TargetName } from '../support/targets';

// knex logs every query and its bindings through the `debug` package (DEBUG=knex:*). Secrets
// travel as bindings, so the key-hierarchy calls bypass knex; this proves nothing slips through.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const debug = require('debug') as { enable(ns: string): void; disable(): string; log: (...args: unknown[]) => void };

/**
 * In every secret this scenario chooses itself: found anywhere, some form of one of them leaked
 * (a quoted or escaped copy the exact comparisons would miss). Long enough not to occur by chance.
 */
const MARK = 'Q7xKzv';

/** A URL's password as a URL carries it: encodeURIComponent leaves `'` as it is. */
const encoded = (password: string) => encodeURIComponent(password).replace(/'/g, '%27');

/** Every form of a password a URL-handling bug could print: as given, and percent-encoded. */
const passwordForms = (password: string) => [password, encoded(password)];

/** A PostgreSQL URL pointing nowhere (port 1 refuses at once), with a password that must not be echoed. */
const UNREACHABLE_PASSWORD = `nowhere${MARK}'pw]%@`;
const unreachableUrl = (database: string) =>
  `postgres://cellcrypt:${encoded(UNREACHABLE_PASSWORD)}@127.0.0.1:1/${database}`;

/**
 * On a server, the org and its key store are reached as a login role with a password (the
 * server's own test URL usually has none), so the checks below have a database password to
 * look for, and each command proves that the password still reaches pg. The role owns both
 * throw-away databases, which is all that install and the key store need.
 */
interface PasswordRole {
  readonly password: string;
  /** The org URL with a wrong password: refused when the server checks passwords. */
  readonly wrongUrl: string;
  readonly wrongPassword: string;
  /** Whether the server refuses a wrong password (CI's trust authentication does not). */
  readonly checksPasswords: boolean;
  drop(): Promise<void>;
}

async function usePasswordRole(org: TestOrg): Promise<PasswordRole> {
  const admin = process.env.TEST_PG_URL!;
  const name = `cellcrypt_pw_${randomBytes(4).toString('hex')}`;
  const password = `rolePw'${MARK}r]%@:/;${randomBytes(3).toString('hex')}`;
  const wrongPassword = `wrong${MARK}w'${randomBytes(3).toString('hex')}`;
  await adminQuery(admin, `create role "${name}" login password '${password.replace(/'/g, "''")}'`);
  const asRole = (url: string, pw: string) => {
    const parsed = new URL(url);
    parsed.username = name;
    parsed.password = encoded(pw);
    return parsed.toString();
  };
  for (const key of ['DATABASE_URL', 'CELLCRYPT_CONFIG_URL'] as const) {
    const url = org.env[key]!;
    await adminQuery(admin, `alter database "${new URL(url).pathname.slice(1)}" owner to "${name}"`);
    org.env[key] = asRole(url, password);
  }
  const wrongUrl = asRole(org.env.DATABASE_URL!, wrongPassword);
  const probe = new Client({ connectionString: wrongUrl });
  const checksPasswords = await probe.connect().then(
    () => false,
    () => true,
  );
  await probe.end().catch(() => undefined);
  return {
    password,
    wrongUrl,
    wrongPassword,
    checksPasswords,
    drop: () => adminQuery(admin, `drop role if exists "${name}"`),
  };
}

export function scenarios(target: TargetName): void {
  describe(`secrets never reach knex debug output (${target})`, function () {
    let org: TestOrg;
    let role: PasswordRole | undefined;
    const savedEnv = { ...process.env };
    const captured: string[] = [];
    const originalLog = debug.log;
    const originalWrites = { stdout: process.stdout.write, stderr: process.stderr.write };

    /**
     * knex's own warnings (engines/knex-log.ts) and anything else go to the process streams:
     * copied into the captured text, and still written (mocha reports a passed test on stdout
     * before the afterEach hook restores the streams).
     */
    function captureProcessOutput(): void {
      for (const stream of ['stdout', 'stderr'] as const) {
        const write = originalWrites[stream];
        process[stream].write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
          captured.push(`${stream}: ${typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()}`);
          return (write as (...args: unknown[]) => boolean).call(process[stream], chunk, ...rest);
        }) as typeof process.stdout.write;
      }
    }

    function restoreProcessOutput(): void {
      process.stdout.write = originalWrites.stdout;
      process.stderr.write = originalWrites.stderr;
    }

    beforeEach(async () => {
      org = await createTestOrg(target);
      if (target === 'postgres') role = await usePasswordRole(org);
      Object.assign(process.env, org.env);
      captured.length = 0;
      debug.log = (...args: unknown[]) => captured.push(format(...args));
      debug.enable('knex:*');
      captureProcessOutput();
    });

    afterEach(async () => {
      restoreProcessOutput();
      debug.disable();
      debug.log = originalLog;
      for (const key of Object.keys(org.env)) {
        if (savedEnv[key] === undefined) delete process.env[key];
        else process.env[key] = savedEnv[key];
      }
      await org.cleanup();
      await role?.drop();
      role = undefined;
    });

    /** The secrets any run may have seen besides the keys: database passwords and the key-store secret. */
    function connectionSecrets(): string[] {
      const keystoreSecret =
        target === 'pglite' ? readFileSync(keystoreSecretFile(org.settings), 'utf8').trim() : TEST_KEYSTORE_SECRET;
      return [keystoreSecret, ...(role ? passwordForms(role.password) : [])];
    }

    function expectNoSecret(secrets: readonly string[], runs: readonly CliRun[], rows: readonly string[]): void {
      const everything = [
        ...captured,
        ...runs.map((r) => [r.stdout, r.stderr, JSON.stringify(r.json ?? null)].join('\n')),
        ...rows,
      ].join('\n');
      for (const secret of secrets) {
        const at = everything.indexOf(secret);
        expect(at, `a secret leaked: ...${everything.slice(Math.max(0, at - 200), at)}`).to.equal(-1);
      }
    }

    async function auditAndLedger(): Promise<string[]> {
      const tk = await org.open();
      try {
        return [
          JSON.stringify((await tk.engine.knex.raw('select * from cellcrypt.audit')).rows),
          JSON.stringify((await tk.engine.knex.raw('select * from cellcrypt.ledger')).rows),
        ];
      } finally {
        await tk.close();
      }
    }

    it(
      'install, status, verify, change-key (--dry-run, one transaction, ' +
        'batched): no passphrase or master-key password in debug lines or output',
      async () => {
        const runs = [
          await inProcessCli('demo', 'seed', '--rows', '20'),
          await inProcessCli('install'),
          await inProcessCli('status', '--json'),
          await inProcessCli('verify'),
          await inProcessCli('change-key', '--generate', '--dry-run'),
          await inProcessCli('change-key', '--generate'),
          await inProcessCli('change-key', '--generate', '--batch-size', '7', '--json'),
        ];
        expect(runs.map((r) => r.code)).to.deep.equal([0, 0, 0, 0, 0, 0, 0]);
        expect(
          captured.some((line) => line.includes('knex:bindings')),
          'debug output was captured',
        ).to.equal(true);

        const tk = await org.open();
        const keystore = await tk.keystore();
        const secrets = [
          (await keystore.get('passphrase'))!.reveal(),
          (await keystore.get('master-key-password'))!.reveal(),
          ...connectionSecrets(),
        ];
        await tk.close();
        expectNoSecret(secrets, runs, await auditAndLedger());
      },
    );

    it(
      'every other command, and the failures (refusals, wrong keys, a wrong key-store secret, unreachable ' +
        'databases): no key, key-store secret or database password in debug lines, output or audit rows',
      async () => {
        const file = (name: string) => join(org.dir, name);
        const chosenKey = file('chosen-key.txt');
        const wrongKey = file('wrong-key.txt');
        writeFileSync(chosenKey, `chosen key ${MARK}c ';-- \u2603\n`);
        writeFileSync(wrongKey, `a wrong key ${MARK}w \u{1F511}\n`);
        const emptyStore = `pglite:${org.dir}/empty-config`;
        await seedPgliteDirectory(`${org.dir}/empty-config`);
        const wrongKeystoreSecret = `wrong-keystore-secret-${MARK}s-0123456789`;
        const savedKeys: string[] = [];
        const saveKey = async () => {
          const out = file(`key-${savedKeys.length}.txt`);
          savedKeys.push(out);
          return inProcessCli('show-key', '--out', out);
        };

        const runs: CliRun[] = [];
        const expectRun = async (code: number, errorCode: string | undefined, ...args: string[]) => {
          const run = await inProcessCli(...args);
          runs.push(run);
          expect(run.code, `cellcrypt ${args.join(' ')}: ${run.stderr}${JSON.stringify(run.json)}`).to.equal(code);
          if (errorCode) expect(run.json?.error?.code, `cellcrypt ${args.join(' ')}`).to.equal(errorCode);
          return run;
        };

        await expectRun(0, undefined, 'demo', 'seed', '--rows', '12');
        await expectRun(0, undefined, 'migrate', 'status');
        await expectRun(0, undefined, 'install');
        await expectRun(0, undefined, 'install');
        await expectRun(0, undefined, 'migrate', 'latest');
        await expectRun(0, undefined, 'migrate', 'unlock');
        await expectRun(0, undefined, 'doctor');
        runs.push(await saveKey());
        await expectRun(2, 'CellcryptUsage', '--json', 'show-key', '--out', savedKeys[0]!);
        // The master-key password for applications goes to its file only.
        await expectRun(0, undefined, '--json', 'show-key', '--master-key-password', '--out', file('app-dmk.txt'));
        await expectRun(2, 'CellcryptUsage', '--json', 'show-key', '--master-key-password');
        // script variables writes the secrets to its file, and nowhere else; the scripts hold none.
        const masterKeyPasswordFile = file('dmk.txt');
        writeFileSync(masterKeyPasswordFile, `Mk1!dmk ${MARK}m "';--\n`);
        const variables = [
          'script',
          'variables',
          '--key-file',
          savedKeys[0]!,
          '--master-key-password-file',
          masterKeyPasswordFile,
          '--out',
          file('vars.sql'),
        ];
        await expectRun(0, undefined, ...variables);
        await expectRun(0, undefined, 'script', 'change-key', '--engine', 'mssql', '--key-file', chosenKey);

        const mailbox = DYNAMICS_DEFAULT_COLUMNS.find((c) => c.table === 'MailboxBase')!;
        const tk = await org.open();
        const [id, cell] = [...(await rawCells(tk.engine.knex, mailbox))].find(([, value]) => value !== null)!;
        await tk.close();
        const hex = `0x${cell!.toString('hex')}`;
        await expectRun(0, undefined, 'decrypt-offline', '--key-file', savedKeys[0]!, '--authenticator-uuid', id, hex);
        await expectRun(3, undefined, 'decrypt-offline', '--key-file', wrongKey, '--authenticator-uuid', id, hex);

        await expectRun(0, undefined, 'change-key', '--key-file', chosenKey);
        await expectRun(0, undefined, 'change-key', '--generate', '--batch-size', '5');
        runs.push(await saveKey());
        await expectRun(0, undefined, 'change-key', '--generate');
        runs.push(await saveKey());
        await expectRun(
          2,
          'SqlEncryptionChangeEncryptionKeyExceededQuotaForTheInterval',
          '--json',
          'change-key',
          '--generate',
        );
        await expectRun(2, 'CellcryptUsage', '--json', 'change-key', '--key-file', chosenKey, '--generate');
        await expectRun(
          2,
          'SqlEncryptionIsActiveCannotRestoreEncryptionKey',
          '--json',
          'activate',
          '--key-file',
          savedKeys[2]!,
        );

        // Databases that cannot be reached, with a password in their URL; a wrong key-store secret.
        // A server key store needs CELLCRYPT_KEYSTORE_SECRET: on PGlite it comes from a file otherwise.
        const withKeystoreSecret = async (secret: string, run: () => Promise<unknown>) => {
          process.env.CELLCRYPT_KEYSTORE_SECRET = secret;
          try {
            await run();
          } finally {
            if (org.env.CELLCRYPT_KEYSTORE_SECRET === undefined) delete process.env.CELLCRYPT_KEYSTORE_SECRET;
            else process.env.CELLCRYPT_KEYSTORE_SECRET = org.env.CELLCRYPT_KEYSTORE_SECRET;
          }
        };
        await expectRun(1, undefined, '--json', '--database-url', unreachableUrl('org'), 'status');
        await withKeystoreSecret(wrongKeystoreSecret, async () => {
          const run = await expectRun(4, undefined, '--json', '--config-url', unreachableUrl('cfg'), 'status');
          expect(run.json.reason).to.contain('cannot open the key store');
        });
        if (role?.checksPasswords) await expectRun(1, undefined, '--json', '--database-url', role.wrongUrl, 'status');
        await withKeystoreSecret(wrongKeystoreSecret, async () => {
          const run = await expectRun(4, undefined, '--json', 'status');
          expect(run.json.reason).to.contain('the key-store secret does not open');
          const inactive = 'SqlEncryptionIsInactiveCannotChangeEncryptionKey';
          await expectRun(2, inactive, '--json', 'change-key', '--key-file', chosenKey);
        });
        // A restored org without its key store: refused with the wrong key, activated with the saved one.
        await expectRun(4, undefined, '--config-url', emptyStore, 'status');
        await expectRun(
          2,
          'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
          '--json',
          '--config-url',
          emptyStore,
          'activate',
          '--key-file',
          wrongKey,
        );
        // The key store is new to this org: an activation refused without --new-key-store.
        await expectRun(
          2,
          'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB',
          '--json',
          '--config-url',
          emptyStore,
          'activate',
          '--key-file',
          savedKeys[2]!,
        );
        await expectRun(
          0,
          undefined,
          '--config-url',
          emptyStore,
          'activate',
          '--key-file',
          savedKeys[2]!,
          '--new-key-store',
        );
        await expectRun(0, undefined, '--config-url', emptyStore, 'verify');
        await expectRun(0, undefined, '--config-url', emptyStore, 'status', '--json');

        const keyOf = (path: string) => parseKeyFile(readFileSync(path)).passphrase.reveal();
        // activate gave the master key a new password, kept in the store it activated into.
        const masterKeyPasswords: string[] = [];
        for (const configUrl of [org.env.CELLCRYPT_CONFIG_URL!, emptyStore]) {
          const settings = loadSettings({ env: org.env, cwd: org.dir, configUrl });
          const opened = await openToolkit(settings, { reporter: silentReporter });
          try {
            masterKeyPasswords.push((await (await opened.keystore()).get('master-key-password'))!.reveal());
          } finally {
            await opened.close();
          }
        }
        const secrets = [
          ...[...savedKeys, chosenKey, wrongKey].map(keyOf),
          ...masterKeyPasswords,
          ...connectionSecrets(),
          wrongKeystoreSecret,
          ...passwordForms(UNREACHABLE_PASSWORD),
          ...(role ? passwordForms(role.wrongPassword) : []),
          MARK,
        ];
        const rows = await auditAndLedger();
        expect(rows[0], 'install, the changes and the activation are audited').to.match(/"operation":"activate"/);
        expectNoSecret(secrets, runs, rows);
      },
    );

    it(
      'a transaction that carried a secret has parameter ' + 'logging turned off (log_statement=all would print it)',
      async () => {
        expect((await inProcessCli('demo', 'seed', '--rows', '3')).code).to.equal(0);
        expect((await inProcessCli('install')).code).to.equal(0);
        const tk = await org.open();
        try {
          const { access } = await requireActive(tk);
          const settings = await withOpenKeys(
            tk,
            access,
            async (trx) =>
              (
                await trx.raw(
                  `select current_setting('log_parameter_max_length') as normal, ` +
                    `current_setting('log_parameter_max_length_on_error') as on_error`,
                )
              ).rows[0],
          );
          expect(settings).to.deep.equal({ normal: '0', on_error: '0' });
          const outside = (await tk.engine.knex.raw(`select current_setting('log_parameter_max_length') as normal`))
            .rows[0];
          expect(outside.normal, 'only for that transaction').not.to.equal('0');
        } finally {
          await tk.close();
        }
      },
    );
  });
}
