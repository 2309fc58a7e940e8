import { fail } from './script-errors';
import { tsqlLiteral } from './quote';
import { lockResource } from './session-lock';

/**
 * The org lock in a script: the same sp_getapplock resource the engine's install, change-key and
 * activate take, so a script and a cellcrypt command (or two scripts) never run at once. Owned
 * by the session: it spans the script's batches and transaction, and ends with the connection
 * if sqlcmd stops. @LockTimeout = 0: a holder elsewhere refuses the script at once.
 */
export function takeOrgLock(name: string): string[] {
  return [
    'DECLARE @orgLock int;',
    `EXEC @orgLock = sys.sp_getapplock @Resource = ${tsqlLiteral(lockResource(name))}, @LockMode = 'Exclusive', ` +
      `@LockOwner = 'Session', @LockTimeout = 0;`,
    // 0 and 1 are granted; -1 timed out (someone holds it), -2 cancelled, -3 deadlock, -999 bad call.
    `IF @orgLock < 0 ${fail(
      'lockNotGranted',
      'another install, change-key or activate (a cellcrypt command or a script) is running for this ' +
        'organization (SqlEncryptionSetEncryptionKeyIsAlreadyRunningCannotRunItInParallel); nothing was ' +
        'changed. Wait for it to finish, then run the script again',
    )};`,
  ];
}

export const releaseOrgLock = (name: string): string =>
  `EXEC sys.sp_releaseapplock @Resource = ${tsqlLiteral(lockResource(name))}, @LockOwner = 'Session';`;
