import {
  deriveKey,
  diagnoseCell,
  guidStringToBytes,
  keyGuidFromIdentity,
  type CellKey,
  type Derivation,
} from '../cellcrypt';
import type { Secret } from '../common/secret';
import { identityValueFor } from '../cellcrypt/key-identity';
import { withOpenKeys, type KeyAccess } from './key-access';
import { columnLabel } from './registry';
import { needsAttention, readStatusConsistently, type StatusReport } from './status';
import type { Toolkit } from './toolkit';

/**
 * `verify`: everything `status` checks (every cell decrypts in the database with its row's
 * authenticator, no plaintext left), plus an independent check of the disaster-recovery
 * path: a sample of cells per column is decrypted in Node by the TypeScript codec from the
 * key store's passphrase alone, as `decrypt-offline` would after losing the server's keys.
 * For every column with cells that do not decrypt it names the rows, by primary key, so a DBA
 * can restore them (`change-key` refuses such a column and sends the DBA here).
 */
export interface VerifyReport {
  ok: boolean;
  status: StatusReport;
  offline: Array<{ table: string; column: string; sampled: number; failed: number; failures: string[] }>;
  undecryptable: UndecryptableCells[];
}

/** The rows of one column whose cell does not decrypt; only columns with such cells are listed. */
export interface UndecryptableCells {
  table: string;
  column: string;
  primaryKey: string;
  /** Every such cell of the column. */
  count: number;
  /** The first LISTED_PER_COLUMN of them, in the engine's primary-key order. */
  ids: string[];
  /** count - ids.length: cells not listed. */
  omitted: number;
}

export const OFFLINE_SAMPLE = 50;
/** Enough ids to start restoring, few enough to read; the count says how many more there are. */
export const LISTED_PER_COLUMN = 20;

/**
 * Everything is read in one consistent picture (status.ts, readStatusConsistently): while a key
 * operation runs nothing is checked (`status.running`, exit 0), and a key change that commits
 * during the checks makes them run again, so none of them counts cells against a stale key.
 */
export async function verify(tk: Toolkit): Promise<VerifyReport> {
  const { status, more } = await readStatusConsistently(tk, (report, activity) =>
    activity.active ? deeperChecks(tk, activity.access, report) : Promise.resolve(undefined),
  );
  const offline = more?.offline ?? [];
  for (const o of offline.filter((item) => item.failed > 0))
    tk.reporter.log(
      `${columnLabel(o)}: ${o.failed} sampled cell(s) do not ` +
        `decrypt offline with the key store's key (certificate ${more!.certificate})`,
    );
  const ok = !status.running && status.active && !needsAttention(status) && offline.every((o) => o.failed === 0);
  return { ok, status, offline, undecryptable: more?.undecryptable ?? [] };
}

/** The rows to restore, and the offline sample: the key store's passphrases alone, in Node. */
async function deeperChecks(tk: Toolkit, access: KeyAccess, status: StatusReport) {
  const undecryptable = await listUndecryptable(tk, access, status);
  const cellKey = (passphrase: Secret, derivation: Derivation): CellKey => ({
    keyGuid: keyGuidFromIdentity(identityValueFor(passphrase).reveal()),
    key: deriveKey(passphrase.reveal(), derivation),
  });
  // The key store's passphrases alone (plus the previous one while a batched change runs).
  const key: CellKey[] = [cellKey(access.passphrase, access.current.derivation)];
  if (access.inFlight) key.push(cellKey(access.inFlight.passphrase, access.inFlight.from.derivation));
  const offline: VerifyReport['offline'] = [];
  for (const column of tk.registry) {
    const state = status.columns.find((c) => c.table === column.table && c.column === column.column)?.state;
    if (state !== 'encrypted') continue;
    const sample = await tk.engine.columns.sampleCells(tk.engine.knex, column, OFFLINE_SAMPLE);
    const failures: string[] = [];
    for (const { id, cell } of sample) {
      const diagnosis = diagnoseCell(cell, key, guidStringToBytes(id));
      if (!diagnosis.ok) failures.push(`${column.primaryKey} ${id}: ${diagnosis.reason}`);
    }
    offline.push({
      table: column.table,
      column: column.column,
      sampled: sample.length,
      failed: failures.length,
      failures: failures.slice(0, 5),
    });
  }
  return { undecryptable, offline, certificate: access.certificate };
}

/**
 * The census counted the bad cells; this names them, with the keys open again (a second pass,
 * only over the columns that have any). The count is the one the listing query saw.
 */
async function listUndecryptable(tk: Toolkit, access: KeyAccess, status: StatusReport): Promise<UndecryptableCells[]> {
  const columns = tk.registry.filter((column) =>
    status.columns.some(
      (c) => c.table === column.table && c.column === column.column && c.state === 'encrypted' && c.undecryptable > 0,
    ),
  );
  if (columns.length === 0) return [];
  return withOpenKeys(tk, access, async (trx) => {
    const out: UndecryptableCells[] = [];
    // One column after the other: a transaction's queries must not interleave.
    for (const column of columns) {
      const { count, ids } = await tk.engine.columns.findUndecryptable(trx, column, LISTED_PER_COLUMN);
      if (count === 0) continue;
      const { table, column: name, primaryKey } = column;
      out.push({ table, column: name, primaryKey, count, ids, omitted: count - ids.length });
    }
    return out;
  });
}
