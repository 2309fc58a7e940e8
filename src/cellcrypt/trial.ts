import { AES_ALGORITHMS, type AesAlgorithm } from './algorithm';
import { diagnoseCell, type CellDiagnosis, type DiagnoseOptions } from './decrypt';
import { DERIVATIONS, deriveKey, type Derivation } from './derivation';
import { KEY_GUID_BYTES } from './format';
import type { CellFailure } from './open-cell';

/**
 * Which key does a passphrase give for this blob? The GUID comes from IDENTITY_VALUE, which the
 * passphrase does not give, and neither the SQL Server version (derivation) nor the AES size is
 * recorded in the blob: so every derivation and size is tried against the blob's own GUID, and
 * the key is proven by decryption (magic, lengths, integrity) instead. Used for disaster
 * recovery and for checking a passphrase before `activate` changes anything.
 */

export interface TrialKey {
  derivation: Derivation;
  algorithm: AesAlgorithm;
  key: Buffer;
}

export type TrialResult =
  | (Extract<CellDiagnosis, { ok: true }> & { derivation: Derivation; algorithm: AesAlgorithm })
  | (Extract<CellDiagnosis, { ok: false }> & { matched?: { derivation: Derivation; algorithm: AesAlgorithm } });

/** Keys to try, 2017+ derivation and AES_256 first (the Dynamics default on current servers). */
export function trialKeys(passphrase: string, derivations: readonly Derivation[] = DERIVATIONS): TrialKey[] {
  return derivations.flatMap((derivation) =>
    AES_ALGORITHMS.map((algorithm) => ({ derivation, algorithm, key: deriveKey(passphrase, derivation, algorithm) })),
  );
}

/**
 * How far decryption got. Structural failures (0) are the same for every key; a wrong key gets
 * past padding and magic (3) with a 2^-32 chance, so a failure that deep means the key matched.
 */
const FAILURE_DEPTH: Record<CellFailure, number> = {
  truncated: 0,
  'unknown-key-guid': 0,
  'unsupported-version': 0,
  'bad-ciphertext-length': 0,
  'bad-padding': 1,
  'bad-magic': 2,
  'length-mismatch': 3,
  'integrity-mismatch': 3,
  'authenticator-required': 3,
  'unexpected-authenticator': 3,
};
const KEY_MATCHED_DEPTH = 3;

/** The first key that decrypts the blob, or the failure of the key that got furthest. */
export function trialDecrypt(
  blob: Buffer,
  keys: readonly TrialKey[],
  authenticator?: Buffer,
  options?: DiagnoseOptions,
): TrialResult {
  let deepest: { diagnosis: Extract<CellDiagnosis, { ok: false }>; key: TrialKey } | undefined;
  for (const key of keys) {
    const diagnosis = diagnoseCell(
      blob,
      { keyGuid: blob.subarray(0, KEY_GUID_BYTES), key: key.key },
      authenticator,
      options,
    );
    if (diagnosis.ok) return { ...diagnosis, derivation: key.derivation, algorithm: key.algorithm };
    if (!deepest || FAILURE_DEPTH[diagnosis.reason] > FAILURE_DEPTH[deepest.diagnosis.reason])
      deepest = { diagnosis, key };
  }
  if (!deepest) return { ok: false, reason: 'unknown-key-guid', detail: 'no key to try' };
  const { diagnosis, key } = deepest;
  if (FAILURE_DEPTH[diagnosis.reason] < KEY_MATCHED_DEPTH) return diagnosis;
  return { ...diagnosis, matched: { derivation: key.derivation, algorithm: key.algorithm } };
}
