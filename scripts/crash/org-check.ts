import {
  decryptByKey,
  deriveKey,
  guidStringToBytes,
  keyGuidFromIdentity,
  nvarcharText,
  type CellKey,
} from '../../src/cellcrypt';
import type { Secret } from '../../src/common/secret';
import { classifyColumn } from '../../src/core/column-state';
import { identityValueFor, keyGuidFor } from '../../src/cellcrypt/key-identity';
import { columnLabel, type SensitiveColumn } from '../../src/core/registry';
import type { Toolkit } from '../../src/core/toolkit';

/**
 * The crash harness's judge. It reads the org with plain SQL and decrypts in Node with the
 * TypeScript codec (never with the code under test's census), and compares every cell to the
 * plaintext recorded before the first run.
 */
export type Originals = Map<string, Map<string, string | null>>; // column label -> id -> value

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

export async function recordOriginals(tk: Toolkit): Promise<Originals> {
  const originals: Originals = new Map();
  for (const column of tk.registry) {
    const rows = await tk.engine.knex.raw(
      `select ${q(column.primaryKey)}::text as id, ${q(column.column)} as value from ${q(column.table)}`,
    );
    originals.set(
      columnLabel(column),
      new Map(rows.rows.map((r: { id: string; value: string | null }) => [r.id, r.value])),
    );
  }
  return originals;
}

/** A passphrase the judge knows: its key, and its GUID as status prints it. */
interface KnownKey {
  guid: string;
  key: CellKey;
}

export interface CheckResult {
  cells: number;
  /** Non-null originals that are NULL now, or whose cell decrypts under no known key. */
  lost: number;
  /** Cells that decrypt, but not to the original. */
  corrupted: number;
  /** Cells that decrypt under more than one known key (must never happen). */
  ambiguous: number;
  /** Plaintext found in a column whose state is `encrypted`. */
  plaintextLeft: number;
  /** Cells by the GUID of the known key that opened them, over all columns. */
  byKey: Record<string, number>;
  states: string[];
  problems: string[];
}

/** Every cell against its original, decrypting with the given passphrases only. */
export async function checkOrg(
  tk: Toolkit,
  originals: Originals,
  passphrases: readonly Secret[],
): Promise<CheckResult> {
  const keys: KnownKey[] = passphrases.map((p) => ({
    guid: keyGuidFor(p),
    key: { keyGuid: keyGuidFromIdentity(identityValueFor(p).reveal()), key: deriveKey(p.reveal(), 'sql2017') },
  }));
  const result: CheckResult = {
    cells: 0,
    lost: 0,
    corrupted: 0,
    ambiguous: 0,
    plaintextLeft: 0,
    byKey: {},
    states: [],
    problems: [],
  };
  for (const column of tk.registry) {
    const label = columnLabel(column);
    const expected = originals.get(label)!;
    const verdict = classifyColumn(column, await tk.engine.columns.describe(tk.engine.knex, column));
    if (!('state' in verdict)) {
      result.problems.push(`${label}: ${verdict.problem}`);
      continue;
    }
    result.states.push(`${label}=${verdict.state}`);
    const rows = await tk.engine.knex.raw(
      `select ${q(column.primaryKey)}::text as id, ${q(column.column)} as value from ${q(column.table)}`,
    );
    for (const row of rows.rows as Array<{ id: string; value: string | Uint8Array | null }>) {
      const original = expected.get(row.id);
      if (original === undefined || original === null) continue;
      result.cells++;
      if (row.value === null) {
        result.lost++;
        result.problems.push(`${label} ${row.id}: NULL, was not`);
      } else if (verdict.state === 'encrypted') {
        if (typeof row.value === 'string') {
          result.plaintextLeft++;
          continue;
        }
        judgeCell(result, column, row.id, Buffer.from(row.value), original, keys);
      } else if (row.value !== original) {
        result.corrupted++; // plaintext column (plaintext or converting state) must be untouched
        result.problems.push(`${label} ${row.id}: plaintext changed`);
      }
    }
  }
  return result;
}

function judgeCell(
  result: CheckResult,
  column: SensitiveColumn,
  id: string,
  cell: Buffer,
  original: string,
  keys: readonly KnownKey[],
): void {
  const authenticator = guidStringToBytes(id);
  const tried = keys.map((known) => ({ guid: known.guid, plaintext: decryptByKey(cell, known.key, authenticator) }));
  const openedBy = tried.filter((t): t is { guid: string; plaintext: Buffer } => t.plaintext !== null);
  const opened = openedBy.map((t) => t.plaintext);
  if (openedBy.length === 1) result.byKey[openedBy[0].guid] = (result.byKey[openedBy[0].guid] ?? 0) + 1;
  if (opened.length === 0) {
    result.lost++;
    result.problems.push(`${columnLabel(column)} ${id}: decrypts under no known key`);
  } else if (opened.length > 1) {
    result.ambiguous++;
  } else if (nvarcharText(opened[0]) !== original) {
    result.corrupted++;
    result.problems.push(`${columnLabel(column)} ${id}: decrypts to something else`);
  }
}
