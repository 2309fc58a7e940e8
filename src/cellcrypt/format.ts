/**
 * Byte layout of an ENCRYPTBYKEY blob (reference section 1) and its size rule (section 2):
 *   keyGuid(16) | version(4, LE) | IV(block)
 *     | CBC(PKCS7(magic(4) | integrityLength(2) | plaintextLength(2) | integrity | plaintext))
 */

export const KEY_GUID_BYTES = 16;
export const VERSION_BYTES = 4;
export const INNER_HEADER_BYTES = 8;
/** 0xBAADF00D, stored little-endian as 0D F0 AD BA. */
export const MAGIC = 0xbaadf00d;
export const SHA1_BYTES = 20;
export const SHA256_BYTES = 32;
/** ENCRYPTBYKEY returns at most varbinary(8000). */
export const MAX_CELL_BYTES = 8000;

/** Written by SQL Server 2016 and older, read by every version: what we write. */
export const WRITE_VERSION = 1;
export const READABLE_VERSIONS: ReadonlySet<number> = new Set([1, 2]);

export interface CipherLengthOptions {
  authenticator?: boolean;
  /** 20 (SHA-1, what version 1 writes) or 32 (SHA-256, possible on version 2). */
  hashLength?: 20 | 32;
  /** 16 for AES; 8 only for the deprecated DES family, kept for sizing old columns. */
  blockSize?: 8 | 16;
}

/** Bytes of the ENCRYPTBYKEY blob for a plaintext of `plaintextBytes` bytes. */
export function cipherLength(plaintextBytes: number, options: CipherLengthOptions = {}): number {
  const block = options.blockSize ?? 16;
  const integrity = options.authenticator ? (options.hashLength ?? SHA1_BYTES) : 0;
  // PKCS7 always adds at least one byte, hence "+ 1" block even on an exact multiple.
  const paddedInner = (Math.floor((INNER_HEADER_BYTES + plaintextBytes + integrity) / block) + 1) * block;
  return paddedInner + KEY_GUID_BYTES + block + VERSION_BYTES;
}

/** The largest plaintext (bytes) whose AES blob still fits in MAX_CELL_BYTES. */
export function maxPlaintextBytes(options: Omit<CipherLengthOptions, 'blockSize'> = {}): number {
  const block = 16;
  const integrity = options.authenticator ? (options.hashLength ?? SHA1_BYTES) : 0;
  const maxPadded = Math.floor((MAX_CELL_BYTES - KEY_GUID_BYTES - VERSION_BYTES - block) / block) * block;
  // The padded inner needs at least one padding byte: inner <= maxPadded - 1.
  return maxPadded - 1 - INNER_HEADER_BYTES - integrity;
}
