import { createCipheriv, createHash, randomFillSync } from 'node:crypto';
import { CellcryptError } from '../common/errors';
import { AES_BLOCK_BYTES, cipherNameFor } from './algorithm';
import type { CellKey } from './cell-key';
import {
  INNER_HEADER_BYTES,
  KEY_GUID_BYTES,
  MAGIC,
  MAX_CELL_BYTES,
  SHA1_BYTES,
  VERSION_BYTES,
  WRITE_VERSION,
  cipherLength,
  maxPlaintextBytes,
} from './format';

export interface EncryptOptions {
  /** Bytes bound into the integrity hash (Dynamics: the row's uniqueidentifier primary key). */
  authenticator?: Buffer;
  /** Only for reproducing known vectors; production cells need a fresh random IV. */
  iv?: Buffer;
}

const IV_OFFSET = KEY_GUID_BYTES + VERSION_BYTES;
const PREFIX_BYTES = IV_OFFSET + AES_BLOCK_BYTES;

/**
 * randomBytes(16) per cell costs about as much as the SHA-1 (a native call each time), so IVs are
 * cut from a CSPRNG-filled pool instead. Each IV is used once: the pool is refilled when spent.
 */
const IV_POOL = Buffer.alloc(256 * AES_BLOCK_BYTES);
let ivPoolOffset = IV_POOL.length;

function copyFreshIv(target: Buffer, at: number): void {
  if (ivPoolOffset === IV_POOL.length) {
    randomFillSync(IV_POOL);
    ivPoolOffset = 0;
  }
  IV_POOL.copy(target, at, ivPoolOffset, ivPoolOffset + AES_BLOCK_BYTES);
  ivPoolOffset += AES_BLOCK_BYTES;
}

/**
 * ENCRYPTBYKEY: always version 1 (every server version reads it) and SHA-1 integrity when an
 * authenticator is given. This is the hot path of convert and change-key: one cipher, one
 * update, one concatenation per cell.
 */
export function encryptByKey(key: CellKey, plaintext: Buffer, options: EncryptOptions = {}): Buffer {
  const { authenticator } = options;
  const withIntegrity = authenticator !== undefined;
  const blobBytes = cipherLength(plaintext.length, { authenticator: withIntegrity });
  if (blobBytes > MAX_CELL_BYTES) {
    throw new CellcryptError(
      'CellcryptValueTooLong',
      `a ${plaintext.length}-byte value encrypts to ${blobBytes} ` +
        `bytes, more than SQL Server's ${MAX_CELL_BYTES}-byte cell ` +
        `(at most ${maxPlaintextBytes({ authenticator: withIntegrity })} plaintext bytes)`,
      { exitCode: 2 },
    );
  }
  if (key.keyGuid.length !== KEY_GUID_BYTES) {
    throw new CellcryptError('CellcryptInternal', `a key GUID is ${KEY_GUID_BYTES} bytes, got ${key.keyGuid.length}`);
  }
  if (options.iv !== undefined && options.iv.length !== AES_BLOCK_BYTES) {
    throw new CellcryptError('CellcryptUsage', `an AES IV is ${AES_BLOCK_BYTES} bytes, got ${options.iv.length}`, {
      exitCode: 2,
    });
  }
  const cipherName = cipherNameFor(key.key, key.algorithm);

  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  key.keyGuid.copy(prefix, 0);
  prefix.writeUInt32LE(WRITE_VERSION, KEY_GUID_BYTES);
  if (options.iv === undefined) copyFreshIv(prefix, IV_OFFSET);
  else options.iv.copy(prefix, IV_OFFSET);

  // One buffer and one cipher.update: each extra update call costs more than copying 8 KB.
  const integrityLength = withIntegrity ? SHA1_BYTES : 0;
  const inner = Buffer.allocUnsafe(INNER_HEADER_BYTES + integrityLength + plaintext.length);
  inner.writeUInt32LE(MAGIC, 0);
  inner.writeUInt16LE(integrityLength, 4);
  inner.writeUInt16LE(plaintext.length, 6);
  if (withIntegrity)
    createHash('sha1').update(plaintext).update(authenticator).digest().copy(inner, INNER_HEADER_BYTES);
  plaintext.copy(inner, INNER_HEADER_BYTES + integrityLength);

  const cipher = createCipheriv(cipherName, key.key, prefix.subarray(IV_OFFSET));
  return Buffer.concat([prefix, cipher.update(inner), cipher.final()], blobBytes);
}
