import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { CellcryptError } from '../common/errors';
import type { Secret } from '../common/secret';

/**
 * AES-256-GCM sealing of key-store values under the key-store secret.
 * Format: version(1) | salt(16) | iv(12) | tag(16) | ciphertext. The sealing key is
 * scrypt(secret, salt), so a human-chosen CELLCRYPT_KEYSTORE_SECRET is still costly to guess;
 * the associated data binds a value to its organization and name, so a sealed passphrase
 * copied onto another row or organization does not open.
 */
const VERSION = 1;
const SALT = 16;
const IV = 12;
const TAG = 16;
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export interface Sealer {
  seal(value: string, associatedData: string): Buffer;
  unseal(sealed: Buffer, associatedData: string): string;
}

export function createSealer(secret: Secret): Sealer {
  // scrypt is deliberately slow; one process sees few salts, so remember the keys it derived.
  const keys = new Map<string, Buffer>();
  const keyFor = (salt: Buffer): Buffer => {
    const id = salt.toString('hex');
    let key = keys.get(id);
    if (!key) {
      key = scryptSync(secret.reveal().normalize('NFC'), salt, 32, SCRYPT);
      keys.set(id, key);
    }
    return key;
  };

  return {
    seal(value, associatedData) {
      const salt = randomBytes(SALT);
      const iv = randomBytes(IV);
      const cipher = createCipheriv('aes-256-gcm', keyFor(salt), iv);
      cipher.setAAD(Buffer.from(associatedData, 'utf8'));
      const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), salt, iv, cipher.getAuthTag(), body]);
    },

    unseal(sealed, associatedData) {
      if (sealed.length < 1 + SALT + IV + TAG || sealed[0] !== VERSION) {
        throw locked(`the key-store value for ${associatedData} is not in a format this version can read`);
      }
      const salt = sealed.subarray(1, 1 + SALT);
      const iv = sealed.subarray(1 + SALT, 1 + SALT + IV);
      const tag = sealed.subarray(1 + SALT + IV, 1 + SALT + IV + TAG);
      const decipher = createDecipheriv('aes-256-gcm', keyFor(salt), iv);
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(sealed.subarray(1 + SALT + IV + TAG)), decipher.final()]).toString(
          'utf8',
        );
      } catch (cause) {
        throw locked(`the key-store secret does not open the key-store value for ${associatedData}`, cause);
      }
    },
  };
}

function locked(message: string, cause?: unknown): CellcryptError {
  return new CellcryptError('CellcryptKeyStoreLocked', message, {
    exitCode: 2,
    cause,
    hint:
      'set CELLCRYPT_KEYSTORE_SECRET (or restore the embedded key-store ' +
      'secret file) to the value the key store was written with',
  });
}
