import { createHash } from 'node:crypto';
import { keyBytesOf, type AesAlgorithm } from './algorithm';

/**
 * How SQL Server turns `KEY_SOURCE` into key bytes. It changed in SQL Server 2017, which is why a
 * passphrase that worked on an old server can fail after an upgrade (reference section 3).
 */
export type Derivation = 'sql2016' | 'sql2017';

export const DERIVATIONS: readonly Derivation[] = ['sql2017', 'sql2016'];

const CRYPTDERIVEKEY_PAD_BYTES = 64;

function utf16le(text: string): Buffer {
  return Buffer.from(text, 'utf16le');
}

function sha1(data: Buffer): Buffer {
  return createHash('sha1').update(data).digest();
}

/**
 * CryptoAPI's CryptDeriveKey over SHA-1, which SQL Server 2016 and older use: the hash is XORed
 * into two HMAC-style pads and the two digests concatenated, giving 40 bytes to cut from.
 */
function cryptDeriveKeySha1(passphrase: string): Buffer {
  const hash = sha1(utf16le(passphrase));
  const inner = Buffer.alloc(CRYPTDERIVEKEY_PAD_BYTES, 0x36);
  const outer = Buffer.alloc(CRYPTDERIVEKEY_PAD_BYTES, 0x5c);
  for (let i = 0; i < hash.length; i++) {
    inner[i] ^= hash[i];
    outer[i] ^= hash[i];
  }
  return Buffer.concat([sha1(inner), sha1(outer)]);
}

/** Key bytes SQL Server derives from `KEY_SOURCE = N'<passphrase>'` for the given algorithm. */
export function deriveKey(passphrase: string, derivation: Derivation, algorithm: AesAlgorithm = 'AES_256'): Buffer {
  const keyBytes = keyBytesOf(algorithm);
  const material =
    derivation === 'sql2016'
      ? cryptDeriveKeySha1(passphrase)
      : derivation === 'sql2017'
        ? createHash('sha512').update(utf16le(passphrase)).digest()
        : undefined;
  if (material === undefined) throw new TypeError(`unknown derivation ${String(derivation)}`);
  // subarray would keep the whole digest alive behind the key; a copy holds only the key.
  return Buffer.from(material.subarray(0, keyBytes));
}

/**
 * The 16 stored GUID bytes SQL Server gives a key created with `IDENTITY_VALUE = N'<value>'`.
 * Byte 0 is cleared by the server; the rest is the MD5 digest as is (no endianness games).
 */
export function keyGuidFromIdentity(identityValue: string): Buffer {
  const digest = createHash('md5').update(utf16le(identityValue)).digest();
  digest[0] = 0x00;
  return digest;
}
