import { expect } from 'chai';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret } from '../../../src/common/secret';
import { parseConnectionTarget, type ConnectionTarget } from '../../../src/config/connection-target';
import { findSqlcmd, runSqlcmd } from '../../../src/engines/mssql/selftest-sqlcmd';

/**
 * How the selftest runs a printed script with sqlcmd (no sqlcmd here: a stand-in records what
 * it was given). A DBA's process list and shell history show a command line, so no secret may
 * be on it: the login password goes in sqlcmd's environment, the script's secrets in the
 * variables file `cellcrypt script variables` writes, both files are gone afterwards, and
 * sqlcmd's output comes back without the secrets.
 */
const PASSWORD = 'sa-Pa55word';
const SECRETS = {
  masterKeyPassword: new Secret('Mk1!master-password'),
  passphrase: new Secret('the key ☃ 😀'),
  identityValue: new Secret('cellcrypt-identity-v1:0123'),
};

describe('selftest: printed scripts through sqlcmd', () => {
  let bin: string;
  let target: ConnectionTarget;

  beforeEach(() => {
    bin = mkdtempSync(join(tmpdir(), 'cellcrypt-fake-sqlcmd-'));
    const parsed = parseConnectionTarget(
      `mssql://sa:${PASSWORD}@sql.example:1533/cellcrypt_selftest_x_scripts?trustServerCertificate=true`,
      bin,
    );
    if (typeof parsed === 'string') throw new Error(parsed);
    target = parsed;
    // Records its arguments, its password and the two files it reads; echoes a secret back.
    writeFileSync(
      join(bin, 'sqlcmd'),
      '#!/bin/sh\n' +
        `printf '%s\\n' "$@" > "${bin}/argv"\n` +
        `printf '%s' "$SQLCMDPASSWORD" > "${bin}/password"\n` +
        'while [ "$1" != "-i" ]; do shift; done\n' +
        `vars=\${2%%,*}; script=\${2#*,}; cp "$vars" "${bin}/vars"; cp "$script" "${bin}/script"\n` +
        `echo "$vars $script" > "${bin}/files"\n` +
        `echo "Msg 50000: KEY_SOURCE = ${SECRETS.passphrase.reveal()}"; exit 4\n`,
    );
    chmodSync(join(bin, 'sqlcmd'), 0o755);
  });

  afterEach(() => rmSync(bin, { recursive: true, force: true }));

  it('finds sqlcmd on the PATH, and says when there is none', () => {
    expect(findSqlcmd({ PATH: bin })).to.equal(join(bin, 'sqlcmd'));
    const empty = mkdtempSync(join(tmpdir(), 'cellcrypt-no-sqlcmd-'));
    // Microsoft's packages install it outside the PATH too; only where neither is, is there none.
    const installed = ['/opt/mssql-tools18/bin/sqlcmd', '/opt/mssql-tools/bin/sqlcmd'].some(existsSync);
    if (!installed) expect(findSqlcmd({ PATH: empty })).to.equal(undefined);
    rmSync(empty, { recursive: true });
  });

  it('no secret on its command line: password in its environment, secrets in the variables file', async () => {
    const result = await runSqlcmd(target, 'SELECT 1;\nGO\n', SECRETS, join(bin, 'sqlcmd'));
    expect(result!.exitCode).to.equal(4);
    const argv = readFileSync(join(bin, 'argv'), 'utf8');
    for (const secret of [PASSWORD, ...Object.values(SECRETS).map((s) => s.reveal())])
      expect(argv).not.to.contain(secret);
    expect(argv.split('\n').slice(0, 9)).to.deep.equal([
      '-S',
      'sql.example,1533',
      '-U',
      'sa',
      '-d',
      'cellcrypt_selftest_x_scripts',
      '-C',
      '-I',
      '-b',
    ]);
    expect(argv).to.contain('-f\n65001\n-i\n');
    expect(readFileSync(join(bin, 'password'), 'utf8')).to.equal(PASSWORD);
    // The variables file cellcrypt script variables writes: UTF-16 with a BOM, a :setvar per secret.
    const vars = readFileSync(join(bin, 'vars'));
    expect([...vars.subarray(0, 2)]).to.deep.equal([0xff, 0xfe]);
    const text = vars.subarray(2).toString('utf16le');
    for (const secret of Object.values(SECRETS)) expect(text).to.contain(secret.reveal());
    expect(readFileSync(join(bin, 'script'), 'utf8')).to.equal('SELECT 1;\nGO\n');
    for (const file of readFileSync(join(bin, 'files'), 'utf8').trim().split(' '))
      expect(existsSync(file), `${file} was left behind`).to.equal(false);
    expect(result!.output).to.contain('KEY_SOURCE = ***').and.not.to.contain(SECRETS.passphrase.reveal());
  });
});
