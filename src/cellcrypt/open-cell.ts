import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { AES_BLOCK_BYTES, cipherNameFor } from './algorithm';
import { keysForGuid, type CellKey, type CellKeys } from './cell-key';
import {
  INNER_HEADER_BYTES,
  KEY_GUID_BYTES,
  MAGIC,
  READABLE_VERSIONS,
  SHA1_BYTES,
  SHA256_BYTES,
  VERSION_BYTES,
} from './format';

/**
 * The one parser behind DECRYPTBYKEY and its diagnosis. The checks, in SQL Server's order:
 * enough bytes for the header, a key with the blob's GUID, a readable version, whole cipher
 * blocks, PKCS7 padding, magic, lengths, integrity hash. Failures carry the reason; building
 * the detail text costs nothing on the success path.
 */

export type CellFailure =
  | 'truncated'
  | 'unknown-key-guid'
  | 'unsupported-version'
  | 'bad-ciphertext-length'
  | 'bad-padding'
  | 'bad-magic'
  | 'length-mismatch'
  | 'integrity-mismatch'
  | 'authenticator-required'
  | 'unexpected-authenticator';

export type IntegrityKind = 'none' | 'sha1' | 'sha256';

export type OpenedCell =
  | { ok: true; plaintext: Buffer; version: number; integrity: IntegrityKind; integrityChecked: boolean }
  | { ok: false; reason: CellFailure; detail: string };

const IV_OFFSET = KEY_GUID_BYTES + VERSION_BYTES;
const CIPHERTEXT_OFFSET = IV_OFFSET + AES_BLOCK_BYTES;
const INTEGRITY_HASHES: Record<number, 'sha1' | 'sha256' | undefined> = {
  [SHA1_BYTES]: 'sha1',
  [SHA256_BYTES]: 'sha256',
};

type Failed = Extract<OpenedCell, { ok: false }>;
const failure = (reason: CellFailure, detail: string): Failed => ({ ok: false, reason, detail });

export function openCell(
  blob: Buffer,
  keys: CellKeys,
  authenticator: Buffer | undefined,
  allowUnchecked: boolean,
): OpenedCell {
  if (blob.length < CIPHERTEXT_OFFSET) {
    return failure(
      'truncated',
      `${blob.length} bytes cannot hold the ${CIPHERTEXT_OFFSET}-byte GUID, version and IV header`,
    );
  }
  const candidates = keysForGuid(keys, blob);
  if (candidates.length === 0)
    return failure('unknown-key-guid', 'no open key has the GUID this blob was encrypted with');
  const version = blob.readUInt32LE(KEY_GUID_BYTES);
  if (!READABLE_VERSIONS.has(version))
    return failure('unsupported-version', `header version ${version} (readable: 1, 2)`);
  const cipherBytes = blob.length - CIPHERTEXT_OFFSET;
  if (cipherBytes === 0) return failure('truncated', 'the blob ends after the IV: no ciphertext');
  if (cipherBytes % AES_BLOCK_BYTES !== 0) {
    return failure(
      'bad-ciphertext-length',
      `${cipherBytes} ciphertext bytes are not whole ${AES_BLOCK_BYTES}-byte blocks`,
    );
  }
  let firstFailure: Failed | undefined;
  for (const key of candidates) {
    const result = openWith(key, blob, version, authenticator, allowUnchecked);
    if (result.ok) return result;
    firstFailure ??= result;
  }
  return firstFailure as Failed;
}

/** Length of valid PKCS7 padding (1..16) at the end of `padded`, or 0 when it is not valid. */
function pkcs7PaddingLength(padded: Buffer): number {
  const length = padded[padded.length - 1];
  if (length === undefined || length === 0 || length > AES_BLOCK_BYTES) return 0;
  let difference = 0;
  for (let i = padded.length - length; i < padded.length; i++) difference |= padded[i] ^ length;
  return difference === 0 ? length : 0;
}

function openWith(
  key: CellKey,
  blob: Buffer,
  version: number,
  authenticator: Buffer | undefined,
  allowUnchecked: boolean,
): OpenedCell {
  const cipherName = cipherNameFor(key.key, key.algorithm); // a malformed key is a bug: let it throw
  const decipher = createDecipheriv(cipherName, key.key, blob.subarray(IV_OFFSET, CIPHERTEXT_OFFSET));
  // Padding is checked here rather than by final(): a throwing final() costs more than the
  // whole decryption, and a wrong key (trial decryption) fails there every time.
  decipher.setAutoPadding(false);
  const padded = decipher.update(blob.subarray(CIPHERTEXT_OFFSET));
  const paddingLength = pkcs7PaddingLength(padded);
  if (paddingLength === 0) {
    return failure(
      'bad-padding',
      'the last block does not end in valid PKCS7 padding (wrong key or damaged ciphertext)',
    );
  }
  const innerLength = padded.length - paddingLength;
  if (innerLength < INNER_HEADER_BYTES || padded.readUInt32LE(0) !== MAGIC) {
    return failure(
      'bad-magic',
      'the decrypted header does not start with 0xBAADF00D (wrong key or damaged ciphertext)',
    );
  }
  const integrityLength = padded.readUInt16LE(4);
  const plaintextLength = padded.readUInt16LE(6);
  const hash = integrityLength === 0 ? undefined : INTEGRITY_HASHES[integrityLength];
  if (integrityLength !== 0 && hash === undefined) {
    return failure('length-mismatch', `integrity length ${integrityLength} is neither 0, 20 (SHA-1) nor 32 (SHA-256)`);
  }
  if (INNER_HEADER_BYTES + integrityLength + plaintextLength !== innerLength) {
    const stated = `${integrityLength} integrity + ${plaintextLength} plaintext bytes`;
    return failure('length-mismatch', `header says ${stated}, ${innerLength - INNER_HEADER_BYTES} were decrypted`);
  }
  const plaintext = padded.subarray(INNER_HEADER_BYTES + integrityLength, innerLength);
  if (hash === undefined) {
    if (authenticator === undefined)
      return { ok: true, plaintext, version, integrity: 'none', integrityChecked: false };
    return failure('unexpected-authenticator', 'an authenticator was given but the blob was encrypted without one');
  }
  if (authenticator === undefined) {
    if (allowUnchecked) return { ok: true, plaintext, version, integrity: hash, integrityChecked: false };
    return failure(
      'authenticator-required',
      `the blob carries a ${hash} integrity hash: give the authenticator it was encrypted with`,
    );
  }
  const expected = createHash(hash).update(plaintext).update(authenticator).digest();
  if (!timingSafeEqual(expected, padded.subarray(INNER_HEADER_BYTES, INNER_HEADER_BYTES + integrityLength))) {
    return failure(
      'integrity-mismatch',
      `the ${hash} of plaintext and authenticator does not match (wrong row, or damaged data)`,
    );
  }
  return { ok: true, plaintext, version, integrity: hash, integrityChecked: true };
}
