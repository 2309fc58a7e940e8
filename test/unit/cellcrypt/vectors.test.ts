import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { expect } from 'chai';
import {
  cipherLength,
  decryptByKey,
  deriveKey,
  diagnoseCell,
  encryptByKey,
  guidBytesToString,
  guidStringToBytes,
  keyGuidFromIdentity,
  maxPlaintextBytes,
  nvarcharBytes,
  nvarcharText,
} from '../../../src/cellcrypt';

// Reference section 4: values read from real SQL Server instances.
const V1_KEY_SOURCE = 'password to derive key';
const V1_IDENTITY = 'password to derive guid';
const V1_KEY = 'AF8C9D22CE9B6BBE5E4207608A2D4D9494B8532AD2F358C382F02BB3303A36E6';
const V1_GUID_STRING = '01DE2200-EF6C-3C1A-0F3A-889881EF77E7';
const V1_GUID_BYTES = '0022DE016CEF1A3C0F3A889881EF77E7';
const V1_IV = '91B6D30FAB2FFBC7FFEAE32D3A52A6F8';
const V1_BLUBB_PREFIX = '0022DE016CEF1A3C0F3A889881EF77E70100000091B6D30FAB2FFBC7FFEAE32D3A52A6F8AEA2750CEBEBE';
const SQL2017_KEY = '3E0D8E9F3826A2B2923FC9597BBAA5CA997CDDE9800F04F863ABC3C8F2FD523B';
const F1 =
  '00362256B65B9B4DBDF3705E081C5B4702000000F7777779B3530A9720241C13E202' +
  '5BB75AF6A6E6EFFA43BFB712E03278BEB14B33E1D3602666A1E03D679B30BBE3419E';
const F2 =
  '00C4DF9657A82042B4842B26243EC848020000005EE14EA1AF01EF8201CA8AB9910B' +
  'A878B73DF6C9E6F23619067C3ABD92051AA63009AADA40B28BA6DF6B692309DF635C';

const hex = (buffer: Buffer): string => buffer.toString('hex').toUpperCase();
const v1Key = () => ({ keyGuid: keyGuidFromIdentity(V1_IDENTITY), key: deriveKey(V1_KEY_SOURCE, 'sql2016') });

describe('cellcrypt vectors from real servers (reference section 4)', () => {
  it('derives the V1 AES_256 key under the SQL Server 2016 derivation', () => {
    expect(hex(deriveKey(V1_KEY_SOURCE, 'sql2016', 'AES_256'))).to.equal(V1_KEY);
    expect(hex(deriveKey(V1_KEY_SOURCE, 'sql2016'))).to.equal(V1_KEY); // AES_256 is the default
  });

  it('derives the predicted 2017+ key for the same phrase', () => {
    expect(hex(deriveKey(V1_KEY_SOURCE, 'sql2017'))).to.equal(SQL2017_KEY);
  });

  it('cuts AES_128/192 keys from the front of the same material', () => {
    expect(hex(deriveKey(V1_KEY_SOURCE, 'sql2016', 'AES_128'))).to.equal(V1_KEY.slice(0, 32));
    expect(hex(deriveKey(V1_KEY_SOURCE, 'sql2016', 'AES_192'))).to.equal(V1_KEY.slice(0, 48));
    expect(hex(deriveKey(V1_KEY_SOURCE, 'sql2017', 'AES_128'))).to.equal(SQL2017_KEY.slice(0, 32));
  });

  it('derives the key GUID from IDENTITY_VALUE and prints it like SQL Server', () => {
    const guid = keyGuidFromIdentity(V1_IDENTITY);
    expect(hex(guid)).to.equal(V1_GUID_BYTES);
    expect(guidBytesToString(guid)).to.equal(V1_GUID_STRING);
    expect(hex(guidStringToBytes(V1_GUID_STRING))).to.equal(V1_GUID_BYTES);
    expect(hex(guidStringToBytes(`{${V1_GUID_STRING.toLowerCase()}}`))).to.equal(V1_GUID_BYTES);
  });

  it('refuses malformed GUID strings with a usage error', () => {
    for (const bad of [
      '',
      '01DE2200EF6C3C1A0F3A889881EF77E7',
      '{01DE2200-EF6C-3C1A-0F3A-889881EF77E7',
      '01DE2200-EF6C-3C1A-0F3A-889881EF77EG',
    ]) {
      expect(() => guidStringToBytes(bad), bad)
        .to.throw()
        .with.property('code', 'CellcryptUsage');
    }
  });

  it("reproduces ENCRYPTBYKEY(KEY_GUID('TestKey'), N'blubb') given the published IV", () => {
    const blob = encryptByKey(v1Key(), nvarcharBytes('blubb'), { iv: Buffer.from(V1_IV, 'hex') });
    expect(blob.length).to.equal(68);
    expect(hex(blob).startsWith(V1_BLUBB_PREFIX)).to.equal(true);
    expect(nvarcharText(decryptByKey(blob, v1Key()) as Buffer)).to.equal('blubb');
  });

  it('matches a hand-built first cipher block (AES-ECB of IV XOR header|plaintext)', () => {
    // Independent of the codec: CBC's first block is E(K, IV ^ P0), P0 = magic | 0 | 10 | 'bl' in UTF-16LE.
    const firstPlainBlock = Buffer.from('0DF0ADBA' + '0000' + '0A00' + '62006C007500' + '6200', 'hex');
    const iv = Buffer.from(V1_IV, 'hex');
    const xored = Buffer.from(firstPlainBlock.map((byte, i) => byte ^ iv[i]));
    const ecb = createCipheriv('aes-256-ecb', Buffer.from(V1_KEY, 'hex'), null).setAutoPadding(false);
    const firstCipherBlock = hex(ecb.update(xored));
    expect(firstCipherBlock.startsWith('AEA2750CEBEBE')).to.equal(true);
    const blob = encryptByKey(v1Key(), nvarcharBytes('blubb'), { iv });
    expect(hex(blob.subarray(36, 52))).to.equal(firstCipherBlock);
  });

  it('writes SHA1(plaintext | authenticator) after the header when an authenticator is given', () => {
    const authenticator = guidStringToBytes('6F9619FF-8B86-D011-B42D-00C04FC964FF');
    const iv = Buffer.from(V1_IV, 'hex');
    const blob = encryptByKey(v1Key(), nvarcharBytes('blubb'), { iv, authenticator });
    const decipher = createDecipheriv('aes-256-cbc', Buffer.from(V1_KEY, 'hex'), iv);
    const plain = Buffer.concat([decipher.update(blob.subarray(36)), decipher.final()]);
    const integrity = createHash('sha1').update(nvarcharBytes('blubb')).update(authenticator).digest();
    expect(hex(plain)).to.equal('0DF0ADBA' + '1400' + '0A00' + hex(integrity) + hex(nvarcharBytes('blubb')));
    expect(blob.length).to.equal(cipherLength(10, { authenticator: true }));
  });

  for (const [name, blobHex, guid, plaintextBytes] of [
    ['F1 (AES_256, SomeText)', F1, '56223600-5BB6-4D9B-BDF3-705E081C5B47', ['SomeText'.length, 2 * 'SomeText'.length]],
    [
      'F2 (AES_128, Password1)',
      F2,
      '96DFC400-A857-4220-B484-2B26243EC848',
      ['Password1'.length, 2 * 'Password1'.length],
    ],
  ] as const) {
    it(`reads the layout of ${name}: GUID, version 2, IV, 68 bytes`, () => {
      const blob = Buffer.from(blobHex, 'hex');
      expect(blob.length).to.equal(68);
      expect(guidBytesToString(blob.subarray(0, 16))).to.equal(guid);
      expect(blob[0]).to.equal(0); // SQL Server clears byte 0 of every key GUID
      expect(blob.readUInt32LE(16)).to.equal(2);
      // varchar or nvarchar, the formula predicts the real length either way.
      for (const bytes of plaintextBytes) expect(cipherLength(bytes)).to.equal(blob.length);
      // The real key is unknown: a key with the right GUID fails to decrypt, an unknown GUID is reported as such.
      const wrongKey = { keyGuid: blob.subarray(0, 16), key: Buffer.alloc(32, 7) };
      expect(decryptByKey(blob, wrongKey)).to.equal(null);
      expect(diagnoseCell(blob, { keyGuid: Buffer.alloc(16), key: Buffer.alloc(32) })).to.include({
        ok: false,
        reason: 'unknown-key-guid',
      });
    });
  }

  it('sizes cells by the section 2 formula', () => {
    expect(cipherLength(500, { authenticator: true })).to.equal(580); // nvarchar(250) -> varbinary(580)
    expect(cipherLength(500, { authenticator: true, hashLength: 32 })).to.equal(580);
    expect(cipherLength(0)).to.equal(52);
    expect(cipherLength(8)).to.equal(68); // 8 + 8 = 16 fills a block: PKCS7 adds a whole one
    expect(cipherLength(7)).to.equal(52);
    expect(cipherLength(10, { blockSize: 8 })).to.equal(16 + 8 + 4 + 24);
    expect(maxPlaintextBytes()).to.equal(7943);
    expect(maxPlaintextBytes({ authenticator: true })).to.equal(7923);
    expect(cipherLength(7943)).to.be.at.most(8000);
    expect(cipherLength(7944)).to.be.above(8000);
    expect(cipherLength(7923, { authenticator: true })).to.be.at.most(8000);
    expect(cipherLength(7924, { authenticator: true })).to.be.above(8000);
    expect(
      cipherLength(maxPlaintextBytes({ authenticator: true, hashLength: 32 }) + 1, {
        authenticator: true,
        hashLength: 32,
      }),
    ).to.be.above(8000);
  });

  it('refuses values past the cell maximum with CellcryptValueTooLong (exit 2)', () => {
    expect(encryptByKey(v1Key(), Buffer.alloc(7943)).length).to.equal(cipherLength(7943));
    expect(() => encryptByKey(v1Key(), Buffer.alloc(7944)))
      .to.throw()
      .that.includes({ code: 'CellcryptValueTooLong', exitCode: 2 });
    expect(() => encryptByKey(v1Key(), Buffer.alloc(7924), { authenticator: Buffer.alloc(16) }))
      .to.throw()
      .with.property('code', 'CellcryptValueTooLong');
  });

  it('converts nvarchar text to UTF-16LE and back, refusing what cannot be nvarchar', () => {
    expect(hex(nvarcharBytes('a€𝐀'))).to.equal('6100AC2035D800DC');
    expect(nvarcharText(Buffer.from('6100AC2035D800DC', 'hex'))).to.equal('a€𝐀');
    expect(nvarcharText(Buffer.from('610062', 'hex'))).to.equal(null); // odd length: varchar bytes
    expect(nvarcharText(Buffer.from('35D86100', 'hex'))).to.equal(null); // high surrogate then 'a'
  });
});
