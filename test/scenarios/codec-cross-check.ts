import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  decryptByKey,
  deriveKey,
  encryptByKey,
  guidBytesToString,
  guidStringToBytes,
  keyGuidFromIdentity,
  nvarcharBytes,
  nvarcharText,
  type AesAlgorithm,
  type CellKey,
  type Derivation,
} from '../../src/cellcrypt';
import { loadSqlScripts, type RawDb, type RawTarget } from '../support/raw-db';

/**
 * Two of the three implementations of the cell format must agree byte for byte: the TypeScript
 * codec (src/cellcrypt, node:crypto) and the PL/pgSQL one (10-codec.sql, pgcrypto). Blobs cross
 * in both directions, the same IV gives the same bytes, and both refuse the same damaged blobs.
 */

const buffer = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
const keyArbitrary = fc
  .tuple(fc.constantFrom(16, 24, 32), buffer(32, 32), buffer(16, 16))
  .map(([bytes, material, keyGuid]): CellKey => ({ key: material.subarray(0, bytes), keyGuid }));
const plaintextArbitrary = buffer(0, 400);
const authenticatorArbitrary = fc.option(buffer(0, 32), { nil: undefined });
const textArbitrary = fc.fullUnicodeString({ maxLength: 60 }).filter((s) => !s.includes('\0'));

export function scenarios(target: RawTarget): void {
  describe(`TypeScript codec and SQL codec agree on ${target.name}`, function () {
    let db: RawDb;

    async function one<T = any>(sql: string, params: unknown[] = []): Promise<T> {
      return (await db.query<{ v: T }>(sql, params))[0].v;
    }

    const sqlEncrypt = (key: CellKey, plaintext: Buffer, authenticator: Buffer | undefined, iv: Buffer) =>
      one<Buffer>('select cellcrypt.encrypt_cell($1, $2, $3, $4, $5) as v', [
        key.key,
        key.keyGuid,
        plaintext,
        authenticator ?? null,
        iv,
      ]);
    const sqlDecrypt = (key: CellKey, blob: Buffer, authenticator: Buffer | undefined) =>
      one<Buffer | null>('select cellcrypt.decrypt_cell($1, $2, $3) as v', [key.key, blob, authenticator ?? null]);

    before(async () => {
      db = await target.open();
      await loadSqlScripts(db, ['10-codec.sql']);
    });

    after(async () => {
      await db?.close();
    });

    it('derive the same key bytes from any passphrase, both derivations, every AES size', async () => {
      await fc.assert(
        fc.asyncProperty(
          textArbitrary,
          fc.constantFrom<Derivation>('sql2016', 'sql2017'),
          fc.constantFrom<AesAlgorithm>('AES_128', 'AES_192', 'AES_256'),
          async (passphrase, derivation, algorithm) => {
            const sql = await one<Buffer>('select cellcrypt.derive_key($1, $2, $3) as v', [
              passphrase,
              derivation,
              algorithm,
            ]);
            expect(sql.toString('hex')).to.equal(deriveKey(passphrase, derivation, algorithm).toString('hex'));
          },
        ),
        { numRuns: 40 },
      );
    });

    it('derive the same key GUID from any IDENTITY_VALUE', async () => {
      await fc.assert(
        fc.asyncProperty(textArbitrary, async (identity) => {
          const sql = await one<Buffer>('select cellcrypt.key_guid_for_identity($1) as v', [identity]);
          expect(sql.toString('hex')).to.equal(keyGuidFromIdentity(identity).toString('hex'));
        }),
        { numRuns: 30 },
      );
    });

    it('agree on nvarchar bytes and uniqueidentifier bytes', async () => {
      await fc.assert(
        fc.asyncProperty(textArbitrary, async (text) => {
          const bytes = await one<Buffer>('select cellcrypt.utf16le($1) as v', [text]);
          expect(bytes.toString('hex')).to.equal(nvarcharBytes(text).toString('hex'));
          expect(await one('select cellcrypt.from_utf16le($1) as v', [bytes])).to.equal(nvarcharText(bytes));
        }),
        { numRuns: 40 },
      );
      for (let i = 0; i < 10; i++) {
        const uuid = randomUUID();
        const bytes = await one<Buffer>('select cellcrypt.guid_bytes($1::uuid) as v', [uuid]);
        expect(bytes.toString('hex')).to.equal(guidStringToBytes(uuid).toString('hex'));
        expect(await one('select cellcrypt.guid_from_bytes($1)::text as v', [bytes])).to.equal(
          guidBytesToString(bytes).toLowerCase(),
        );
      }
    });

    it('write identical bytes for the same key, plaintext, authenticator and IV', async () => {
      await fc.assert(
        fc.asyncProperty(
          keyArbitrary,
          plaintextArbitrary,
          authenticatorArbitrary,
          buffer(16, 16),
          async (key, plaintext, authenticator, iv) => {
            const sql = await sqlEncrypt(key, plaintext, authenticator, iv);
            expect(sql.toString('hex')).to.equal(encryptByKey(key, plaintext, { authenticator, iv }).toString('hex'));
          },
        ),
        { numRuns: 40 },
      );
    });

    it('read each other: SQL blobs decrypt in TypeScript, TypeScript blobs (random IVs) decrypt in SQL', async () => {
      await fc.assert(
        fc.asyncProperty(
          keyArbitrary,
          plaintextArbitrary,
          authenticatorArbitrary,
          async (key, plaintext, authenticator) => {
            const fromSql = await sqlEncrypt(key, plaintext, authenticator, randomBytes(16));
            expect(decryptByKey(fromSql, key, authenticator)?.toString('hex')).to.equal(plaintext.toString('hex'));
            const fromTs = encryptByKey(key, plaintext, { authenticator });
            expect((await sqlDecrypt(key, fromTs, authenticator))?.toString('hex')).to.equal(plaintext.toString('hex'));
          },
        ),
        { numRuns: 40 },
      );
    });

    it('carry nvarchar text through SQL encryption and TypeScript decryption, and back', async () => {
      const key: CellKey = {
        key: deriveKey('cross-check passphrase', 'sql2017'),
        keyGuid: keyGuidFromIdentity('cross-check identity'),
      };
      await fc.assert(
        fc.asyncProperty(textArbitrary, async (text) => {
          const rowId = randomUUID();
          const blob = await one<Buffer>(
            'select cellcrypt.encrypt_cell($1, $2, cellcrypt.utf16le($3), cellcrypt.guid_bytes($4::uuid), $5) as v',
            [key.key, key.keyGuid, text, rowId, randomBytes(16)],
          );
          expect(nvarcharText(decryptByKey(blob, key, guidStringToBytes(rowId))!)).to.equal(text);
          const back = encryptByKey(key, nvarcharBytes(text), { authenticator: guidStringToBytes(rowId) });
          expect(
            await one(
              'select cellcrypt.from_utf16le(cellcrypt.decrypt_cell($1, $2, cellcrypt.guid_bytes($3::uuid))) as v',
              [key.key, back, rowId],
            ),
          ).to.equal(text);
        }),
        { numRuns: 25 },
      );
    });

    it('refuse the same damaged blobs (any byte after the key GUID changed, or truncated)', async () => {
      const damage = fc.oneof(
        fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
        fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), mask: fc.constant(0) }),
      );
      await fc.assert(
        fc.asyncProperty(
          keyArbitrary,
          buffer(0, 64),
          authenticatorArbitrary,
          damage,
          async (key, plaintext, authenticator, change) => {
            const blob = encryptByKey(key, plaintext, { authenticator });
            let damaged: Buffer;
            if (change.kind === 'flip') {
              damaged = Buffer.from(blob);
              damaged[16 + (change.at % (blob.length - 16))] ^= change.mask;
            } else {
              damaged = blob.subarray(0, change.at % blob.length);
            }
            const ts = decryptByKey(damaged, key, authenticator);
            const sql = await sqlDecrypt(key, damaged, authenticator);
            expect(sql?.toString('hex') ?? null).to.equal(ts?.toString('hex') ?? null);
          },
        ),
        { numRuns: 60 },
      );
    });
  });
}
