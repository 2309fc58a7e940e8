import { expect } from 'chai';
import { identityValueFor } from '../../../../src/cellcrypt/key-identity';
import { CellcryptError } from '../../../../src/common/errors';
import { Secret } from '../../../../src/common/secret';
import { SQLCMD_VARIABLES, sqlcmdSecrets } from '../../../../src/engines/mssql/key-statements';
import { sqlcmdVariablesFile } from '../../../../src/engines/mssql/script-variables';
import { tokenizeSql, tokenValue } from '../../../support/tsql-rules';

/**
 * `cellcrypt script variables` (DL3, CO5): the :setvar file of a script's three secrets, UTF-16LE
 * with a BOM, each value escaped for sqlcmd's `"` rule and for the T-SQL literal it lands in.
 */
const HOSTILE = new Secret(`it's ]?; -- "quoted" 😀 鍵 Ключ-1!`);
const PASSWORD = new Secret(`Mk1!"pa'ss" -- ;]`);
const secrets = (passphrase: Secret, masterKeyPassword = PASSWORD) => ({
  passphrase,
  identityValue: identityValueFor(passphrase),
  masterKeyPassword,
});

/** sqlcmd's reading of `:setvar Name "value"`: a `""` inside the quotes is one `"`. */
function readSetvar(line: string): [string, string] {
  const match = /^:setvar (\w+) "(.*)"$/.exec(line);
  expect(match, line).to.not.equal(null);
  return [match![1], match![2].replace(/""/g, '"')];
}

/** The file as sqlcmd reads it: BOM, UTF-16LE, one :setvar per line. */
function read(file: Buffer): Map<string, string> {
  expect([...file.subarray(0, 2)]).to.deep.equal([0xff, 0xfe]);
  const lines = file.subarray(2).toString('utf16le').split('\r\n');
  expect(lines.pop()).to.equal('');
  return new Map(lines.map(readSetvar));
}

describe('script variables: the UTF-16 :setvar file', () => {
  it('is UTF-16LE with a BOM and holds exactly the three :setvar lines', () => {
    const values = read(sqlcmdVariablesFile(secrets(HOSTILE)));
    expect([...values.keys()]).to.deep.equal(Object.values(SQLCMD_VARIABLES));
  });

  it("lands in the script's N'$(…)' literals as the very text of each secret, whatever it holds", () => {
    const values = read(sqlcmdVariablesFile(secrets(HOSTILE)));
    const given = secrets(HOSTILE);
    for (const [slot, name] of Object.entries(SQLCMD_VARIABLES) as [keyof typeof given, string][]) {
      // sqlcmd puts the value where $(Name) was; the server reads the literal.
      const literal = sqlcmdSecrets(slot).replace(`$(${name})`, values.get(name)!);
      const tokens = tokenizeSql(`SELECT ${literal};`);
      expect(
        tokens.map((t) => t.kind),
        name,
      ).to.deep.equal(['word', 'string', 'punct']);
      expect(tokenValue(tokens[1]), name).to.equal(given[slot].reveal());
    }
  });

  it('doubles quotes for both readers: a " for sqlcmd, a \' for T-SQL', () => {
    const file = sqlcmdVariablesFile(secrets(new Secret(`a'b"c-1!`), new Secret('x"y')));
    const text = file.subarray(2).toString('utf16le');
    expect(text).to.contain(':setvar CellcryptPassphrase "a\'\'b""c-1!"');
    expect(text).to.contain(':setvar CellcryptMasterKeyPassword "x""y"');
  });

  it('refuses (exit 2) what a :setvar line cannot carry, without showing the value', () => {
    for (const [bad, reason] of [
      ['with a $(CellcryptPassphrase) inside-1!', /\$\(/],
      ['two\nlines-1!', /control or line-break/],
      ['', /is empty/],
    ] as const) {
      let error: unknown;
      try {
        sqlcmdVariablesFile(secrets(new Secret(bad)));
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(CellcryptError);
      const refusal = error as CellcryptError;
      expect(refusal.code).to.equal('CellcryptUsage');
      expect(refusal.exitCode).to.equal(2);
      expect(refusal.message).to.match(reason);
      if (bad) expect(`${refusal.message} ${refusal.hint}`).not.to.contain(bad);
    }
    expect(() => sqlcmdVariablesFile(secrets(HOSTILE, new Secret('')))).to.throw(/master-key password is empty/);
  });
});
