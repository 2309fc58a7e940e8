import { expect } from 'chai';
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CellcryptError } from '../../../src/common/errors';
import { Secret } from '../../../src/common/secret';
import { keyGuidFor } from '../../../src/cellcrypt/key-identity';
import {
  formatShare,
  parseShare,
  parseShareSpec,
  readShareFile,
  rebuildKey,
  SHARE_FORMAT,
  splitKey,
  writeShareFiles,
  type KeyShare,
} from '../../../src/core/key-shares';
import { rejection } from '../../support/refusal';
import { tempDir } from '../../support/temp';

const ORG = randomUUID();
const KEY = new Secret('Grüße-𝐀1 key "with" spaces; 7!');

function refusalOf(fn: () => unknown): CellcryptError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(CellcryptError);
    expect(error).to.include({ exitCode: 2 });
    return error as CellcryptError;
  }
  throw new Error('expected a refusal');
}

/** The shares as they come back from their files (named share-1.txt ...). */
function roundTrip(shares: KeyShare[]): KeyShare[] {
  return shares.map((share) => parseShare(Buffer.from(formatShare(share), 'utf8'), `share-${share.number}.txt`));
}

/** `count` distinct shares chosen at random. */
function pick(shares: KeyShare[], count: number): KeyShare[] {
  return [...shares].sort(() => Math.random() - 0.5).slice(0, count);
}

/** The file text with one character of `line` (counted from 0) changed. */
function flipOn(text: string, line: number): Buffer {
  const lines = text.split('\n');
  const at = Math.floor(lines[line].length / 2);
  const ch = lines[line][at];
  lines[line] = `${lines[line].slice(0, at)}${ch === 'A' ? 'B' : 'A'}${lines[line].slice(at + 1)}`;
  return Buffer.from(lines.join('\n'), 'utf8');
}

describe('key shares (issue 18: split knowledge)', () => {
  it('K-of-N specs: accepts 2-of-3 and 255-of-255, refuses K<2, K>N, N>255 and other text (exit 2)', () => {
    expect(parseShareSpec('2-of-3')).to.deep.equal({ threshold: 2, total: 3 });
    expect(parseShareSpec('255-of-255')).to.deep.equal({ threshold: 255, total: 255 });
    for (const [spec, reason] of [
      ['1-of-3', /at least 2/],
      ['0-of-2', /at least 2/],
      ['4-of-3', /cannot be more than N/],
      ['2-of-256', /at most 255/],
      ['two-of-three', /expected K-of-N/],
      ['2', /expected K-of-N/],
    ] as const) {
      const error = refusalOf(() => parseShareSpec(spec));
      expect(error.code, spec).to.equal('CellcryptUsage');
      expect(error.message, spec).to.match(reason);
    }
  });

  it('round trip: any K of N shares (from their files) rebuild the key, for several K-of-N', async () => {
    for (const [threshold, total] of [
      [2, 2],
      [2, 3],
      [3, 5],
      [5, 5],
      [4, 9],
      [2, 255],
    ]) {
      const shares = roundTrip(await splitKey(KEY, ORG, { threshold, total }));
      expect(shares.map((s) => s.number)).to.deep.equal(Array.from({ length: total }, (_, i) => i + 1));
      for (let trial = 0; trial < 3; trial++) {
        const rebuilt = await rebuildKey(pick(shares, threshold), ORG);
        expect(rebuilt.reveal() === KEY.reveal(), `${threshold}-of-${total}`).to.equal(true);
      }
      expect((await rebuildKey(shares, ORG)).equals(KEY), `all ${total}`).to.equal(true);
      const short = await rejection(rebuildKey(pick(shares, threshold - 1), ORG));
      expect(short).to.include({ code: 'CellcryptKeyFileInvalid', exitCode: 2 });
      expect(short.message).to.contain(`${threshold - 1} of the ${threshold} key shares needed were given: 1 more`);
    }
  });

  it('a share file: header, fields, base64 data, checksum; no trace of the key; same size for any key', async () => {
    const [share] = await splitKey(KEY, ORG, { threshold: 2, total: 3 });
    const text = formatShare(share);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).to.equal(`${SHARE_FORMAT}: share 1 of 3; any 2 shares of this split rebuild the key`);
    expect(lines.slice(1, -1).map((line) => line.split(':')[0])).to.deep.equal([
      'organization',
      'key-guid',
      'split',
      'share',
      'threshold',
      'shares',
      'data',
    ]);
    expect(lines[2]).to.equal(`key-guid: ${keyGuidFor(KEY)}`);
    expect(lines.at(-1)).to.match(/^sha256: [0-9a-f]{64}$/);
    expect(text).to.match(/^[\x20-\x7e\n]+$/);
    expect(text).not.to.contain(KEY.reveal());
    // A custodian cannot tell a 10-character key from a 100-character one by the share's size.
    const short = (await splitKey(new Secret('Short-key1'), ORG, { threshold: 2, total: 2 }))[0];
    const long = (await splitKey(new Secret(`${'𝐀'.repeat(49)}1!`), ORG, { threshold: 2, total: 2 }))[0];
    expect(short.data.length).to.equal(long.data.length);
    // CRLF line ends (a mail client) keep the share good.
    const crlf = parseShare(Buffer.from(text.replace(/\n/g, '\r\n'), 'utf8'), 'crlf.txt');
    expect(crlf.data.equals(share.data)).to.equal(true);
  });

  it('a flipped byte in the payload, the header line or a field is refused as damaged, naming the file', async () => {
    const [share] = await splitKey(KEY, ORG, { threshold: 2, total: 3 });
    const text = formatShare(share);
    const lines = text.split('\n');
    const dataLine = lines.findIndex((line) => line.startsWith('data: '));
    const shareLine = lines.findIndex((line) => line.startsWith('share: '));
    for (const [what, line] of [
      ['payload', dataLine],
      ['header', 0],
      ['org id', 1],
      ['share number', shareLine],
    ] as const) {
      const bytes =
        what === 'share number' ? Buffer.from(text.replace('share: 1\n', 'share: 2\n')) : flipOn(text, line);
      const error = refusalOf(() => parseShare(bytes, `flipped-${what}.txt`));
      expect(error.code, what).to.equal('CellcryptKeyFileInvalid');
      expect(error.message, what).to.equal(
        `flipped-${what}.txt is damaged: its content does not match its sha256: line`,
      );
    }
    // One bit of the binary share itself (decoded, flipped, encoded again).
    const data = Buffer.from(share.data);
    data[5] ^= 1;
    const bit = text.replace(share.data.toString('base64'), data.toString('base64'));
    expect(refusalOf(() => parseShare(Buffer.from(bit), 'bit.txt')).message).to.contain('bit.txt is damaged');
  });

  it('refuses files that are not shares, truncated, or malformed behind a valid checksum, naming the file', () => {
    const sealed = (body: string[]) => {
      const share = { organization: ORG, keyGuid: keyGuidFor(KEY), split: '0123456789abcdef', number: 1 };
      const good = formatShare({ ...share, threshold: 2, total: 3, data: Buffer.alloc(321, 7) });
      // Re-seal edited lines with a correct checksum, as a forger (or a buggy tool) would.
      const lines = [...good.trimEnd().split('\n').slice(0, -1)];
      const edited = body.length ? body : lines;
      const sum = createHash('sha256')
        .update(edited.map((l) => `${l}\n`).join(''))
        .digest('hex');
      return Buffer.from(`${edited.join('\n')}\nsha256: ${sum}\n`);
    };
    const good = sealed([]).toString();
    const lines = good.trimEnd().split('\n').slice(0, -1);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['empty', Buffer.alloc(0), /empty\.txt is empty/],
      ['a key file', Buffer.from('\uFEFFPassw0rd!xyz\nsha256:ab\n'), /a key file\.txt is not a cellcrypt key share/],
      ['truncated', Buffer.from(good.split('\n').slice(0, 5).join('\n')), /truncated\.txt has no sha256: line/],
      ['binary', Buffer.from([0xff, 0xfe, 0x00, 0x41]), /binary\.txt is not text/],
      ['another format', sealed([`cellcrypt key share (format 9)`, ...lines.slice(1)]), /of a format this/],
      ['unknown field', sealed([...lines, 'extra: 1']), /unexpected line "extra: 1"/],
      ['missing field', sealed(lines.filter((l) => !l.startsWith('split'))), /missing split/],
      ['share 0', sealed(lines.map((l) => (l.startsWith('share:') ? 'share: 0' : l))), /"share" is not a whole/],
      ['K > N', sealed(lines.map((l) => (l.startsWith('threshold') ? 'threshold: 4' : l))), /"threshold"/],
      ['bad GUID', sealed(lines.map((l) => (l.startsWith('key-guid') ? 'key-guid: nope' : l))), /not a GUID/],
      ['bad data', sealed(lines.map((l) => (l.startsWith('data') ? 'data: *' : l))), /not base64/],
    ];
    for (const [name, bytes, reason] of cases) {
      const error = refusalOf(() => parseShare(bytes, `${name}.txt`));
      expect(error.code, name).to.equal('CellcryptKeyFileInvalid');
      expect(error.message, name).to.match(reason);
      expect(error.message.startsWith(`${name}.txt`), name).to.equal(true);
    }
  });

  it('refuses mixed keys, orgs, splits, a duplicate, another org and a forged share, by file name', async () => {
    const shares = roundTrip(await splitKey(KEY, ORG, { threshold: 2, total: 3 }));
    const other = new Secret('Another-key-99!');
    const ofOtherKey = roundTrip(await splitKey(other, ORG, { threshold: 2, total: 3 }))[1];
    const ofOtherOrg = roundTrip(await splitKey(KEY, randomUUID(), { threshold: 2, total: 3 }))[1];
    const ofOtherSplit = roundTrip(await splitKey(KEY, ORG, { threshold: 2, total: 3 }))[1];
    const named = (share: KeyShare, file: string) => ({ ...share, file });
    const cases: Array<[string, KeyShare[], string | undefined, RegExp]> = [
      [
        'another key',
        [shares[0], named(ofOtherKey, 'other-key.txt')],
        ORG,
        /^other-key\.txt is a share of key .*, share-1\.txt of key/,
      ],
      [
        'another org, mixed',
        [shares[0], named(ofOtherOrg, 'other-org.txt')],
        ORG,
        /^other-org\.txt is a share of organization/,
      ],
      [
        'another split',
        [shares[0], named(ofOtherSplit, 'other-split.txt')],
        ORG,
        /^other-split\.txt and share-1\.txt come from two different splits/,
      ],
      [
        'a duplicated share',
        [shares[1], named(shares[1], 'copy.txt')],
        ORG,
        /^copy\.txt and share-2\.txt are both share 2 of 3/,
      ],
      ['another org than the database', shares.slice(0, 2), randomUUID(), /^share-1\.txt is a share of organization/],
    ];
    for (const [name, given, org, reason] of cases) {
      const error = await rejection(rebuildKey(given, org));
      expect(error, name).to.include({ code: 'CellcryptKeyFileInvalid', exitCode: 2 });
      expect(error.message, name).to.match(reason);
    }
    // A share whose bytes were changed and whose checksum was recomputed: only the GUID notices.
    const forged = { ...shares[1], data: Buffer.from(shares[1].data) };
    forged.data[3] ^= 0x40;
    const error = await rejection(rebuildKey([shares[0], forged], ORG));
    expect(error.message).to.match(/^the key shares \(share-1\.txt, share-2\.txt\) do not rebuild key /);
    // Enough shares of another key rebuild that key, and the GUID says so.
    const foreign = roundTrip(await splitKey(other, ORG, { threshold: 2, total: 3 }));
    expect((await rebuildKey(foreign.slice(1), ORG)).equals(other)).to.equal(true);
  });

  it('writes one 0600 file per share, never over an existing one, and leaves no partial set behind', async () => {
    const dir = join(tempDir(), 'shares'); // created by the writer
    const shares = await splitKey(KEY, ORG, { threshold: 2, total: 3 });
    const files = writeShareFiles(dir, shares);
    expect(files).to.have.length(3);
    expect(statSync(dir).mode & 0o777).to.equal(0o700);
    for (const file of files) expect(statSync(file).mode & 0o777, file).to.equal(0o600);
    const read = await Promise.all(files.map((file) => readShareFile(file)));
    expect((await rebuildKey(read.slice(1), ORG)).equals(KEY)).to.equal(true);
    const before = files.map((file) => readFileSync(file, 'utf8'));
    // Another 2-of-3 of the same key has the same file names: refused, and none of it is written.
    const again = await splitKey(KEY, ORG, { threshold: 2, total: 3 });
    const refused = refusalOf(() => writeShareFiles(dir, again));
    expect(refused.message).to.contain('nothing is overwritten');
    expect(files.map((file) => readFileSync(file, 'utf8'))).to.deep.equal(before);
    expect(readdirSync(dir)).to.have.length(3);
    const missing = await rejection(readShareFile(join(dir, 'nope.txt')));
    expect(missing.message).to.contain(`cannot read key share ${join(dir, 'nope.txt')}`);
  });
});
