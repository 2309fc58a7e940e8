import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import fc from 'fast-check';
import { Secret } from '../../../src/common/secret';
import { CellcryptError } from '../../../src/common/errors';
import { formatKeyFile, parseKeyFile, readKeyFile, type KeyFileEncoding } from '../../../src/core/key-file';

const ENCODINGS: KeyFileEncoding[] = ['utf8', 'utf16le', 'base64'];
const DETECTED = { utf8: 'utf8-bom', utf16le: 'utf16le-bom', base64: 'base64' } as const;
const AWKWARD = [
  'Passw0rd!xyz',
  '𝐀𝐁𝐂𝐃-1234-😀-𝒳', // non-BMP letters and an emoji
  'e\u0301te\u0301-2024!', // combining acute accents (not normalized)
  'كلمة-السر-7 שלום', // right-to-left text
  `it's "quoted" 1 \`tick\``,
  "a]b?c;d--1 '); DROP TABLE x; --",
  '密码密码密码9!',
  'trailing space inside ok 1! ',
];

const sha256 = (text: string): string => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');

function parseError(bytes: Buffer): CellcryptError {
  try {
    parseKeyFile(bytes);
  } catch (error) {
    expect(error).to.be.instanceOf(CellcryptError);
    expect(error).to.include({ code: 'CellcryptKeyFileInvalid', exitCode: 2 });
    return error as CellcryptError;
  }
  throw new Error('expected parseKeyFile to refuse the file');
}

describe('key file', () => {
  it('writes UTF-8 with BOM, UTF-16LE with BOM, or base64, each with the checksum line', () => {
    const key = 'Grüße-𝐀1';
    const text = `${key}\nsha256:${sha256(key)}\n`;
    expect(
      formatKeyFile(new Secret(key), 'utf8').equals(
        Buffer.concat([Buffer.from('efbbbf', 'hex'), Buffer.from(text, 'utf8')]),
      ),
    ).to.equal(true);
    expect(
      formatKeyFile(new Secret(key), 'utf16le').equals(
        Buffer.concat([Buffer.from('fffe', 'hex'), Buffer.from(text, 'utf16le')]),
      ),
    ).to.equal(true);
    const base64 = `base64:${Buffer.from(key, 'utf8').toString('base64')}\nsha256:${sha256(key)}\n`;
    expect(formatKeyFile(new Secret(key), 'base64').toString('latin1')).to.equal(base64);
  });

  for (const encoding of ENCODINGS) {
    it(`round-trips awkward keys through ${encoding}`, () => {
      for (const key of AWKWARD) {
        const parsed = parseKeyFile(formatKeyFile(new Secret(key), encoding));
        expect(parsed.passphrase.reveal(), key).to.equal(key);
        expect(parsed).to.include({ encoding: DETECTED[encoding], checksum: 'verified' });
      }
    });
  }

  it('round-trips any writable key in every encoding (property)', () => {
    const writable = fc
      .fullUnicodeString({ minLength: 1, maxLength: 60 })
      .filter((key) => !/\p{Cc}/u.test(key) && !key.startsWith('base64:'));
    fc.assert(
      fc.property(writable, fc.constantFrom(...ENCODINGS), (key, encoding) => {
        expect(parseKeyFile(formatKeyFile(new Secret(key), encoding)).passphrase.reveal()).to.equal(key);
      }),
      { numRuns: 300 },
    );
  });

  it('reads files without BOM, with CRLF, UTF-16BE, and without the checksum line', () => {
    const key = 'Ключ-2024!';
    const line = `sha256:${sha256(key)}`;
    expect(parseKeyFile(Buffer.from(`${key}\n${line}\n`, 'utf8'))).to.deep.include({
      encoding: 'utf8',
      checksum: 'verified',
    });
    expect(
      parseKeyFile(
        Buffer.from(`${key}\r\n${line.toUpperCase().replace('SHA256', 'sha256')}\r\n`, 'utf8'),
      ).passphrase.reveal(),
    ).to.equal(key);
    const bigEndian = Buffer.concat([Buffer.from('feff', 'hex'), Buffer.from(`${key}\n${line}`, 'utf16le').swap16()]);
    expect(parseKeyFile(bigEndian)).to.deep.include({ encoding: 'utf16be-bom', checksum: 'verified' });
    for (const text of [key, `${key}\n`, `${key}\r\n`]) {
      const parsed = parseKeyFile(Buffer.from(text, 'utf8'));
      expect(parsed.passphrase.reveal()).to.equal(key);
      expect(parsed.checksum).to.equal('absent');
    }
    const base64 = parseKeyFile(Buffer.from(`base64:${Buffer.from(key).toString('base64')}`, 'utf8'));
    expect(base64).to.deep.include({ encoding: 'base64', checksum: 'absent' });
    expect(base64.passphrase.reveal()).to.equal(key);
  });

  it('detects a key file damaged by an ANSI save (re-encoded, replaced by ?, or double-encoded)', () => {
    const key = 'Grüße-密码-𝐀-1!';
    const good = formatKeyFile(new Secret(key), 'utf8').subarray(3).toString('utf8');
    const latin1Bytes = Buffer.from(good, 'latin1'); // every UTF-16 unit cut to one byte
    const questionMarks = Buffer.from(good.replace(/[^\x00-\x7F]/gu, '?'), 'utf8');
    const doubleEncoded = Buffer.from(Buffer.from(good, 'utf8').toString('latin1'), 'utf8');
    for (const damaged of [latin1Bytes, questionMarks, doubleEncoded]) {
      const error = parseError(damaged);
      expect(error.message).to.match(/UTF-8|encoding/);
      expect(error.hint).to.contain('cellcrypt show-key --out F');
      expect(error.message + error.hint).not.to.contain(key);
    }
    expect(parseError(questionMarks).message).to.match(/checksum.*wrong encoding \(e\.g\. ANSI\)/);
  });

  it('refuses a wrong checksum and malformed files, without quoting the key', () => {
    const key = 'Secret-Key-42!';
    const cases: Array<[string, Buffer, RegExp]> = [
      ['wrong checksum', Buffer.from(`${key}\nsha256:${sha256('other')}\n`), /checksum/],
      ['empty', Buffer.alloc(0), /empty/],
      ['only a BOM', Buffer.from('efbbbf', 'hex'), /no key/],
      ['empty first line', Buffer.from(`\nsha256:${sha256('')}\n`), /no key/],
      ['too large', Buffer.alloc(64 * 1024 + 1, 0x41), /larger/],
      ['invalid UTF-8', Buffer.from([0x41, 0xc3, 0x28, 0x31]), /UTF-8/],
      ['odd UTF-16', Buffer.from('fffe410042', 'hex'), /odd/],
      [
        'lone surrogate',
        Buffer.concat([Buffer.from('fffe', 'hex'), Buffer.from('a1!\uD835xyzabc', 'utf16le')]),
        /surrogate/,
      ],
      ['UTF-16 without BOM', Buffer.from(`${key}\n`, 'utf16le'), /control/],
      ['bad base64', Buffer.from('base64:abc$\n'), /base64/],
      [
        'base64 of invalid UTF-8',
        Buffer.from(`base64:${Buffer.from([0xff, 0xfe, 0x41]).toString('base64')}\n`),
        /UTF-8/,
      ],
      ['extra line', Buffer.from(`${key}\nsha256:${sha256(key)}\nmore\n`), /3 lines/],
      ['malformed checksum line', Buffer.from(`${key}\nsha256:1234\n`), /64 hexadecimal/],
      ['second key line', Buffer.from(`${key}\n${key}\n`), /sha256/],
    ];
    for (const [name, bytes, message] of cases) {
      const error = parseError(bytes);
      expect(error.message, name).to.match(message);
      expect(error.message, name).not.to.contain(key);
    }
  });

  it('accepts blank lines at the end (issue 16: "bad checksum line") and names whitespace around the key', () => {
    const key = 'Blank-Lines-After-1!';
    for (const tail of ['\n\n', '\r\n\r\n', '\n  \n', '\n\n\n']) {
      for (const body of [`${key}\nsha256:${sha256(key)}${tail}`, `${key}${tail}`]) {
        const parsed = parseKeyFile(Buffer.from(body));
        expect(parsed.passphrase.reveal(), JSON.stringify(body)).to.equal(key);
        expect(parsed.edgeWhitespace).to.equal(undefined);
      }
    }
    // A checksum of the key without the space: the space is the mistake, and the message says so.
    const spaced = parseError(Buffer.from(`${key} \nsha256:${sha256(key)}\n`));
    expect(spaced.message).to.contain('ends with 1 space (U+0020) that is not part of the key');
    expect(spaced.hint).to.contain('remove the whitespace');
    // No checksum: the key is taken as written, and the whitespace is named for the caller to show.
    const unchecked = parseKeyFile(Buffer.from(`\u00a0${key}  \n`));
    expect(unchecked.passphrase.reveal()).to.equal(`\u00a0${key}  `);
    expect(unchecked.edgeWhitespace).to.equal('starts with 1 space (U+00A0) and ends with 2 spaces (U+0020)');
    // A checksum over the spaces proves them part of the key: nothing to say.
    expect(parseKeyFile(Buffer.from(`${key} \nsha256:${sha256(`${key} `)}\n`)).edgeWhitespace).to.equal(undefined);
  });

  it('refuses to write keys it could not read back', () => {
    for (const key of ['', 'line\nbreak-1!', 'tab\there-1!', 'lone\uD835surrogate-1!']) {
      expect(() => formatKeyFile(new Secret(key), 'utf8'), JSON.stringify(key)).to.throw(CellcryptError);
    }
    expect(() => formatKeyFile(new Secret('base64:Looks-Like-1!'), 'utf8')).to.throw(/--encoding base64/);
    expect(parseKeyFile(formatKeyFile(new Secret('base64:Looks-Like-1!'), 'base64')).passphrase.reveal()).to.equal(
      'base64:Looks-Like-1!',
    );
  });

  describe('readKeyFile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellcrypt-key-file-'));

    it('reads a file and standard input (-)', async () => {
      const key = 'From-𝐅𝐢𝐥𝐞-1!';
      const path = join(dir, 'key.txt');
      writeFileSync(path, formatKeyFile(new Secret(key), 'utf16le'));
      expect((await readKeyFile(path)).passphrase.reveal()).to.equal(key);
      const stdin = Readable.from([
        formatKeyFile(new Secret(key), 'utf8').subarray(0, 5),
        formatKeyFile(new Secret(key), 'utf8').subarray(5),
      ]);
      expect((await readKeyFile('-', stdin)).passphrase.reveal()).to.equal(key);
    });

    it('refuses oversized input from a file and from stdin', async () => {
      const path = join(dir, 'big.txt');
      writeFileSync(path, Buffer.alloc(200 * 1024, 0x41));
      await expectRejection(readKeyFile(path), /larger/);
      await expectRejection(
        readKeyFile('-', Readable.from([Buffer.alloc(40 * 1024, 0x41), Buffer.alloc(40 * 1024, 0x41)])),
        /larger/,
      );
    });

    it('names the path and the OS reason when the file cannot be read', async () => {
      const missing = join(dir, 'missing.txt');
      const error = await expectRejection(readKeyFile(missing), /ENOENT/);
      expect(error.message).to.contain(missing);
      await expectRejection(readKeyFile(dir), /EISDIR/);
    });
  });
});

async function expectRejection(promise: Promise<unknown>, message: RegExp): Promise<CellcryptError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(CellcryptError);
    expect(error).to.include({ code: 'CellcryptKeyFileInvalid', exitCode: 2 });
    expect((error as Error).message).to.match(message);
    return error as CellcryptError;
  }
  throw new Error('expected a rejection');
}
