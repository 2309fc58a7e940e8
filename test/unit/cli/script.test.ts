import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
    'refuses with exit 2: an unknown operation, a missing --engine, ' +
      'another engine, a bad generation, identity-value without a key file',
    async () => {
      for (const args of [
        ['script', 'drop-everything', '--engine', 'mssql'],
        ['script', 'install'],
        ['script', 'install', '--engine', 'postgres'],
        ['script', 'change-key', '--engine', 'mssql', '--generation', '0'],
        ['script', 'identity-value', '--engine', 'mssql'],
      ]) {
        const run = await inProcessCli(...args);
        expect(run.code, `${args.join(' ')}: ${run.stderr}`).to.equal(2);
      }
    },
  );

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
