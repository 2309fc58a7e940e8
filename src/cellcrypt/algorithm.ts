import { CellcryptError } from '../common/errors';

/**
 * The AES sizes SQL Server still supports for symmetric keys (everything else is deprecated
 * since 2016). The blob does not record the algorithm: SQL Server knows it from the key, so do we.
 */
export type AesAlgorithm = 'AES_128' | 'AES_192' | 'AES_256';

export const AES_ALGORITHMS: readonly AesAlgorithm[] = ['AES_256', 'AES_128', 'AES_192'];

const KEY_BYTES: Record<AesAlgorithm, number> = { AES_128: 16, AES_192: 24, AES_256: 32 };

const CIPHER_BY_KEY_BYTES: Record<number, string | undefined> = {
  16: 'aes-128-cbc',
  24: 'aes-192-cbc',
  32: 'aes-256-cbc',
};

/** All AES variants share the 16-byte block, so the IV and padding rules never change. */
export const AES_BLOCK_BYTES = 16;

export function keyBytesOf(algorithm: AesAlgorithm): number {
  const bytes = KEY_BYTES[algorithm];
  if (bytes === undefined) {
    throw new CellcryptError(
      'CellcryptUsage',
      `unknown algorithm ${String(algorithm)}: use AES_128, AES_192 or AES_256`,
      {
        exitCode: 2,
      },
    );
  }
  return bytes;
}

/**
 * The node:crypto cipher name for a raw key. The key length is the source of truth (a 32-byte
 * key can only be AES-256); a stated algorithm that disagrees is a programming error that would
 * otherwise surface much later as cells no server can read.
 */
export function cipherNameFor(key: Buffer, algorithm?: AesAlgorithm): string {
  const name = CIPHER_BY_KEY_BYTES[key.length];
  if (name === undefined || (algorithm !== undefined && KEY_BYTES[algorithm] !== key.length)) {
    throw new CellcryptError(
      'CellcryptInternal',
      `a ${key.length}-byte key is not a valid ${algorithm ?? 'AES'} key (AES_128/192/256 need 16/24/32 bytes)`,
    );
  }
  return name;
}
