import type { Db, KeyHierarchy } from '../engines/engine';
import { classifyColumn, type ColumnState } from './column-state';
import { assessActivity, withOpenKeys } from './key-access';
import type { SensitiveColumn } from './registry';
import type { Toolkit } from './toolkit';
import { keyCreationTimes } from './toolkit-tables';

/**
 * The state of the org's encryption, read-only: is it active (and if not, why and what to run),
 * which keys exist, and per registered column how many cells there are, under which key GUID,
 * how many are still plaintext and how many do not decrypt with their row's authenticator.
 * The JSON shape is the CLI contract in docs/architecture.md (`status --json`).
 */
export interface ColumnStatus {
  table: string;
  column: string;
  state: ColumnState | 'invalid';
  cells: number;
  byKey: Record<string, number>;
  plaintext: number;
  undecryptable: number;
  problem?: string;
}

export interface StatusReport {
  active: boolean;
  engine: string;
  reason?: string;
  hint?: string;
  /** A batched key change that has not finished (cells on two keys; both readable). */
  keyChange?: { from: string; to: string; hint: string };
  keys: Array<{ name: string; guid: string; algorithm: string; createdAt: string }>;
  columns: ColumnStatus[];
}

export async function readStatus(tk: Toolkit): Promise<StatusReport> {
  const activity = await assessActivity(tk);
  const columns = activity.active
    ? await withOpenKeys(tk, activity.access, (trx) => allColumns(tk, trx, true))
    : await allColumns(tk, tk.engine.knex, false);
  return {
    active: activity.active,
    engine: tk.engine.kind,
    ...(activity.active ? {} : { reason: explain(activity.reason, columns), hint: activity.hint }),
    ...(activity.active && activity.access.inFlight
      ? {
          keyChange: {
            from: activity.access.inFlight.from.keyGuid,
            to: activity.access.current.keyGuid,
            hint: 'finish it with `cellcrypt change-key --resume --batch-size N`',
          },
        }
      : {}),
    keys: keyList(activity.hierarchy, await keyCreationTimes(tk.engine.knex).catch(() => new Map<string, Date>())),
    columns,
  };
}

/** True when status/verify must exit 3: plaintext left, cells that do not decrypt, or a broken column. */
export function needsAttention(report: StatusReport): boolean {
  return report.columns.some((c) => c.plaintext > 0 || c.undecryptable > 0 || c.state === 'invalid');
}

function explain(reason: string, columns: ColumnStatus[]): string {
  const cells = columns.reduce((sum, c) => sum + c.cells, 0);
  return cells > 0 ? `inactive: encrypted cells exist, no usable key (${reason})` : `inactive: ${reason}`;
}

/** `createdAt`: when the key GUID was first created (audit), else when the database made the key. */
function keyList(hierarchy: KeyHierarchy, created: Map<string, Date>): StatusReport['keys'] {
  return hierarchy.symmetricKeys.map((k) => ({
    name: k.name,
    guid: k.keyGuid,
    algorithm: k.algorithm,
    createdAt: (created.get(k.keyGuid.toUpperCase()) ?? k.createdAt).toISOString(),
  }));
}

// One column after the other: a transaction's queries must not interleave, and PGlite has a
// single connection.
async function allColumns(tk: Toolkit, db: Db, decrypt: boolean): Promise<ColumnStatus[]> {
  const out: ColumnStatus[] = [];
  for (const column of tk.registry) out.push(await columnStatus(tk, column, db, decrypt));
  return out;
}

async function columnStatus(tk: Toolkit, column: SensitiveColumn, db: Db, decrypt: boolean): Promise<ColumnStatus> {
  const { columns } = tk.engine;
  const base = { table: column.table, column: column.column, cells: 0, byKey: {}, plaintext: 0, undecryptable: 0 };
  const verdict = classifyColumn(column, await columns.describe(db, column));
  if ('problem' in verdict) return { ...base, state: 'invalid', problem: verdict.problem };
  if (verdict.state === 'encrypted') {
    const census = await columns.census(db, column, { decrypt });
    // Without an open key no cell can be shown to decrypt: all count as undecryptable.
    return {
      ...base,
      state: verdict.state,
      cells: census.cells,
      byKey: { ...census.byKey },
      undecryptable: census.undecryptable ?? census.cells,
    };
  }
  const plaintext = await columns.countNonNull(db, column, 'plaintext');
  const shadowCells = verdict.state === 'converting' ? await columns.countNonNull(db, column, 'shadow') : 0;
  return { ...base, state: verdict.state, cells: shadowCells, plaintext };
}
