import { writeFileSync } from 'node:fs';
import { refuse } from '../common/errors';

/**
 * Writes a file that holds a secret (a key file, the master-key password, sqlcmd's variables):
 * O_EXCL, so an existing file (it may be a key's only other copy) is never replaced, and mode
 * 0600, so nobody else reads it. `kept` says why an existing file stays, after its name.
 */
export function writeNewPrivateFile(path: string, data: string | Buffer, kept: string): void {
  try {
    writeFileSync(path, data, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw refuse('CellcryptUsage', `${path} already exists${kept}`, 'choose another file name');
    throw refuse('CellcryptUsage', `cannot write ${path}: ${(error as Error).message}`, undefined, error);
  }
}
