import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { loadSqlScripts, type RawDb, type RawTarget } from '../support/raw-db';

/**
 * The PL/pgSQL cell codec (src/engines/postgres/sql/10-codec.sql) against the reference vectors
 * of reference/sqlserver-cell-encryption.md section 4 and against blobs built here with
 * node:crypto straight from the format description (not with src/cellcrypt: that cross-check is
 * codec-cross-check.test.ts). pgcrypto is moved to a schema outside search_path first, so every
 * call the script makes must be schema-qualified.
 */

const V1 = {
  keySource: 'password to derive key',
  keySql2016: 'AF8C9D22CE9B6BBE5E4207608A2D4D9494B8532AD2F358C382F02BB3303A36E6',
  keySql2017: '3E0D8E9F3826A2B2923FC9597BBAA5CA997CDDE9800F04F863ABC3C8F2FD523B',
  identityValue: 'password to derive guid',
  keyGuid: '0022DE016CEF1A3C0F3A889881EF77E7',
  keyGuidString: '01DE2200-EF6C-3C1A-0F3A-889881EF77E7',
  iv: '91B6D30FAB2FFBC7FFEAE32D3A52A6F8',
  blubbPrefix: '0022DE016CEF1A3C0F3A889881EF77E70100000091B6D30FAB2FFBC7FFEAE32D3A52A6F8AEA2750CEBEBE',
};

const hex = (value: string) => Buffer.from(value, 'hex');
const utf16 = (text: string) => Buffer.from(text, 'utf16le');
const sha = (algorithm: 'sha1' | 'sha256', ...parts: Buffer[]) =>
  createHash(algorithm).update(Buffer.concat(parts)).digest();

interface InnerOptions {
  hash?: 'sha1' | 'sha256';
  magic?: number;
  plaintextLength?: number;
  integrityLength?: number;
}

/** inner = magic | integrityLength | plaintextLength | integrity | plaintext (section 1). */
function innerOf(plaintext: Buffer, authenticator: Buffer | null, options: InnerOptions = {}): Buffer {
  const integrity = authenticator === null ? Buffer.alloc(0) : sha(options.hash ?? 'sha1', plaintext, authenticator);
  const header = Buffer.alloc(8);
  header.writeUInt32LE(options.magic ?? 0xbaadf00d, 0);
  header.writeUInt16LE(options.integrityLength ?? integrity.length, 4);
  header.writeUInt16LE(options.plaintextLength ?? plaintext.length, 6);
  return Buffer.concat([header, integrity, plaintext]);
}

/** blob = keyGuid | version (LE32) | iv | AES-CBC(inner), PKCS7 unless `pkcs7` is false. */
function sealByHand(key: Buffer, keyGuid: Buffer, iv: Buffer, inner: Buffer, version = 1, pkcs7 = true): Buffer {
  const cipher = createCipheriv(`aes-${key.length * 8}-cbc`, key, iv);
  cipher.setAutoPadding(pkcs7);
  const versionBytes = Buffer.alloc(4);
  versionBytes.writeUInt32LE(version, 0);
  return Buffer.concat([keyGuid, versionBytes, iv, cipher.update(inner), cipher.final()]);
}

function cipherLength(plaintextBytes: number, integrityBytes: number): number {
  return (Math.floor((8 + plaintextBytes + integrityBytes) / 16) + 1) * 16 + 16 + 16 + 4;
}

async function expectSqlError(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect((error as { code?: string }).code, (error as Error).message).to.equal(code);
    return error as Error;
  }
  throw new Error(`expected SQLSTATE ${code}`);
}

export function scenarios(target: RawTarget): void {
  describe(`SQL cell codec on ${target.name}`, function () {
    let db: RawDb;

    async function one<T = any>(sql: string, params: unknown[] = []): Promise<T> {
      const rows = await db.query<{ v: T }>(sql, params);
      return rows[0].v;
    }

    const encryptCell = (
      key: Buffer | null,
      keyGuid: Buffer | null,
      plaintext: Buffer | null,
      authenticator: Buffer | null,
      iv: Buffer | null,
    ) =>
      one<Buffer | null>('select cellcrypt.encrypt_cell($1, $2, $3, $4, $5) as v', [
        key,
        keyGuid,
        plaintext,
        authenticator,
        iv,
      ]);

    const decryptCell = (key: Buffer | null, blob: Buffer | null, authenticator: Buffer | null) =>
      one<Buffer | null>('select cellcrypt.decrypt_cell($1, $2, $3) as v', [key, blob, authenticator]);

    /** decrypt_cell over many blobs in one statement (hex literals: nothing but [0-9a-f] is inlined). */
    async function decryptAll(
      key: Buffer,
      blobs: Buffer[],
      authenticator: Buffer | null,
    ): Promise<Array<Buffer | null>> {
      const values = blobs.map((blob, i) => `(${i}, '${blob.toString('hex')}')`).join(', ');
      const rows = await db.query<{ v: Buffer | null }>(
        `select cellcrypt.decrypt_cell($1, decode(h, 'hex'), $2) ` +
          `as v from (values ${values}) as blobs(i, h) order by i`,
        [key, authenticator],
      );
      return rows.map((row) => row.v);
    }

    before(async function () {
      db = await target.open();
      // An awkward schema name: quoting (space) and String.replace patterns ($&) must both survive.
      await db.exec('create schema "cc pgcrypto$&"; alter extension pgcrypto set schema "cc pgcrypto$&"');
      await loadSqlScripts(db, ['10-codec.sql']);
      await db.exec('set search_path = public');
    });

    after(async () => {
      await db?.close();
    });

    describe('utf16le / from_utf16le', () => {
      const samples: Array<[string, string]> = [
        ['empty', ''],
        ['ASCII', 'P@ssw0rd!'],
        ['ASCII punctuation and backslashes', String.raw`a\b\\c\000'"?%_` + '\t\n'],
        ['all of ASCII but U+0000', Array.from({ length: 127 }, (_, i) => String.fromCharCode(i + 1)).join('')],
        ['Latin-1', 'Grüße, Ærøskøbing, ÿ¡¿ é'],
        ['CJK', '暗号化されたセル中文字符한국어'],
        ['emoji (non-BMP)', '\u{1F600}\u{1F511}'],
        ['mathematical bold A (U+1D400)', '\u{1D400}'],
        ['combining marks', 'e\u0301 a\u0308\u0323 n\u0303'],
        ['mixed', 'a\u{1F600}b中c\u00e9d\u{10FFFF}\uFFFD\uFFFE'],
        ['long ASCII', 'Hello world 12345 '.repeat(220)],
        ['long non-ASCII', 'Grüße, 世界 \u{1F600} '.repeat(300)],
      ];
      for (const [label, text] of samples) {
        it(`matches Buffer.from(s, 'utf16le') and round-trips: ${label}`, async () => {
          const bytes = await one<Buffer>('select cellcrypt.utf16le($1) as v', [text]);
          expect(bytes.toString('hex')).to.equal(utf16(text).toString('hex'));
          expect(await one('select cellcrypt.from_utf16le($1) as v', [utf16(text)])).to.equal(text);
        });
      }

      it('agrees with Buffer.from(s, "utf16le") on random Unicode text', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.fullUnicodeString({ maxLength: 40 }).filter((s) => !s.includes('\0')),
            async (text) => {
              const row = (
                await db.query<{ b: Buffer; t: string }>(
                  'select cellcrypt.utf16le($1) as b, cellcrypt.from_utf16le(cellcrypt.utf16le($1)) as t',
                  [text],
                )
              )[0];
              expect(row.b.toString('hex')).to.equal(utf16(text).toString('hex'));
              expect(row.t).to.equal(text);
            },
          ),
          { numRuns: 60 },
        );
      });

      const invalid: Array<[string, string]> = [
        ['odd length', '41'],
        ['odd length after valid units', '410042'],
        ['U+0000 alone', '0000'],
        ['U+0000 inside ASCII', '410000004200'],
        ['lone high surrogate at the end', '41003dd8'],
        ['high surrogate followed by a non-surrogate', '3dd84100'],
        ['lone low surrogate', '00de4100'],
        ['low before high (misordered pair)', '00de3dd8'],
        ['two high surrogates', '3dd83dd8'],
      ];
      for (const [label, bytes] of invalid) {
        it(`from_utf16le returns NULL (no error) for ${label}`, async () => {
          expect(await one('select cellcrypt.from_utf16le($1) as v', [hex(bytes)])).to.equal(null);
        });
      }

      it('from_utf16le agrees with a strict UTF-16LE decoder on random code units', async () => {
        const decoder = new TextDecoder('utf-16le', { fatal: true });
        const reference = (bytes: Buffer): string | null => {
          try {
            const text = decoder.decode(bytes);
            return text.includes('\0') ? null : text;
          } catch {
            return null;
          }
        };
        const unit = fc.oneof(
          fc.integer({ min: 1, max: 0x7f }),
          fc.integer({ min: 0xd800, max: 0xdfff }),
          fc.integer({ min: 0, max: 0xffff }),
        );
        await fc.assert(
          fc.asyncProperty(fc.array(unit, { maxLength: 12 }), async (units) => {
            const bytes = Buffer.alloc(units.length * 2);
            units.forEach((u, i) => bytes.writeUInt16LE(u, 2 * i));
            expect(await one('select cellcrypt.from_utf16le($1) as v', [bytes])).to.equal(reference(bytes));
          }),
          { numRuns: 80 },
        );
      });

      it('both are NULL on NULL', async () => {
        expect(await one('select cellcrypt.utf16le(null) as v')).to.equal(null);
        expect(await one('select cellcrypt.from_utf16le(null) as v')).to.equal(null);
      });
    });

    describe('guid_bytes / guid_from_bytes', () => {
      it('stores a uniqueidentifier mixed-endian, like CONVERT(varbinary(16), pk)', async () => {
        const bytes = await one<Buffer>('select cellcrypt.guid_bytes($1::uuid) as v', [V1.keyGuidString]);
        expect(bytes.toString('hex').toUpperCase()).to.equal(V1.keyGuid);
        expect(await one('select cellcrypt.guid_from_bytes($1)::text as v', [hex(V1.keyGuid)])).to.equal(
          V1.keyGuidString.toLowerCase(),
        );
      });

      it('round-trips random UUIDs and swaps exactly the first three groups', async () => {
        for (let i = 0; i < 20; i++) {
          const uuid = randomUUID();
          const row = (
            await db.query<{ b: Buffer; u: string }>(
              'select cellcrypt.guid_bytes($1::uuid) as b, ' +
                'cellcrypt.guid_from_bytes(cellcrypt.guid_bytes($1::uuid))::text as u',
              [uuid],
            )
          )[0];
          const plain = hex(uuid.replace(/-/g, ''));
          const expected = Buffer.concat([
            plain.subarray(0, 4).reverse(),
            plain.subarray(4, 6).reverse(),
            plain.subarray(6, 8).reverse(),
            plain.subarray(8),
          ]);
          expect(row.b.toString('hex')).to.equal(expected.toString('hex'));
          expect(row.u).to.equal(uuid);
        }
      });

      it('guid_from_bytes is NULL unless given 16 bytes', async () => {
        expect(await one('select cellcrypt.guid_from_bytes($1) as v', [Buffer.alloc(15)])).to.equal(null);
        expect(await one('select cellcrypt.guid_from_bytes($1) as v', [Buffer.alloc(17)])).to.equal(null);
      });
    });

    describe('derive_key / key_guid_for_identity', () => {
      it('reproduces the V1 key bytes: sql2016 (read back from a real server) and sql2017', async () => {
        const row = (
          await db.query<{ k16: Buffer; k17: Buffer; kdefault: Buffer }>(
            `select cellcrypt.derive_key($1, 'sql2016') as k16, cellcrypt.derive_key($1, 'sql2017', 'AES_256') as k17,
                  cellcrypt.derive_key($1) as kdefault`,
            [V1.keySource],
          )
        )[0];
        expect(row.k16.toString('hex').toUpperCase()).to.equal(V1.keySql2016);
        expect(row.k17.toString('hex').toUpperCase()).to.equal(V1.keySql2017);
        expect(row.kdefault.toString('hex').toUpperCase()).to.equal(V1.keySql2017);
      });

      it('cuts 16/24/32 bytes for AES_128/192/256 from the same material', async () => {
        for (const [algorithm, bytes] of [
          ['AES_128', 16],
          ['AES_192', 24],
          ['AES_256', 32],
        ] as const) {
          const k16 = await one<Buffer>(`select cellcrypt.derive_key($1, 'sql2016', $2) as v`, [
            V1.keySource,
            algorithm,
          ]);
          const k17 = await one<Buffer>(`select cellcrypt.derive_key($1, 'sql2017', $2) as v`, [
            V1.keySource,
            algorithm,
          ]);
          expect(k16.toString('hex').toUpperCase()).to.equal(V1.keySql2016.slice(0, 2 * bytes));
          expect(k17.toString('hex').toUpperCase()).to.equal(V1.keySql2017.slice(0, 2 * bytes));
        }
      });

      it('hashes non-ASCII passphrases as UTF-16LE (checked with node:crypto)', async () => {
        for (const passphrase of ['Grüße 中文 \u{1F511}', 'e\u0301', ' leading and trailing spaces ']) {
          const h = sha('sha1', utf16(passphrase));
          const pad = (byte: number) => {
            const block = Buffer.alloc(64, byte);
            for (let i = 0; i < h.length; i++) block[i] ^= h[i];
            return block;
          };
          const expected2016 = Buffer.concat([sha('sha1', pad(0x36)), sha('sha1', pad(0x5c))]).subarray(0, 32);
          const expected2017 = createHash('sha512').update(utf16(passphrase)).digest().subarray(0, 32);
          expect(
            (await one<Buffer>(`select cellcrypt.derive_key($1, 'sql2016') as v`, [passphrase])).toString('hex'),
          ).to.equal(expected2016.toString('hex'));
          expect(
            (await one<Buffer>(`select cellcrypt.derive_key($1, 'sql2017') as v`, [passphrase])).toString('hex'),
          ).to.equal(expected2017.toString('hex'));
        }
      });

      it('raises for an unknown derivation or algorithm', async () => {
        await expectSqlError(db.query(`select cellcrypt.derive_key('x', 'sql2019')`), '22023');
        await expectSqlError(db.query(`select cellcrypt.derive_key('x', 'sql2017', 'TRIPLE_DES')`), '22023');
      });

      it('reproduces the V1 key GUID from IDENTITY_VALUE', async () => {
        const guid = await one<Buffer>('select cellcrypt.key_guid_for_identity($1) as v', [V1.identityValue]);
        expect(guid.toString('hex').toUpperCase()).to.equal(V1.keyGuid);
        const other = 'Identität \u{1F511}';
        const expected = createHash('md5').update(utf16(other)).digest();
        expected[0] = 0;
        expect(
          (await one<Buffer>('select cellcrypt.key_guid_for_identity($1) as v', [other])).toString('hex'),
        ).to.equal(expected.toString('hex'));
      });
    });

    describe('encrypt_cell', () => {
      const v1Key = hex(V1.keySql2016);
      const v1Guid = hex(V1.keyGuid);
      const v1Iv = hex(V1.iv);

      it("reproduces the published V1 ENCRYPTBYKEY(N'blubb') blob", async () => {
        const blob = await one<Buffer>(
          `select cellcrypt.encrypt_cell(cellcrypt.derive_key($1, 'sql2016'), ` +
            `cellcrypt.key_guid_for_identity($2), cellcrypt.utf16le('blubb'), null, $3) as v`,
          [V1.keySource, V1.identityValue, v1Iv],
        );
        expect(blob.length).to.equal(68);
        expect(blob.toString('hex').toUpperCase().startsWith(V1.blubbPrefix)).to.equal(true);
        expect(blob.toString('hex')).to.equal(
          sealByHand(v1Key, v1Guid, v1Iv, innerOf(utf16('blubb'), null)).toString('hex'),
        );
      });

      it('writes byte for byte what node:crypto builds from the format (random inputs, all AES sizes)', async () => {
        const bytes = (min: number, max: number) =>
          fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(16, 24, 32),
            bytes(32, 32),
            bytes(16, 16),
            bytes(16, 16),
            bytes(0, 300),
            fc.option(bytes(0, 40), { nil: null }),
            async (keyBytes, keyMaterial, keyGuid, iv, plaintext, authenticator) => {
              const key = keyMaterial.subarray(0, keyBytes);
              const blob = await encryptCell(key, keyGuid, plaintext, authenticator, iv);
              const expected = sealByHand(key, keyGuid, iv, innerOf(plaintext, authenticator));
              expect(blob!.toString('hex')).to.equal(expected.toString('hex'));
              expect(blob!.length).to.equal(cipherLength(plaintext.length, authenticator === null ? 0 : 20));
            },
          ),
          { numRuns: 40 },
        );
      });

      it(
        'fills one 8000-byte cell at most: 7943 plaintext bytes, ' +
          '7923 with an authenticator (SQLSTATE 22001 beyond)',
        async () => {
          const iv = randomBytes(16);
          const plain = await encryptCell(v1Key, v1Guid, randomBytes(7943), null, iv);
          expect(plain!.length).to.equal(cipherLength(7943, 0)).and.to.be.at.most(8000);
          const authenticated = await encryptCell(v1Key, v1Guid, randomBytes(7923), randomBytes(16), iv);
          expect(authenticated!.length).to.equal(cipherLength(7923, 20)).and.to.be.at.most(8000);
          await expectSqlError(encryptCell(v1Key, v1Guid, randomBytes(7944), null, iv), '22001');
          await expectSqlError(encryptCell(v1Key, v1Guid, randomBytes(7924), randomBytes(16), iv), '22001');
        },
      );

      it('returns NULL for a NULL plaintext or key (ENCRYPTBYKEY with no open key)', async () => {
        expect(await encryptCell(v1Key, v1Guid, null, randomBytes(16), v1Iv)).to.equal(null);
        expect(await encryptCell(null, v1Guid, utf16('x'), null, v1Iv)).to.equal(null);
      });

      it('refuses keys, key GUIDs and IVs of the wrong length (pgcrypto would pad or cut them silently)', async () => {
        for (const length of [0, 15, 20, 33])
          await expectSqlError(encryptCell(randomBytes(length), v1Guid, utf16('x'), null, v1Iv), '22023');
        await expectSqlError(encryptCell(v1Key, randomBytes(15), utf16('x'), null, v1Iv), '22023');
        await expectSqlError(encryptCell(v1Key, null, utf16('x'), null, v1Iv), '22023');
        await expectSqlError(encryptCell(v1Key, v1Guid, utf16('x'), null, randomBytes(8)), '22023');
        await expectSqlError(encryptCell(v1Key, v1Guid, utf16('x'), null, null), '22023');
      });
    });

    describe('decrypt_cell', () => {
      const key = hex(V1.keySql2017);
      const keyGuid = hex(V1.keyGuid);
      const iv = hex(V1.iv);
      const rowId = hex('0022DE016CEF1A3C0F3A889881EF77E7');
      const plaintext = utf16('The quick brown fox');

      it('round-trips encrypt_cell with and without an authenticator, on every AES size', async () => {
        for (const size of [16, 24, 32]) {
          const k = createHash('sha512').update(String(size)).digest().subarray(0, size);
          for (const authenticator of [null, rowId, Buffer.alloc(0)]) {
            const blob = await encryptCell(k, keyGuid, plaintext, authenticator, randomBytes(16));
            expect((await decryptCell(k, blob, authenticator))!.toString('hex')).to.equal(plaintext.toString('hex'));
          }
        }
        const empty = await encryptCell(key, keyGuid, Buffer.alloc(0), rowId, iv);
        expect((await decryptCell(key, empty, rowId))!.length).to.equal(0);
      });

      it('decrypts random blobs built by node:crypto', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
            fc.option(
              fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
              { nil: null },
            ),
            fc.constantFrom<'sha1' | 'sha256'>('sha1', 'sha256'),
            fc.constantFrom(1, 2),
            async (plain, authenticator, hash, version) => {
              const blob = sealByHand(key, keyGuid, randomBytes(16), innerOf(plain, authenticator, { hash }), version);
              expect((await decryptCell(key, blob, authenticator))!.toString('hex')).to.equal(plain.toString('hex'));
            },
          ),
          { numRuns: 30 },
        );
      });

      it('reads a version-2 blob with a SHA-256 integrity hash (32 bytes)', async () => {
        const blob = sealByHand(key, keyGuid, iv, innerOf(plaintext, rowId, { hash: 'sha256' }), 2);
        expect((await decryptCell(key, blob, rowId))!.toString('hex')).to.equal(plaintext.toString('hex'));
        expect(await decryptCell(key, blob, utf16('another row'))).to.equal(null);
        expect(await decryptCell(key, blob, null)).to.equal(null);
      });

      it('reads version-2 blobs without an authenticator and with SHA-1', async () => {
        expect(
          (await decryptCell(key, sealByHand(key, keyGuid, iv, innerOf(plaintext, null), 2), null))!.equals(plaintext),
        ).to.equal(true);
        expect(
          (await decryptCell(key, sealByHand(key, keyGuid, iv, innerOf(plaintext, rowId), 2), rowId))!.equals(
            plaintext,
          ),
        ).to.equal(true);
      });

      it('is NULL for every single-byte change after the key GUID of an authenticated blob', async () => {
        const blob = await encryptCell(key, keyGuid, plaintext, rowId, iv);
        const mutants: Buffer[] = [];
        for (let i = 16; i < blob!.length; i++) {
          for (const mask of [0x01, 0x80, 0xff]) {
            const mutant = Buffer.from(blob!);
            mutant[i] ^= mask;
            mutants.push(mutant);
          }
        }
        const results = await decryptAll(key, mutants, rowId);
        expect(results.filter((r) => r !== null)).to.have.length(0);
      });

      it('ignores the key GUID bytes: the caller chose the key (as DECRYPTBYKEY does by GUID)', async () => {
        const blob = await encryptCell(key, keyGuid, plaintext, rowId, iv);
        const mutant = Buffer.from(blob!);
        mutant[3] ^= 0xff;
        expect((await decryptCell(key, mutant, rowId))!.equals(plaintext)).to.equal(true);
      });

      it('is NULL for every truncation and for an extra block', async () => {
        const blob = (await encryptCell(key, keyGuid, plaintext, rowId, iv))!;
        const prefixes = Array.from({ length: blob.length }, (_, n) => blob.subarray(0, n));
        const results = await decryptAll(
          key,
          [...prefixes, Buffer.concat([blob, hex('00112233445566778899aabbccddeeff')])],
          rowId,
        );
        expect(results.filter((r) => r !== null)).to.have.length(0);
      });

      it('is NULL for a wrong authenticator, a missing one, or one the blob was not made with', async () => {
        const authenticated = await encryptCell(key, keyGuid, plaintext, rowId, iv);
        const plain = await encryptCell(key, keyGuid, plaintext, null, iv);
        const otherRow = Buffer.from(rowId);
        otherRow[15] ^= 1;
        expect(await decryptCell(key, authenticated, otherRow)).to.equal(null);
        expect(await decryptCell(key, authenticated, Buffer.alloc(0))).to.equal(null);
        expect(await decryptCell(key, authenticated, null)).to.equal(null);
        expect(await decryptCell(key, plain, rowId)).to.equal(null);
        expect((await decryptCell(key, plain, null))!.equals(plaintext)).to.equal(true);
      });

      it('is NULL for a wrong key of the same size', async () => {
        const blob = await encryptCell(key, keyGuid, plaintext, null, iv);
        expect(await decryptCell(hex(V1.keySql2016), blob, null)).to.equal(null);
      });

      it('is NULL for well-encrypted blobs with a bad header, lengths, magic or padding', async () => {
        const cases: Array<[string, Buffer, Buffer | null]> = [
          ['version 0', sealByHand(key, keyGuid, iv, innerOf(plaintext, null), 0), null],
          ['version 3', sealByHand(key, keyGuid, iv, innerOf(plaintext, null), 3), null],
          ['version 0x101', sealByHand(key, keyGuid, iv, innerOf(plaintext, null), 0x101), null],
          ['bad magic', sealByHand(key, keyGuid, iv, innerOf(plaintext, null, { magic: 0xbaadf00e }), 1), null],
          [
            'plaintext length one short',
            sealByHand(key, keyGuid, iv, innerOf(plaintext, null, { plaintextLength: plaintext.length - 1 })),
            null,
          ],
          [
            'plaintext length one long',
            sealByHand(key, keyGuid, iv, innerOf(plaintext, null, { plaintextLength: plaintext.length + 1 })),
            null,
          ],
          [
            'integrity length 16',
            sealByHand(
              key,
              keyGuid,
              iv,
              innerOf(plaintext, null, { integrityLength: 16, plaintextLength: plaintext.length - 16 }),
            ),
            null,
          ],
          [
            'SHA-1 hash labelled 32 bytes',
            sealByHand(
              key,
              keyGuid,
              iv,
              innerOf(plaintext, rowId, { integrityLength: 32, plaintextLength: plaintext.length - 12 }),
            ),
            rowId,
          ],
          ['inner shorter than its header', sealByHand(key, keyGuid, iv, hex('0df0adba0000')), null],
          [
            'no padding block (pad:none over a whole-block inner)',
            sealByHand(key, keyGuid, iv, innerOf(Buffer.alloc(8, 0x41), null), 1, false),
            null,
          ],
          [
            'padding bytes that disagree',
            sealByHand(key, keyGuid, iv, Buffer.concat([innerOf(Buffer.alloc(6, 0x41), null), hex('0102')]), 1, false),
            null,
          ],
          [
            'padding byte 0',
            sealByHand(key, keyGuid, iv, Buffer.concat([innerOf(Buffer.alloc(7, 0x41), null), hex('00')]), 1, false),
            null,
          ],
          [
            'padding byte 17',
            sealByHand(key, keyGuid, iv, Buffer.concat([innerOf(Buffer.alloc(7, 0x41), null), hex('11')]), 1, false),
            null,
          ],
          [
            'ciphertext not whole blocks',
            Buffer.concat([sealByHand(key, keyGuid, iv, innerOf(plaintext, null)), hex('00')]),
            null,
          ],
          ['no ciphertext at all', Buffer.concat([keyGuid, hex('01000000'), iv]), null],
          ['empty', Buffer.alloc(0), null],
        ];
        for (const [label, blob, authenticator] of cases) {
          expect(await decryptCell(key, blob, authenticator), label).to.equal(null);
        }
        // The same constructions with the right fields do decrypt, so the cases above fail for their stated reason.
        const control = Buffer.concat([innerOf(Buffer.alloc(6, 0x41), null), hex('0202')]);
        expect(
          (await decryptCell(key, sealByHand(key, keyGuid, iv, control, 1, false), null))!.equals(
            Buffer.alloc(6, 0x41),
          ),
        ).to.equal(true);
      });

      it('never raises on random bytes', async () => {
        const blobs = Array.from({ length: 60 }, (_, i) => randomBytes(i < 30 ? i * 3 : 52 + 16 * (i % 5)));
        for (const blob of blobs.slice(30)) blob.writeUInt32LE(1 + (blob[0] % 2), 16);
        const results = await decryptAll(key, blobs, rowId);
        expect(results.filter((r) => r !== null)).to.have.length(0);
      });

      it('returns NULL for a NULL key or blob and raises for a key of an impossible length', async () => {
        const blob = await encryptCell(key, keyGuid, plaintext, null, iv);
        expect(await decryptCell(null, blob, null)).to.equal(null);
        expect(await decryptCell(key, null, null)).to.equal(null);
        await expectSqlError(decryptCell(key.subarray(0, 20), blob, null), '22023');
      });
    });

    describe('reencrypt_cell (the one-transaction key change)', () => {
      const reencrypt = (blob: Buffer, fromKey: Buffer, toKey: Buffer, toGuid: Buffer) =>
        one<Buffer>('select cellcrypt.reencrypt_cell($1, $2, $3, $4) as v', [blob, fromKey, toKey, toGuid]);

      /** AES-CBC decryption by node:crypto without removing the padding: the whole plaintext block. */
      function innerBlock(key: Buffer, blob: Buffer): Buffer {
        const decipher = createDecipheriv(`aes-${key.length * 8}-cbc`, key, blob.subarray(20, 36));
        decipher.setAutoPadding(false);
        return Buffer.concat([decipher.update(blob.subarray(36)), decipher.final()]);
      }

      it(
        'gives a cell that node:crypto opens under the new key to the same ' +
          'plaintext block (random inputs, every AES size both ways, versions 1 and 2)',
        async () => {
          await fc.assert(
            fc.asyncProperty(
              fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
              fc.option(
                fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
                { nil: null },
              ),
              fc.constantFrom(16, 24, 32),
              fc.constantFrom(16, 24, 32),
              fc.constantFrom<[number, 'sha1' | 'sha256']>([1, 'sha1'], [2, 'sha256'], [2, 'sha1']),
              async (plain, authenticator, fromSize, toSize, [version, hash]) => {
                const fromKey = randomBytes(fromSize);
                const toKey = randomBytes(toSize);
                const toGuid = randomBytes(16);
                const blob = sealByHand(
                  fromKey,
                  randomBytes(16),
                  randomBytes(16),
                  innerOf(plain, authenticator, { hash }),
                  version,
                );
                const moved = await reencrypt(blob, fromKey, toKey, toGuid);
                expect(moved.length).to.equal(blob.length);
                expect(moved.subarray(0, 16).equals(toGuid)).to.equal(true);
                expect(moved.readUInt32LE(16)).to.equal(version);
                expect(innerBlock(toKey, moved).toString('hex')).to.equal(innerBlock(fromKey, blob).toString('hex'));
                expect((await decryptCell(toKey, moved, authenticator))!.toString('hex')).to.equal(
                  plain.toString('hex'),
                );
              },
            ),
            { numRuns: 40 },
          );
        },
      );

      it('draws a fresh IV per cell: the same cell moved twice gives two different IVs and ciphertexts', async () => {
        const fromKey = randomBytes(32);
        const toKey = randomBytes(32);
        const blob = sealByHand(
          fromKey,
          randomBytes(16),
          randomBytes(16),
          innerOf(utf16('same value'), randomBytes(16)),
        );
        const [a, b] = [
          await reencrypt(blob, fromKey, toKey, randomBytes(16)),
          await reencrypt(blob, fromKey, toKey, randomBytes(16)),
        ];
        expect(a.subarray(20, 36).equals(b.subarray(20, 36))).to.equal(false);
        expect(a.subarray(36).equals(b.subarray(36))).to.equal(false);
        expect(a.subarray(20, 36).equals(blob.subarray(20, 36))).to.equal(false);
      });

      it(
        'never repairs a cell: one that does not decrypt ' + 'under the old key does not decrypt under the new one',
        async () => {
          const fromKey = randomBytes(32);
          const toKey = randomBytes(32);
          const rowId = randomBytes(16);
          const good = sealByHand(fromKey, randomBytes(16), randomBytes(16), innerOf(utf16('secret'), rowId));
          const flipped = Buffer.from(good);
          flipped[flipped.length - 1] ^= 0x80;
          const wrongKey = sealByHand(
            randomBytes(32),
            randomBytes(16),
            randomBytes(16),
            innerOf(utf16('secret'), rowId),
          );
          for (const damaged of [flipped, wrongKey]) {
            expect(await decryptCell(fromKey, damaged, rowId)).to.equal(null);
            expect(await decryptCell(toKey, await reencrypt(damaged, fromKey, toKey, randomBytes(16)), rowId)).to.equal(
              null,
            );
          }
        },
      );

      it('is inlined into the statement that uses it (no function call per cell: the point of its form)', async () => {
        await db.exec('create temporary table moving (cell bytea)');
        const plan = await db.query<{ 'QUERY PLAN': string }>(
          `explain verbose update moving set cell = cellcrypt.reencrypt_cell(cell, ` +
            `(select decode(repeat('11', 32), 'hex')), (select decode(repeat('22', ` +
            `32), 'hex')), decode(repeat('33', 16), 'hex'))`,
        );
        const text = plan.map((row) => row['QUERY PLAN']).join('\n');
        expect(text).to.match(/encrypt_iv\(/);
        expect(text).to.not.match(/reencrypt_cell\(/);
        await db.exec('drop table moving');
      });
    });

    describe('session settings', () => {
      it('gives the same bytes in a session with standard_conforming_strings = off', async () => {
        const other = await target.open();
        try {
          await other.exec('set standard_conforming_strings = off');
          await loadSqlScripts(other, ['10-codec.sql']);
          const text = String.raw`a\b\\c\000`;
          const row = (
            await other.query<{ blob: Buffer; bytes: Buffer; back: string; plain: Buffer }>(
              `select cellcrypt.encrypt_cell(cellcrypt.derive_key($1, 'sql2016'), ` +
                `cellcrypt.key_guid_for_identity($2), ` +
                `cellcrypt.utf16le('blubb'), null, $3) as blob,
                    cellcrypt.utf16le($4) as bytes, cellcrypt.from_utf16le(cellcrypt.utf16le($4)) as back,
                    cellcrypt.decrypt_cell(cellcrypt.derive_key($1, 'sql2016'),
                      cellcrypt.encrypt_cell(cellcrypt.derive_key($1, 'sql2016'), $5, ` +
                `cellcrypt.utf16le($4), $5, $3), $5) as plain`,
              [V1.keySource, V1.identityValue, hex(V1.iv), text, hex(V1.keyGuid)],
            )
          )[0];
          expect(row.blob.toString('hex').toUpperCase().startsWith(V1.blubbPrefix)).to.equal(true);
          expect(row.bytes.toString('hex')).to.equal(utf16(text).toString('hex'));
          expect(row.back).to.equal(text);
          expect(row.plain.toString('hex')).to.equal(utf16(text).toString('hex'));
        } finally {
          await other.close();
        }
      });
    });

    describe('cell_key_guid and function properties', () => {
      it('cell_key_guid is the first 16 bytes, NULL when shorter', async () => {
        const blob = Buffer.concat([hex(V1.keyGuid), randomBytes(52)]);
        expect(
          (await one<Buffer>('select cellcrypt.cell_key_guid($1) as v', [blob])).toString('hex').toUpperCase(),
        ).to.equal(V1.keyGuid);
        expect(await one('select cellcrypt.cell_key_guid($1) as v', [randomBytes(15)])).to.equal(null);
      });

      it('cell_key_guid of NULL is NULL (it is not declared STRICT, so that it can be inlined)', async () => {
        expect(await one('select cellcrypt.cell_key_guid(null) as v')).to.equal(null);
      });

      it(
        'declares every function immutable and parallel safe, ' +
          'strict unless NULL means something or inlining needs it',
        async () => {
          const rows = await db.query<{ name: string; volatile: string; strict: boolean; parallel: string }>(
            `select p.proname as name, p.provolatile as volatile, p.proisstrict as strict, p.proparallel as parallel
             from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = 'cellcrypt'`,
          );
          const byName = new Map(rows.map((row) => [row.name, row]));
          for (const name of [
            'utf16le',
            'from_utf16le',
            'guid_bytes',
            'guid_from_bytes',
            'derive_key',
            'key_guid_for_identity',
            'encrypt_cell',
            'decrypt_cell',
            'cell_key_guid',
          ]) {
            const row = byName.get(name);
            expect(row, name).to.not.equal(undefined);
            expect([row!.volatile, row!.parallel], name).to.deep.equal(['i', 's']);
            expect(row!.strict, name).to.equal(!['encrypt_cell', 'decrypt_cell', 'cell_key_guid'].includes(name));
          }
        },
      );
    });
  });
}
