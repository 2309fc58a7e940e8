import { expect } from 'chai';
import { decryptByKey, deriveKey, guidStringToBytes } from '../../../../src/cellcrypt';
import { keyGuidFor } from '../../../../src/cellcrypt/key-identity';
import { Secret } from '../../../../src/common/secret';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import { PROBE_PLAINTEXT, planScript, scriptProbe } from '../../../../src/core/script-plan';
import { renderMssqlScript } from '../../../../src/cli/commands/script';
import { probeAfterOpenRule } from '../../../support/tsql-rules';

/**
 * DL3: the probe each script checks right after OPEN SYMMETRIC KEY. The server's DECRYPTBYKEY is
 * played by the codec (the cross-engine tests hold the two byte for byte): what the server does
 * with the key it made from KEY_SOURCE, the codec does with the key the same text derives.
 */
const KEY = new Secret('Schlüssel-鍵-𝐊ey-1!');
const guid = guidStringToBytes(keyGuidFor(KEY));
const decryptUnder = (keySource: string, derivation: 'sql2017' | 'sql2016' = 'sql2017') =>
  decryptByKey(scriptProbe(KEY).cell, { keyGuid: guid, key: deriveKey(keySource, derivation) });

describe("the scripts' known-answer probe (DL3)", () => {
  it("decrypts to the probe bytes under the key the key file makes (the GUID is the key file key's)", () => {
    const probe = scriptProbe(KEY);
    expect(probe.cell.subarray(0, 16).equals(guid)).to.equal(true);
    expect(decryptUnder(KEY.reveal())).to.deep.equal(PROBE_PLAINTEXT);
    expect(probe.derivation).to.equal('sql2017');
  });

  it('does not decrypt under the key a wrong code page makes of the same text, whose GUID still matches', () => {
    // A :setvar file saved as UTF-8 without a BOM, read in the ANSI code page (Latin-1 here), or
    // with every non-ASCII character replaced: IDENTITY_VALUE is ASCII and survives, KEY_SOURCE does not.
    const mojibake = Buffer.from(KEY.reveal(), 'utf8').toString('latin1');
    const questionMarks = KEY.reveal().replace(/[^\x20-\x7e]/gu, '?');
    for (const keySource of [mojibake, questionMarks]) expect(decryptUnder(keySource), keySource).to.equal(null);
  });

  it('does not decrypt under the SHA-1 key of SQL Server 2016 or trace flag 4631', () => {
    expect(decryptUnder(KEY.reveal(), 'sql2016')).to.equal(null);
  });

  it('is what every script decrypts and compares with, and the same for the same key file', () => {
    expect(scriptProbe(KEY).cell).to.deep.equal(scriptProbe(KEY).cell);
    expect(scriptProbe(new Secret('Another-Key-2024!')).cell).not.to.deep.equal(scriptProbe(KEY).cell);
    for (const [operation, key] of [
      ['install', 'cellcrypt_key_1'],
      ['change-key', 'cellcrypt_key_3'],
      ['activate', 'cellcrypt_key_2'],
    ] as const) {
      const { probe } = planScript(operation, DYNAMICS_DEFAULT_COLUMNS, 2, KEY);
      const script = renderMssqlScript(operation, DYNAMICS_DEFAULT_COLUMNS, 2, KEY);
      const hex = { cell: probe.cell.toString('hex'), plaintext: probe.plaintext.toString('hex') };
      expect(probeAfterOpenRule(script, key, hex), operation).to.deep.equal([]);
      expect(script, operation).to.contain(`GUID ${keyGuidFor(KEY)}`);
    }
  });
});
