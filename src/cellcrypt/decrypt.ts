import type { CellKeys } from './cell-key';
import { KEY_GUID_BYTES } from './format';
import { openCell, type CellFailure, type IntegrityKind } from './open-cell';

/**
 * DECRYPTBYKEY and the explanation of its NULL. Both are thin views of `openCell`, so the answer
 * "why did this not decrypt" can never disagree with "did it decrypt".
 */

export type { CellFailure } from './open-cell';

export type CellDiagnosis =
  | {
      ok: true;
      plaintext: Buffer;
      keyGuid: Buffer;
      version: number;
      integrity: IntegrityKind;
      integrityChecked: boolean;
    }
  | { ok: false; reason: CellFailure; detail: string; keyGuid?: Buffer };

export interface DiagnoseOptions {
  /**
   * Accept a blob with integrity bytes when no authenticator is known (offline recovery without
   * row ids); the result says integrityChecked: false.
   */
  allowUncheckedIntegrity?: boolean;
}

export function diagnoseCell(
  blob: Buffer,
  keys: CellKeys,
  authenticator?: Buffer,
  options: DiagnoseOptions = {},
): CellDiagnosis {
  const result = openCell(blob, keys, authenticator, options.allowUncheckedIntegrity === true);
  if (!result.ok && blob.length < KEY_GUID_BYTES) return result; // truncated: no GUID to report
  return { ...result, keyGuid: Buffer.from(blob.subarray(0, KEY_GUID_BYTES)) };
}

/** DECRYPTBYKEY: the plaintext bytes, or null for any problem (never throws for bad data). */
export function decryptByKey(blob: Buffer, keys: CellKeys, authenticator?: Buffer): Buffer | null {
  const result = openCell(blob, keys, authenticator, false);
  return result.ok ? result.plaintext : null;
}
