import { CellcryptError } from '../common/errors';
import type { Toolkit } from './toolkit';

/**
 * One key operation per org at a time (install, change-key, activate): the first takes the
 * engine's session lock, every other caller is refused at once with 0x8004852A, before it has
 * read anything, so no two of them ever decide on the same stale state.
 */
// The engines take it by this name alone, one lock per database whoever connects; SQL Server's
// session-lock.ts spells it too, for the sqlcmd scripts (engines import no core; a test holds them equal).
export const ORG_KEY_LOCK = 'cellcrypt-key-operation';

export async function withOrgLock<T>(tk: Toolkit, operation: string, work: () => Promise<T>): Promise<T> {
  const release = await tk.engine.tryLock(ORG_KEY_LOCK);
  if (!release) {
    throw new CellcryptError(
      'SqlEncryptionSetEncryptionKeyIsAlreadyRunningCannotRunItInParallel',
      `${operation}: another install, change-key or activate is running for this organization`,
      {
        exitCode: 2,
        hint: 'wait for it to finish, then check `cellcrypt status`',
      },
    );
  }
  try {
    return await work();
  } finally {
    await release();
  }
}
