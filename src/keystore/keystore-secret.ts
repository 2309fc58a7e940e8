import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CellcryptError } from '../common/errors';
import { Secret } from '../common/secret';
import type { Settings } from '../config/settings';

/**
 * The key-store secret: CELLCRYPT_KEYSTORE_SECRET when set; otherwise, for the embedded key
 * store only, a random secret generated once into `<home>/keystore.secret` with mode 0600.
 * A server key store without the variable is refused by the settings validation.
 */
export function keystoreSecretFile(settings: Settings): string {
  return join(settings.home, 'keystore.secret');
}

export function resolveKeystoreSecret(settings: Settings, onWarning: (text: string) => void = () => undefined): Secret {
  if (settings.keystoreSecret) return settings.keystoreSecret;
  const file = keystoreSecretFile(settings);
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // 'wx': never overwrite a secret another process has just written.
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) {
    chmodSync(file, 0o600);
    onWarning(`warning: ${file} was readable by other users (mode ${mode.toString(8)}); it is now 0600`);
  }
  const value = readFileSync(file, 'utf8').trim();
  if (value.length < 16) {
    throw new CellcryptError('CellcryptKeyStoreLocked', `${file} does not hold a key-store secret`, {
      exitCode: 2,
      hint: `restore ${file} from your backup, or set CELLCRYPT_KEYSTORE_SECRET`,
    });
  }
  return new Secret(value);
}
