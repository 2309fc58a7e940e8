import { loadSettings } from '../config/settings';
import { Secret } from '../common/secret';
import { isCellcryptError } from '../common/errors';
import { parseKeyFile } from './key-file';
import { parseShare } from './key-shares';
import { validatePassphrase } from './passphrase';

/**
 * The input parsers a user can reach with arbitrary bytes (key files, key shares, connection
 * URLs, passphrases), wrapped for fuzzing: each call must either succeed or refuse with a
 * CellcryptError carrying exit code 2. Anything else (a TypeError, a crash, another exit
 * code) is a bug. Used by the fuzz script and by its short form in the unit tests.
 */
export type FuzzVerdict =
  { ok: true } | { ok: false; refused: true; code: string } | { ok: false; refused: false; error: unknown };

export const PARSERS = {
  keyFile: (input: Buffer) => {
    parseKeyFile(input);
  },
  keyShare: (input: Buffer) => {
    parseShare(input, 'share.txt');
  },
  databaseUrl: (input: Buffer) => {
    loadSettings({
      env: { CELLCRYPT_KEYSTORE_SECRET: 'fuzz-secret-0123456789' },
      databaseUrl: input.toString('utf8'),
      cwd: '/tmp',
    });
  },
  passphrase: (input: Buffer) => {
    validatePassphrase(new Secret(input.toString('utf8')));
  },
} as const;

export function judgeInput(parse: (input: Buffer) => void, input: Buffer): FuzzVerdict {
  try {
    parse(input);
    return { ok: true };
  } catch (error) {
    if (isCellcryptError(error) && error.exitCode === 2) return { ok: false, refused: true, code: error.code };
    return { ok: false, refused: false, error };
  }
}
