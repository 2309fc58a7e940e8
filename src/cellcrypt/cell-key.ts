import type { AesAlgorithm } from './algorithm';
import { KEY_GUID_BYTES } from './format';

/**
 * An opened symmetric key, as SQL Server holds it after OPEN SYMMETRIC KEY: the GUID written
 * into (and matched against) every blob, and the raw AES key bytes.
 */
export interface CellKey {
  /** The 16 stored bytes (mixed-endian), e.g. from keyGuidFromIdentity. */
  keyGuid: Buffer;
  key: Buffer;
  /** Optional cross-check of key.length; the length alone decides the AES size. */
  algorithm?: AesAlgorithm;
}

export type CellKeys = CellKey | readonly CellKey[];

function isKeyList(keys: CellKeys): keys is readonly CellKey[] {
  return Array.isArray(keys);
}

/**
 * The keys whose GUID equals the blob's (bytes 0..15). SQL Server never has two keys with one
 * GUID, but callers trying several derivations of one passphrase do, so all matches are kept.
 */
export function keysForGuid(keys: CellKeys, blob: Buffer): CellKey[] {
  const list = isKeyList(keys) ? keys : [keys];
  const matches: CellKey[] = [];
  for (const candidate of list) {
    if (candidate.keyGuid.length === KEY_GUID_BYTES && candidate.keyGuid.compare(blob, 0, KEY_GUID_BYTES) === 0) {
      matches.push(candidate);
    }
  }
  return matches;
}
