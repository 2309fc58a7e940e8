import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret } from '../../../src/common/secret';
import { formatKeyFile } from '../../../src/core/key-file';
import { identityValueFor } from '../../../src/cellcrypt/key-identity';
import { inProcessCli } from '../../support/in-process-cli';
import { parseTsql, splitGoBatches } from '../../support/tsql-grammar';
import { dynamicSqlBodies, withoutSqlcmdCommands } from '../../support/tsql-rules';

/** `cellcrypt script`: the CLI contract (stdout is the script, --json wraps it, bad input exits 2). */
describe('cellcrypt script (CLI)', function () {
  this.timeout(180_000);
  let dir: string;
  let keyFile: string;
  const KEY = new Secret('Another-Key-2024!');
  /** `'`, `]`, `?`, `;`, `--`, `"` and a character outside the BMP. */
  const HOSTILE = new Secret(`it's ]?; -- "q" 𝐊 鍵-1!`);
  const PASSWORD = `Mk1!"dmk'pw" ;--`;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cellcrypt-script-'));
    keyFile = join(dir, 'key.txt');
    writeFileSync(keyFile, formatKeyFile(KEY, 'utf8'), { mode: 0o600 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, secret: Secret) => {
    const file = join(dir, name);
    writeFileSync(file, formatKeyFile(secret, 'utf8'), { mode: 0o600 });
    return file;
  };

  it('script install --key-file F prints a script whose every batch parses, and needs no database', async () => {
    const run = await inProcessCli(
      '--database-url',
      'mssql://nobody:pw@host.invalid/Org',
      'script',
      'install',
      '--engine',
      'mssql',
      '--key-file',
      keyFile,
    );
    expect(run.code, run.stderr).to.equal(0);
    const batches = splitGoBatches(run.stdout).map(withoutSqlcmdCommands);
    expect(batches.length).to.be.greaterThan(5);
    for (const batch of [...batches, ...batches.flatMap(dynamicSqlBodies)])
      expect(parseTsql(batch), batch.slice(0, 200)).to.deep.equal([]);
  });

  it(
    '--json: one document with the script; change-key ' + '--generation 2 moves cellcrypt_key_2 to cellcrypt_key_3',
    async () => {
      const run = await inProcessCli(
        'script',
        'change-key',
        '--engine',
        'mssql',
        '--generation',
        '2',
        '--key-file',
        keyFile,
        '--json',
      );
      expect(run.code, run.stderr).to.equal(0);
      expect(run.json.operation).to.equal('change-key');
      expect(run.json.script)
        .to.contain('CREATE SYMMETRIC KEY [cellcrypt_key_3]')
        .and.to.contain('DROP SYMMETRIC KEY [cellcrypt_key_2]');
    },
  );

  it('the scripts hold no secret of the key file, on stdout or stderr', async () => {
    const file = write('hostile.txt', HOSTILE);
    for (const operation of ['install', 'change-key', 'activate']) {
      const run = await inProcessCli('script', operation, '--key-file', file);
      expect(run.code, `${operation}: ${run.stderr}`).to.equal(0);
      for (const secret of [HOSTILE.reveal(), identityValueFor(HOSTILE).reveal()])
        expect(run.stdout + run.stderr, operation).not.to.contain(secret);
      expect(run.stdout).to.contain('IF DECRYPTBYKEY(0x');
    }
  });

  it('script variables writes the UTF-16 :setvar file of the three secrets (mode 0600), and shows none', async () => {
    const file = write('hostile.txt', HOSTILE);
    const passwordFile = join(dir, 'dmk.txt');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const out = join(dir, 'vars.sql');
    const run = await inProcessCli(
      'script',
      'variables',
      '--key-file',
      file,
      '--master-key-password-file',
      passwordFile,
      '--out',
      out,
    );
    expect(run.code, run.stderr).to.equal(0);
    const bytes = readFileSync(out);
    expect([...bytes.subarray(0, 2)]).to.deep.equal([0xff, 0xfe]);
    expect(bytes.subarray(2).toString('utf16le').split('\r\n')).to.deep.equal([
      `:setvar CellcryptMasterKeyPassword "Mk1!""dmk''pw"" ;--"`,
      `:setvar CellcryptPassphrase "it''s ]?; -- ""q"" 𝐊 鍵-1!"`,
      `:setvar CellcryptIdentityValue "${identityValueFor(HOSTILE).reveal()}"`,
      '',
    ]);
    expect(statSync(out).mode & 0o777).to.equal(0o600);
    for (const secret of [HOSTILE.reveal(), PASSWORD, identityValueFor(HOSTILE).reveal()])
      expect(run.stdout + run.stderr).not.to.contain(secret);
    // The file may be the only copy of a key: never overwritten.
    const again = await inProcessCli(
      'script',
      'variables',
      '--key-file',
      file,
      '--master-key-password-file',
      passwordFile,
      '--out',
      out,
      '--json',
    );
    expect(again.code).to.equal(2);
    expect(again.json.error.message).to.contain('already exists');
  });

  it('script identity-value is refused (exit 2), naming script variables', async () => {
    const run = await inProcessCli('script', 'identity-value', '--engine', 'mssql', '--key-file', keyFile, '--json');
    expect(run.code).to.equal(2);
    expect(run.json.error.code).to.equal('CellcryptUsage');
    expect(run.json.error.message).to.contain('`script variables`');
    expect(run.json.error.hint).to.contain('script variables --key-file F --master-key-password-file M --out V');
    expect(run.stdout + run.stderr).not.to.contain(identityValueFor(KEY).reveal());
  });

  it(
    'refuses with exit 2: an unknown operation, another engine, a bad generation, a script without ' +
      '--key-file, variables without --out or the password file, both files on stdin',
    async () => {
      const passwordFile = write('dmk.txt', new Secret(PASSWORD));
      for (const args of [
        ['script', 'drop-everything', '--engine', 'mssql', '--key-file', keyFile],
        ['script', 'install', '--engine', 'postgres', '--key-file', keyFile],
        ['script', 'change-key', '--engine', 'mssql', '--generation', '0', '--key-file', keyFile],
        ['script', 'install'],
        ['script', 'variables', '--key-file', keyFile, '--master-key-password-file', passwordFile],
        ['script', 'variables', '--key-file', keyFile, '--out', join(dir, 'v.sql')],
        ['script', 'variables', '--key-file', '-', '--master-key-password-file', '-', '--out', join(dir, 'v.sql')],
        ['script', 'install', '--key-file', keyFile, '--out', join(dir, 'v.sql')],
      ]) {
        const run = await inProcessCli(...args);
        expect(run.code, `${args.join(' ')}: ${run.stderr}`).to.equal(2);
        expect(run.stdout, args.join(' ')).to.equal('');
      }
    },
  );

  it('a script without --key-file is refused, naming it: the script could not prove its KEY_SOURCE (DL3)', async () => {
    for (const operation of ['install', 'change-key', 'activate']) {
      const run = await inProcessCli('script', operation, '--engine', 'mssql', '--json');
      expect(run.code, `${operation}: ${run.stderr}`).to.equal(2);
      expect(run.json.error.code).to.equal('CellcryptUsage');
      expect(run.json.error.message).to.contain('--key-file').and.to.contain(`\`script ${operation}\``);
      expect(run.json).not.to.have.property('script');
    }
  });

  it('--engine defaults to mssql, the only engine there are scripts for (issue 16)', async () => {
    const implicit = await inProcessCli('script', 'install', '--key-file', keyFile);
    const explicit = await inProcessCli('script', 'install', '--engine', 'mssql', '--key-file', keyFile);
    expect(implicit.code, implicit.stderr).to.equal(0);
    expect(implicit.stdout).to.equal(explicit.stdout).and.to.contain('CREATE SYMMETRIC KEY [cellcrypt_key_1]');
  });

  it("README's SQL Server section: every `script` command runs as written and sqlcmd gets every variable", async () => {
    const readme = readFileSync(join(__dirname, '../../../README.md'), 'utf8');
    const start = readme.indexOf('\n## SQL Server\n');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const lines = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) => block[1].split('\n'));
    const scriptLines = lines.filter((line) => /\bcli -- script\b/.test(line));
    expect(scriptLines.map((line) => /script (\S+)/.exec(line)![1])).to.include.members(['install', 'variables']);
    // The shell expands ~ to the user's home; here a throw-away directory stands in for it.
    const home = (word: string) => (word.startsWith('~/') ? join(dir, word.slice(2)) : word);
    writeFileSync(join(dir, 'cellcrypt-key.txt'), 'A-Passphrase-The-DBA-Chose-1!\n', { mode: 0o600 });
    writeFileSync(join(dir, 'cellcrypt-dmk.txt'), 'Dmk-Password-The-DBA-Chose-1!\n', { mode: 0o600 });
    const files = new Map<string, string>();
    for (const line of scriptLines) {
      const command = line.split(/\s#\s/)[0].trim();
      const redirect = / > (\S+)$/.exec(command);
      const words = command.replace(/ > \S+$/, '').split(/\s+/);
      // npm prints its own banner on stdout: without --silent it would open every redirected file.
      if (redirect) expect(words.slice(0, 5), line).to.deep.equal(['npm', 'run', '--silent', 'cli', '--']);
      const run = await inProcessCli(...words.slice(words.indexOf('--') + 1).map(home));
      expect(run.code, `${line}: ${run.stderr}`).to.equal(0);
      expect(run.stdout, line).not.to.equal('');
      if (redirect) files.set(redirect[1], run.stdout);
      const out = words.indexOf('--out');
      if (out >= 0)
        files.set(
          words[out + 1],
          readFileSync(home(words[out + 1]))
            .subarray(2)
            .toString('utf16le'),
        );
    }
    // The sqlcmd line reads those files: every $(variable) the scripts use is set in them, and
    // none on its command line (-v values show in process lists and shell history).
    const sqlcmd = lines.find((line) => line.startsWith('sqlcmd '));
    expect(sqlcmd).to.be.a('string');
    expect(sqlcmd).to.contain(' -f 65001 ').and.not.to.match(/ -v /);
    const inputs = /-i (\S+)/.exec(sqlcmd!)![1].split(',');
    const text = inputs.map((name) => files.get(name) ?? expect.fail(`${name} is not written by the commands above`));
    const defined = new Set(text.flatMap((t) => [...t.matchAll(/^:setvar (\w+) /gm)].map((m) => m[1])));
    const used = new Set(text.flatMap((t) => [...t.matchAll(/\$\((\w+)\)/g)].map((m) => m[1])));
    expect(used.size).to.be.greaterThan(0);
    for (const variable of used) expect(defined, variable).to.include(variable);
  });

  it('--help names the operations and the engine', async () => {
    // yargs ends the process after --help, so this one runs in a child process.
    const run = spawnSync(process.execPath, ['--require', 'tsx/cjs', 'src/cli/main.ts', 'script', '--help'], {
      encoding: 'utf8',
      cwd: join(__dirname, '../../..'),
    });
    expect(run.status, run.stderr).to.equal(0);
    expect(run.stdout)
      .to.contain('install')
      .and.to.contain('change-key')
      .and.to.contain('activate')
      .and.to.contain('variables')
      .and.to.contain('--engine');
  });
});
