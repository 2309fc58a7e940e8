import { CellcryptError } from '../common/errors';
import { generationOf } from '../common/key-names';
import { encryptedColumns } from './encrypted-columns';
import { forgetGeneration, readHistory } from './key-history';
import { withOrgLock } from './org-lock';
import { requirePermission } from './permissions';
import type { Toolkit } from './toolkit';
import { lastKeySave } from './toolkit-tables';

/**
 * `cellcrypt keys`: the key history as a DBA reads it, never a secret: each generation, its key
 * GUID, when it was created and retired, how many cells of this database use it, and when it
 * was last saved with show-key.
 */
export interface KeyHistoryRow {
  generation: number;
  keyGuid: string;
  createdAt: string;
  retiredAt: string | null;
  current: boolean;
  cells: number;
  lastSavedAt: string | null;
}

export async function listKeys(tk: Toolkit): Promise<KeyHistoryRow[]> {
  await requirePermission(tk, 'read-key');
  const history = await readHistory(await tk.keystore());
  const cells = await cellsByGuid(tk);
  const hierarchy = await tk.engine.keys.read(tk.engine.knex);
  const currentGeneration = Math.max(0, ...hierarchy.symmetricKeys.map((k) => generationOf(k.name) ?? 0));
  const rows: KeyHistoryRow[] = [];
  for (const entry of history) {
    const saved = await lastKeySave(tk.engine.knex, entry.keyGuid).catch(() => undefined);
    rows.push({
      generation: entry.generation,
      keyGuid: entry.keyGuid,
      createdAt: entry.createdAt,
      retiredAt: entry.retiredAt ?? null,
      current: entry.generation === currentGeneration,
      cells: cells.get(entry.keyGuid) ?? 0,
      lastSavedAt: saved?.toISOString() ?? null,
    });
  }
  return rows;
}

/**
 * `keys prune --before DATE`: forgets generations created before DATE, never the current one
 * and never one whose GUID cells of this database still carry. Other copies of the org (older
 * backups) may still need a pruned key: without `confirm` it only says what it would forget.
 */
export async function pruneKeys(
  tk: Toolkit,
  before: Date,
  confirm: boolean,
): Promise<{ pruned: number[]; kept: number[]; confirmed: boolean }> {
  await requirePermission(tk, 'change-key');
  return withOrgLock(tk, 'keys prune', async () => {
    const rows = await listKeys(tk);
    const prunable = rows.filter((row) => !row.current && row.cells === 0 && new Date(row.createdAt) < before);
    const pruned = prunable.map((row) => row.generation);
    const kept = rows.filter((row) => !pruned.includes(row.generation)).map((row) => row.generation);
    if (!confirm) return { pruned, kept, confirmed: false };
    const keystore = await tk.keystore();
    for (const generation of pruned) await forgetGeneration(keystore, generation);
    return { pruned, kept, confirmed: true };
  });
}

async function cellsByGuid(tk: Toolkit): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const column of await encryptedColumns(tk)) {
    const census = await tk.engine.columns.census(tk.engine.knex, column, { decrypt: false });
    for (const [guid, n] of Object.entries(census.byKey)) out.set(guid, (out.get(guid) ?? 0) + n);
  }
  return out;
}

export function parsePruneDate(text: string): Date {
  const date = /^\d{4}-\d{2}-\d{2}(T[\d:.]+Z?)?$/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(date.getTime()))
    throw new CellcryptError('CellcryptUsage', `--before must be a date like 2026-01-31, not "${text}"`, {
      exitCode: 2,
    });
  return date;
}
