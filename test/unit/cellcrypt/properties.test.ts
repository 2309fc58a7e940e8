import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  cipherLength,
  decryptByKey,
  deriveKey,
  diagnoseCell,
  encryptByKey,
  keyGuidFromIdentity,
  maxPlaintextBytes,
  nvarcharBytes,
  nvarcharText,
  type AesAlgorithm,
  type CellFailure,
  type CellKey,
  type Derivation,
} from '../../../src/cellcrypt';

const FAILURES: CellFailure[] = [
  'truncated',
  'unknown-key-guid',
  'unsupported-version',
  'bad-ciphertext-length',
  'bad-padding',
  'bad-magic',
  'length-mismatch',
  'integrity-mismatch',
  'authenticator-required',
  'unexpected-authenticator',
];

/**
 * An encoder written from reference section 1 with node:crypto directly, independent of the
 * codec: it builds any header (version, integrity length, hash, magic) the codec never writes.
 */
function sealByHand(
  cellKey: CellKey,
  plaintext: Buffer,
  options: {
    version?: number;
    hash?: 'sha1' | 'sha256';
    authenticator?: Buffer;
    magic?: number;
    integrityLength?: number;
    iv?: Buffer;
  } = {},
): Buffer {
  const integrity =
    options.hash && options.authenticator
      ? createHash(options.hash).update(plaintext).update(options.authenticator).digest()
      : Buffer.alloc(0);
  const header = Buffer.alloc(8);
  header.writeUInt32LE(options.magic ?? 0xbaadf00d, 0);
  header.writeUInt16LE(options.integrityLength ?? integrity.length, 4);
  header.writeUInt16LE(plaintext.length, 6);
  const iv = options.iv ?? randomBytes(16);
  const cipher = createCipheriv(`aes-${cellKey.key.length * 8}-cbc`, cellKey.key, iv);
  const version = Buffer.alloc(4);
  version.writeUInt32LE(options.version ?? 1, 0);
  const body = Buffer.concat([cipher.update(Buffer.concat([header, integrity, plaintext])), cipher.final()]);
  return Buffer.concat([cellKey.keyGuid, version, iv, body]);
}

const derivationArb = fc.constantFrom<Derivation>('sql2016', 'sql2017');
const algorithmArb = fc.constantFrom<AesAlgorithm>('AES_128', 'AES_192', 'AES_256');
const keyArb = fc
  .tuple(
    fc.string({ minLength: 1, maxLength: 30 }),
    fc.string({ minLength: 1, maxLength: 30 }),
    derivationArb,
    algorithmArb,
  )
  .map(([source, identity, derivation, algorithm]): CellKey => ({
    keyGuid: keyGuidFromIdentity(identity),
    key: deriveKey(source, derivation, algorithm),
    algorithm,
  }));
const authenticatorArb = fc.option(
  fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
  { nil: undefined },
);

/**
 * Plaintexts of every size up to the cell maximum (a repeated random pattern keeps generation
 * fast), or nvarchar text with non-BMP characters.
 */
function plaintextArb(withAuthenticator: boolean): fc.Arbitrary<Buffer> {
  const max = maxPlaintextBytes({ authenticator: withAuthenticator });
  const sized = fc
    .tuple(fc.integer({ min: 0, max }), fc.uint8Array({ minLength: 1, maxLength: 37 }))
    .map(([length, pattern]) => Buffer.from(Array.from({ length }, (_, i) => pattern[i % pattern.length])));
  const edges = fc.constantFrom(0, 1, 7, 8, 9, 23, 24, max - 1, max).map((length) => randomBytes(length));
  const text = fc.fullUnicodeString({ maxLength: 200 }).map(nvarcharBytes);
  return fc.oneof(sized, edges, text);
}

const cellArb = authenticatorArb.chain((authenticator) =>
  fc.record({
    key: keyArb,
    plaintext: plaintextArb(authenticator !== undefined),
    authenticator: fc.constant(authenticator),
  }),
);

describe('cellcrypt properties', () => {
  it('decrypt(encrypt(x)) = x, at the length the formula predicts, for every derivation and AES size', () => {
    fc.assert(
      fc.property(cellArb, ({ key, plaintext, authenticator }) => {
        const blob = encryptByKey(key, plaintext, { authenticator });
        expect(blob.length).to.equal(cipherLength(plaintext.length, { authenticator: authenticator !== undefined }));
        expect(blob.readUInt32LE(16)).to.equal(1);
        expect(decryptByKey(blob, key, authenticator)?.equals(plaintext)).to.equal(true);
        const diagnosis = diagnoseCell(blob, [{ keyGuid: Buffer.alloc(16, 0xee), key: key.key }, key], authenticator);
        expect(diagnosis).to.deep.include({
          ok: true,
          version: 1,
          integrity: authenticator ? 'sha1' : 'none',
          integrityChecked: !!authenticator,
        });
      }),
      { numRuns: 300 },
    );
  });

  it('writes exactly what the hand-built encoder writes for the same IV', () => {
    fc.assert(
      fc.property(cellArb, ({ key, plaintext, authenticator }) => {
        const iv = randomBytes(16);
        const byHand = sealByHand(key, plaintext, { iv, authenticator, hash: authenticator ? 'sha1' : undefined });
        expect(encryptByKey(key, plaintext, { iv, authenticator }).equals(byHand)).to.equal(true);
      }),
      { numRuns: 60 },
    );
  });

  it('round-trips nvarchar text, surrogate pairs included', () => {
    fc.assert(
      fc.property(keyArb, fc.fullUnicodeString({ maxLength: 300 }), (key, text) => {
        expect(nvarcharText(decryptByKey(encryptByKey(key, nvarcharBytes(text)), key) as Buffer)).to.equal(text);
      }),
      { numRuns: 100 },
    );
  });

  /**
   * One flipped byte. With an authenticator every flip is caught EXCEPT version 1 -> 2 (byte 16
   * XOR 3): both versions are readable and mean the same layout, and the header is not covered
   * by the hash, so that blob decrypts to the same value (as it would on SQL Server).
   * Without an authenticator the format cannot catch everything: a flip in IV bytes 8..15 or
   * in a later cipher block only changes plaintext bytes. What holds: the GUID, the version,
   * IV bytes 0..7 (they cover the header) and the first cipher block are always caught, and no
   * other flip can give back the original plaintext.
   */
  it('never returns the original plaintext after a flipped byte, and says why when it returns null', () => {
    fc.assert(
      fc.property(
        cellArb,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        ({ key, plaintext, authenticator }, at, mask) => {
          const blob = encryptByKey(key, plaintext, { authenticator });
          const position = at % blob.length;
          const damaged = Buffer.from(blob);
          damaged[position] ^= mask;
          const result = decryptByKey(damaged, key, authenticator);
          const diagnosis = diagnoseCell(damaged, key, authenticator);
          expect(diagnosis.ok).to.equal(result !== null);
          if (!diagnosis.ok) expect(FAILURES).to.include(diagnosis.reason);

          if (position === 16 && damaged[16] === 2) {
            expect(result?.equals(plaintext)).to.equal(true); // version 1 -> 2: same meaning
            return;
          }
          if (authenticator !== undefined || position < 20 + 8 || (position >= 36 && position < 52)) {
            expect(result, `flip at ${position}`).to.equal(null);
          } else {
            expect(result === null || !result.equals(plaintext), `flip at ${position}`).to.equal(true);
          }
          if (position < 16) expect(diagnosis).to.include({ reason: 'unknown-key-guid' });
          else if (position < 20) expect(diagnosis).to.include({ reason: 'unsupported-version' });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('cannot detect a version byte changed from 1 to 2, even with an authenticator (documented limit)', () => {
    const key: CellKey = { keyGuid: keyGuidFromIdentity('id'), key: deriveKey('source', 'sql2016') };
    const authenticator = Buffer.alloc(16, 3);
    const blob = encryptByKey(key, nvarcharBytes('secret'), { authenticator });
    blob[16] ^= 0x03;
    expect(diagnoseCell(blob, key, authenticator)).to.include({ ok: true, version: 2, integrity: 'sha1' });
  });

  it('fails with integrity-mismatch for another authenticator, and names a missing or unexpected one', () => {
    fc.assert(
      fc.property(
        keyArb,
        plaintextArb(true),
        fc.uint8Array({ maxLength: 16 }),
        fc.uint8Array({ maxLength: 16 }),
        (key, plaintext, a, b) => {
          fc.pre(!Buffer.from(a).equals(Buffer.from(b)));
          const blob = encryptByKey(key, plaintext, { authenticator: Buffer.from(a) });
          expect(decryptByKey(blob, key, Buffer.from(b))).to.equal(null);
          expect(diagnoseCell(blob, key, Buffer.from(b))).to.include({ ok: false, reason: 'integrity-mismatch' });
          expect(decryptByKey(blob, key)).to.equal(null);
          expect(diagnoseCell(blob, key)).to.include({ ok: false, reason: 'authenticator-required' });
          const unchecked = diagnoseCell(blob, key, undefined, { allowUncheckedIntegrity: true });
          expect(unchecked).to.include({ ok: true, integrityChecked: false, integrity: 'sha1' });
          expect(unchecked.ok && unchecked.plaintext.equals(plaintext)).to.equal(true);
          const plain = encryptByKey(key, plaintext.subarray(0, 100));
          expect(diagnoseCell(plain, key, Buffer.from(a))).to.include({
            ok: false,
            reason: 'unexpected-authenticator',
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('returns null for every truncation', () => {
    fc.assert(
      fc.property(cellArb, fc.nat(), ({ key, plaintext, authenticator }, cut) => {
        const blob = encryptByKey(key, plaintext, { authenticator });
        const truncated = blob.subarray(0, cut % blob.length);
        expect(decryptByKey(truncated, key, authenticator)).to.equal(null);
        const diagnosis = diagnoseCell(truncated, key, authenticator);
        expect(diagnosis.ok).to.equal(false);
        if (truncated.length < 36) expect(diagnosis).to.include({ reason: 'truncated' });
      }),
      { numRuns: 200 },
    );
  });

  it('returns null for a key with the right GUID but other key bytes', () => {
    fc.assert(
      fc.property(keyArb, plaintextArb(false), (key, plaintext) => {
        const blob = encryptByKey(key, plaintext);
        const impostor = { keyGuid: key.keyGuid, key: Buffer.from(key.key.map((byte) => byte ^ 0x5a)) };
        expect(decryptByKey(blob, impostor)).to.equal(null);
        expect(
          diagnoseCell(blob, key.keyGuid.equals(Buffer.alloc(16)) ? [] : { keyGuid: Buffer.alloc(16), key: key.key }),
        ).to.include({
          reason: 'unknown-key-guid',
        });
      }),
      { numRuns: 100 },
    );
  });

  it('reads version-2 blobs with SHA-256 or SHA-1 integrity, and checks them', () => {
    fc.assert(
      fc.property(
        keyArb,
        plaintextArb(true),
        fc.uint8Array({ minLength: 1, maxLength: 16 }),
        fc.constantFrom<'sha1' | 'sha256'>('sha1', 'sha256'),
        (key, rawPlaintext, a, hash) => {
          const authenticator = Buffer.from(a);
          const plaintext = rawPlaintext.subarray(0, maxPlaintextBytes({ authenticator: true, hashLength: 32 }));
          const blob = sealByHand(key, plaintext, { version: 2, hash, authenticator });
          expect(blob.length).to.equal(
            cipherLength(plaintext.length, { authenticator: true, hashLength: hash === 'sha1' ? 20 : 32 }),
          );
          expect(decryptByKey(blob, key, authenticator)?.equals(plaintext)).to.equal(true);
          expect(diagnoseCell(blob, key, authenticator)).to.include({
            ok: true,
            version: 2,
            integrity: hash,
            integrityChecked: true,
          });
          const other = Buffer.concat([authenticator, Buffer.from([1])]);
          expect(diagnoseCell(blob, key, other)).to.include({ ok: false, reason: 'integrity-mismatch' });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('names the header problems of hand-built blobs', () => {
    const key: CellKey = { keyGuid: keyGuidFromIdentity('id'), key: deriveKey('source', 'sql2017') };
    const plaintext = nvarcharBytes('value');
    const authenticator = Buffer.alloc(16, 9);
    const reasonOf = (blob: Buffer, auth?: Buffer) => {
      const diagnosis = diagnoseCell(blob, key, auth);
      return diagnosis.ok ? 'ok' : diagnosis.reason;
    };
    expect(reasonOf(sealByHand(key, plaintext, { version: 3 }))).to.equal('unsupported-version');
    expect(reasonOf(sealByHand(key, plaintext, { version: 0 }))).to.equal('unsupported-version');
    expect(reasonOf(sealByHand(key, plaintext, { magic: 0xbaadf00e }))).to.equal('bad-magic');
    expect(
      reasonOf(sealByHand(key, plaintext, { integrityLength: 16, hash: 'sha1', authenticator }), authenticator),
    ).to.equal('length-mismatch');
    expect(reasonOf(sealByHand(key, plaintext, { integrityLength: 20 }))).to.equal('length-mismatch');
    expect(reasonOf(sealByHand(key, plaintext, { version: 2 }))).to.equal('ok');
    const blob = sealByHand(key, plaintext);
    expect(reasonOf(Buffer.concat([blob, Buffer.alloc(5)]))).to.equal('bad-ciphertext-length');
    expect(reasonOf(blob.subarray(0, 36))).to.equal('truncated');
    expect(reasonOf(blob.subarray(0, 10))).to.equal('truncated');
    expect(diagnoseCell(blob.subarray(0, 10), key)).to.not.have.property('keyGuid');
    expect(diagnoseCell(blob.subarray(0, 40), key))
      .to.have.property('keyGuid')
      .that.deep.equals(key.keyGuid);
    expect(reasonOf(Buffer.concat([blob, Buffer.alloc(16)]))).to.be.oneOf([
      'bad-padding',
      'length-mismatch',
      'bad-magic',
    ]);
  });
});
