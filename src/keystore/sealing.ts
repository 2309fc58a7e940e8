import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
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

/**
 * scrypt is deliberately slow (0.1-0.2 s a call), so each key is derived once per process: keys
 * are remembered by (secret, salt) for every sealer of the process, and one process seals all
 * its values under one random salt (the IV, random per value, is what GCM needs fresh; the salt
 * only has to differ between secrets and installations). A command that reads and writes the
 * key store a few times used to pay one scrypt per value.
 */
const derivedKeys = new Map<string, Buffer>();
const sealingSalts = new Map<string, Buffer>();

export function createSealer(secret: Secret): Sealer {
  const normalized = secret.reveal().normalize('NFC');
  // The map key names the secret by a hash, never by its text.
  const secretId = createHash('sha256').update(normalized, 'utf8').digest('hex');
  const keyFor = (salt: Buffer): Buffer => {
    const id = `${secretId}:${salt.toString('hex')}`;
    let key = derivedKeys.get(id);
    if (!key) {
      key = scryptSync(normalized, salt, 32, SCRYPT);
      derivedKeys.set(id, key);
    }
    return key;
  };
  const sealingSalt = (): Buffer => {
    let salt = sealingSalts.get(secretId);
    if (!salt) {
      salt = randomBytes(SALT);
      sealingSalts.set(secretId, salt);
    }
    return salt;
  };

  return {
    seal(value, associatedData) {
      const salt = sealingSalt();
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
      'set CELLCRYPT_KEYSTORE_SECRET (or restore the embedded key-store secret file) to the value the key store ' +
      'was written with. If that secret is lost, the values it sealed are too: set a new secret and re-register ' +
      'the org from its saved key file with `cellcrypt activate --key-file F --new-key-store`',
  });
}
