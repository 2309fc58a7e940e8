import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret } from '../../../src/common/secret';
import { formatKeyFile } from '../../../src/core/key-file';
import { identityValueFor } from '../../../src/cellcrypt/key-identity';
import { inProcessCli } from '../../support/in-process-cli';
import { parseTsql, splitGoBatches } from '../../support/tsql-grammar';

/** `cellcrypt script`: the CLI contract (stdout is the script, --json wraps it, bad input exits 2). */
describe('cellcrypt script (CLI)', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cellcrypt-script-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('script install --engine mssql prints a script whose every batch parses, and needs no database', async () => {
    const run = await inProcessCli(
      '--database-url',
      'mssql://nobody:pw@host.invalid/Org',
      'script',
      'install',
      '--engine',
      'mssql',
    );
    expect(run.code, run.stderr).to.equal(0);
    const batches = splitGoBatches(run.stdout).map((b) =>
      b
        .split('\n')
        .filter((line) => !line.startsWith(':'))
        .join('\n'),
    );
    expect(batches.length).to.be.greaterThan(5);
    for (const batch of batches) expect(parseTsql(batch), batch.slice(0, 200)).to.deep.equal([]);
  });

  it(
    '--json: one document with the script; change-key ' + '--generation 2 moves cellcrypt_key_2 to cellcrypt_key_3',
    async () => {
      const run = await inProcessCli('script', 'change-key', '--engine', 'mssql', '--generation', '2', '--json');
      expect(run.code, run.stderr).to.equal(0);
      expect(run.json.operation).to.equal('change-key');
      expect(run.json.script)
        .to.contain('CREATE SYMMETRIC KEY [cellcrypt_key_3]')
        .and.to.contain('DROP SYMMETRIC KEY [cellcrypt_key_2]');
    },
  );

  it('identity-value prints the :setvar line for a key file, not the key', async () => {
    const key = new Secret("a key with ' and ? 1!");
    const file = join(dir, 'key.txt');
    writeFileSync(file, formatKeyFile(key, 'utf8'), { mode: 0o600 });
    const run = await inProcessCli('script', 'identity-value', '--engine', 'mssql', '--key-file', file);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout.trim()).to.equal(`:setvar CellcryptIdentityValue "${identityValueFor(key).reveal()}"`);
    expect(run.stdout + run.stderr).not.to.contain(key.reveal());
  });

  it(
    'refuses with exit 2: an unknown operation, another engine, ' +
      'a bad generation, identity-value without a key file',
    async () => {
      for (const args of [
        ['script', 'drop-everything', '--engine', 'mssql'],
        ['script', 'install', '--engine', 'postgres'],
        ['script', 'change-key', '--engine', 'mssql', '--generation', '0'],
        ['script', 'identity-value', '--engine', 'mssql'],
      ]) {
        const run = await inProcessCli(...args);
        expect(run.code, `${args.join(' ')}: ${run.stderr}`).to.equal(2);
      }
    },
  );

  it('--engine defaults to mssql, the only engine there are scripts for (issue 16)', async () => {
    const implicit = await inProcessCli('script', 'install');
    const explicit = await inProcessCli('script', 'install', '--engine', 'mssql');
    expect(implicit.code, implicit.stderr).to.equal(0);
    expect(implicit.stdout).to.equal(explicit.stdout).and.to.contain('CREATE SYMMETRIC KEY [cellcrypt_key_1]');
    const key = new Secret('Another-Key-2024!');
    const file = join(dir, 'key.txt');
    writeFileSync(file, formatKeyFile(key, 'utf8'), { mode: 0o600 });
    const identity = await inProcessCli('script', 'identity-value', '--key-file', file);
    expect(identity.code, identity.stderr).to.equal(0);
    expect(identity.stdout.trim()).to.equal(`:setvar CellcryptIdentityValue "${identityValueFor(key).reveal()}"`);
  });

  it('refuses --key-file (exit 2) where the script does not read it, naming it and identity-value', async () => {
    const file = join(dir, 'key.txt');
    writeFileSync(file, formatKeyFile(new Secret('Another-Key-2024!'), 'utf8'), { mode: 0o600 });
    for (const operation of ['install', 'change-key', 'activate']) {
      const run = await inProcessCli('script', operation, '--engine', 'mssql', '--key-file', file, '--json');
      expect(run.code, `${operation}: ${run.stderr}`).to.equal(2);
      expect(run.json.error.code).to.equal('CellcryptUsage');
      expect(run.json.error.message)
        .to.contain('--key-file')
        .and.to.contain('`script identity-value`')
        .and.to.contain(`\`script ${operation}\``)
        .and.to.contain('CellcryptPassphrase');
      expect(run.json).not.to.have.property('script');
    }
  });

  it("README's SQL Server section: every `script` command runs as written and sqlcmd gets every variable", async () => {
    const readme = readFileSync(join(__dirname, '../../../README.md'), 'utf8');
    const start = readme.indexOf('\n## SQL Server\n');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const lines = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) => block[1].split('\n'));
    const scriptLines = lines.filter((line) => /\bcli -- script\b/.test(line));
    expect(scriptLines.map((line) => /script (\S+)/.exec(line)![1])).to.include.members(['install', 'identity-value']);
    // The shell expands ~ to the user's home; here a throw-away directory stands in for it.
    const home = (word: string) => (word.startsWith('~/') ? join(dir, word.slice(2)) : word);
    writeFileSync(join(dir, 'cellcrypt-key.txt'), 'A-Passphrase-The-DBA-Chose-1!\n', { mode: 0o600 });
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
    }
    // The sqlcmd line reads those files and sets the rest on its command line: every $(variable)
    // the scripts use is set by one or the other.
    const sqlcmd = lines.find((line) => line.startsWith('sqlcmd '));
    expect(sqlcmd).to.be.a('string');
    const inputs = /-i (\S+)/.exec(sqlcmd!)![1].split(',');
    const text = inputs.map((name) => files.get(name) ?? expect.fail(`${name} is not written by the commands above`));
    const defined = new Set([
      ...[...sqlcmd!.matchAll(/(?:-v|") ([A-Za-z]\w*)=/g)].map((m) => m[1]),
      ...text.flatMap((t) => [...t.matchAll(/^:setvar (\w+) /gm)].map((m) => m[1])),
    ]);
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
      .and.to.contain('--engine');
  });
});
