import {
  deriveKey,
  diagnoseCell,
  guidStringToBytes,
  keyGuidFromIdentity,
  type CellKey,
  type Derivation,
} from '../cellcrypt';
import type { Secret } from '../common/secret';
import { CERTIFICATE_NAME } from '../common/key-names';
import { identityValueFor } from '../cellcrypt/key-identity';
import { assessActivity } from './key-access';
import { columnLabel } from './registry';
import { needsAttention, readStatus, type StatusReport } from './status';
import type { Toolkit } from './toolkit';

/**
 * `verify`: everything `status` checks (every cell decrypts in the database with its row's
 * authenticator, no plaintext left), plus an independent check of the disaster-recovery
 * path: a sample of cells per column is decrypted in Node by the TypeScript codec from the
 * key store's passphrase alone, as `decrypt-offline` would after losing the server's keys.
 */
export interface VerifyReport {
  ok: boolean;
  status: StatusReport;
  offline: Array<{ table: string; column: string; sampled: number; failed: number; failures: string[] }>;
}

export const OFFLINE_SAMPLE = 50;

export async function verify(tk: Toolkit): Promise<VerifyReport> {
  const status = await readStatus(tk);
  const offline: VerifyReport['offline'] = [];
  const activity = await assessActivity(tk);
  if (activity.active) {
    const { access } = activity;
    const cellKey = (passphrase: Secret, derivation: Derivation): CellKey => ({
      keyGuid: keyGuidFromIdentity(identityValueFor(passphrase).reveal()),
      key: deriveKey(passphrase.reveal(), derivation),
    });
    // The key store's passphrases alone (plus the previous one while a batched change runs).
    const key: CellKey[] = [cellKey(access.passphrase, access.current.derivation)];
    if (access.inFlight) key.push(cellKey(access.inFlight.passphrase, access.inFlight.from.derivation));
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
      if (failures.length)
        tk.reporter.log(
          `${columnLabel(column)}: ${failures.length} sampled cell(s) do not ` +
            `decrypt offline with the key store's key (certificate ${CERTIFICATE_NAME})`,
        );
    }
  }
  const ok = status.active && !needsAttention(status) && offline.every((o) => o.failed === 0);
  return { ok, status, offline };
}
