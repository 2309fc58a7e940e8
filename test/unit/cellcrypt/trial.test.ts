import { expect } from 'chai';
import {
  deriveKey,
  encryptByKey,
  keyGuidFromIdentity,
  nvarcharBytes,
  trialDecrypt,
  trialKeys,
  varcharText,
} from '../../../src/cellcrypt';

describe('cellcrypt trial decryption (passphrase without GUID or server version)', () => {
  const passphrase = 'password to derive key';
  const sealed = (derivation: 'sql2016' | 'sql2017', authenticator?: Buffer) =>
    encryptByKey(
      { keyGuid: keyGuidFromIdentity('lost identity'), key: deriveKey(passphrase, derivation) },
      nvarcharBytes('blubb'),
      { authenticator },
    );

  it('tries 2017+ then 2016, each AES size, and says which one decrypted', () => {
    expect(trialKeys(passphrase).map((key) => `${key.derivation}/${key.algorithm}`)).to.deep.equal([
      'sql2017/AES_256',
      'sql2017/AES_128',
      'sql2017/AES_192',
      'sql2016/AES_256',
      'sql2016/AES_128',
      'sql2016/AES_192',
    ]);
    const result = trialDecrypt(sealed('sql2016'), trialKeys(passphrase));
    expect(result).to.include({ ok: true, derivation: 'sql2016', algorithm: 'AES_256' });
    expect(result.ok && result.plaintext.toString('utf16le')).to.equal('blubb');
    expect(trialDecrypt(sealed('sql2016'), trialKeys(passphrase, ['sql2017']))).to.include({ ok: false });
  });

  it('reports the matching key when only the authenticator is wrong, and no match for another passphrase', () => {
    const blob = sealed('sql2017', Buffer.alloc(16, 1));
    const wrongRow = trialDecrypt(blob, trialKeys(passphrase), Buffer.alloc(16, 2));
    expect(wrongRow).to.deep.include({
      ok: false,
      reason: 'integrity-mismatch',
      matched: { derivation: 'sql2017', algorithm: 'AES_256' },
    });
    const other = trialDecrypt(blob, trialKeys('another passphrase'), Buffer.alloc(16, 1));
    expect(other).to.include({ ok: false }).and.not.to.have.property('matched');
    expect(other.ok ? '' : other.reason).to.be.oneOf(['bad-padding', 'bad-magic']);
  });
});

describe('varcharText (code page 1252)', () => {
  it('maps 0x80..0x9F like Windows and every other byte like ISO-8859-1', () => {
    const c1 = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x80 + i));
    expect(varcharText(c1)).to.equal('€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008DŽ\u008F\u0090‘’“”•–—˜™š›œ\u009DžŸ');
    expect(varcharText(Buffer.from('Grüße 123 ÿ', 'latin1'))).to.equal('Grüße 123 ÿ');
  });
});
