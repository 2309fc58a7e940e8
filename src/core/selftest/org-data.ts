import { DERIVATIONS, deriveKey, guidStringToBytes, keyGuidFromIdentity, nvarcharText } from '../../cellcrypt';
import { diagnoseCell, type CellKey } from '../../cellcrypt';
import { identityValueFor } from '../../cellcrypt/key-identity';
import type { Secret } from '../../common/secret';
import { readHistory } from '../key-history';
import { columnLabel } from '../registry';
import type { Toolkit } from '../toolkit';

/**
 * What the life checks compare before and after an operation, read the way a DBA's tools
 * would: every cell's bytes, and every cell's plaintext decrypted in Node from the key store's
 * passphrases alone (so "nothing was lost" does not rest on the database's own decryption).
 */
const ALL = 1_000_000;

/** Every non-null cell of every registered column, `<table>.<column> <id>` → hex. */
export async function cellBytes(tk: Toolkit): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const column of tk.registry)
    for (const { id, cell } of await tk.engine.columns.sampleCells(tk.engine.knex, column, ALL))
      out.set(`${columnLabel(column)} ${id.toLowerCase()}`, Buffer.from(cell).toString('hex'));
  return out;
}

/** Every passphrase the key store keeps for this org (current, pending, every generation). */
export async function keyStorePassphrases(tk: Toolkit): Promise<Secret[]> {
  const keystore = await tk.keystore();
  const found = [await keystore.get('passphrase'), await keystore.get('passphrase.pending')];
  for (const generation of await readHistory(keystore)) found.push(generation.passphrase);
  return found.filter((secret): secret is Secret => secret !== undefined);
}

/** Cell keys for a passphrase under both derivations (the cells do not say which one wrote them). */
export function cellKeys(passphrase: Secret): CellKey[] {
  const keyGuid = keyGuidFromIdentity(identityValueFor(passphrase).reveal());
  return DERIVATIONS.map((derivation) => ({ keyGuid, key: deriveKey(passphrase.reveal(), derivation) }));
}

/**
 * Every cell's plaintext, decrypted in Node with its row's authenticator; `failed` names the
 * cells no key of the key store opens (none on a healthy org).
 */
export async function cellValues(tk: Toolkit): Promise<{ values: Map<string, string>; failed: string[] }> {
  const keys = (await keyStorePassphrases(tk)).flatMap(cellKeys);
  const values = new Map<string, string>();
  const failed: string[] = [];
  for (const column of tk.registry) {
    for (const { id, cell } of await tk.engine.columns.sampleCells(tk.engine.knex, column, ALL)) {
      const label = `${columnLabel(column)} ${id.toLowerCase()}`;
      const diagnosis = diagnoseCell(Buffer.from(cell), keys, guidStringToBytes(id));
      if (diagnosis.ok) values.set(label, nvarcharText(diagnosis.plaintext) ?? '');
      else failed.push(`${label}: ${diagnosis.reason}`);
    }
  }
  return { values, failed };
}

/** The first few differences between two snapshots, for a FAIL detail ('' when they are equal). */
export function differences(before: Map<string, string>, after: Map<string, string>, what: string): string {
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k));
  if (!changed.length) return '';
  return `${changed.length} ${what} differ (e.g. ${changed.slice(0, 3).join(', ')})`;
}

/** The key GUIDs the cells are under now, with their counts. */
export async function cellsByKey(tk: Toolkit): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const column of tk.registry) {
    const census = await tk.engine.columns.census(tk.engine.knex, column, { decrypt: false });
    for (const [guid, n] of Object.entries(census.byKey)) out.set(guid, (out.get(guid) ?? 0) + n);
  }
  return out;
}

export const describeByKey = (byKey: Map<string, number>) =>
  [...byKey].map(([guid, n]) => `${n} on ${guid}`).join(', ') || 'no cells';
