import { tsqlLiteral } from './quote';

/**
 * The error numbers the sqlcmd scripts THROW (50000 + n): one per check, so a DBA's log names
 * the check that stopped the script. Every one stops the script (`:on error exit`) and, inside
 * the transaction, rolls it back (XACT_ABORT).
 */
export const SCRIPT_ERRORS = {
  encryptedToNull: 1,
  proofFailed: 2,
  // 3 was moveFailed, checked on a table variable the set-based UPDATE no longer needs: numbers stay stable.
  leftOnOldKey: 4,
  undecryptableAfterChange: 5,
  keyDoesNotDecrypt: 6,
  notText: 7,
  lengthDiffers: 8,
  valueTooLong: 9,
  probeFailed: 10,
  serverTooOld: 11,
  traceFlag4631: 12,
  lockNotGranted: 13,
  swapBlocked: 14,
  oldKeyStillUsed: 15,
} as const;

export type ScriptError = keyof typeof SCRIPT_ERRORS;

export const scriptErrorNumber = (error: ScriptError): number => 50000 + SCRIPT_ERRORS[error];

/** `THROW 500nn, N'<message>', 1` (THROW does not format its message: no % escaping needed). */
export const fail = (error: ScriptError, message: string): string =>
  `THROW ${scriptErrorNumber(error)}, ${tsqlLiteral(`cellcrypt: ${message}`)}, 1`;
