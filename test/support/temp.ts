import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throw-away directory for tests that need files. */
export function tempDir(prefix = 'cellcrypt-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
