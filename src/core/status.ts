import type { Db, KeyHierarchy } from '../engines/engine';
import { classifyColumn, type ColumnState } from './column-state';
import { assessActivity, currentKey, withOpenKeys } from './key-access';
import type { SensitiveColumn } from './registry';
import type { Toolkit } from './toolkit';
import { keyCreationTimes, lastKeySave } from './toolkit-tables';

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
  /** Cells an open key did not decrypt: damage (exit 3). */
  undecryptable: number;
  /**
   * Cells that could not be checked because no key could be opened (an unreachable key store,
   * a wrong key-store secret, a restore without keys): unknown, not damaged (exit 4).
   */
  unchecked: number;
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
  /**
   * When the current key (the active one; inactive, the newest in the database) was last saved
   * with show-key --out or --shares; null if never, and then it is lost with the key store.
   */
  keySavedAt: string | null;
  /** Whole days since the current key was created (its install or change-key), null without a key. */
  keyAgeDays: number | null;
  columns: ColumnStatus[];
}

const DAY_MS = 86_400_000;

export async function readStatus(tk: Toolkit): Promise<StatusReport> {
  const activity = await assessActivity(tk);
  // Inactive, the newest key in the database is the one the org would be activated with.
  const current = activity.active ? activity.access.current : currentKey(activity.hierarchy);
  const keys = keyList(activity.hierarchy, await keyCreationTimes(tk.engine.knex).catch(() => new Map<string, Date>()));
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
    keys,
    ...(await keyLife(tk, keys, current?.keyGuid)),
    columns,
  };
}

/** The current key's life: saved or not, and its age (from `keys`, i.e. from the audit where it has a row). */
async function keyLife(
  tk: Toolkit,
  keys: StatusReport['keys'],
  guid: string | undefined,
): Promise<Pick<StatusReport, 'keySavedAt' | 'keyAgeDays'>> {
  const created = keys.find((key) => key.guid === guid)?.createdAt;
  // Before install there is no audit table, and nothing to save.
  const saved = guid ? await lastKeySave(tk.engine.knex, guid).catch(() => undefined) : undefined;
  return {
    keySavedAt: saved?.toISOString() ?? null,
    keyAgeDays: created ? Math.max(0, Math.floor((Date.now() - Date.parse(created)) / DAY_MS)) : null,
  };
}

export const SAVE_KEY_HINT =
  'run `cellcrypt show-key --out ~/cellcrypt-key.txt` (or `--shares K-of-N --out-dir D`), outside any checkout';

/**
 * What `status` and `doctor` warn about in the life of an active org's key: never saved (lost
 * for good with the key store), or at least `maxAgeDays` old (CELLCRYPT_KEY_MAX_AGE_DAYS).
 * Inactive, show-key would hand out the key store's key, so saving it is no advice then.
 */
export function keyLifeWarnings(
  report: StatusReport,
  maxAgeDays: number,
): Array<{ check: 'key saved' | 'key age'; detail: string; hint: string }> {
  if (!report.active || report.keyAgeDays === null) return [];
  return [
    ...(report.keySavedAt === null
      ? [
          {
            check: 'key saved' as const,
            detail: 'the current key was never saved (show-key --out or --shares): it is lost with the key store',
            hint: SAVE_KEY_HINT,
          },
        ]
      : []),
    ...(report.keyAgeDays >= maxAgeDays
      ? [
          {
            check: 'key age' as const,
            detail: `the current key is ${report.keyAgeDays} day(s) old; CELLCRYPT_KEY_MAX_AGE_DAYS is ${maxAgeDays}`,
            hint: 'run `cellcrypt change-key --generate`, then save the new key (`cellcrypt show-key --out F`)',
          },
        ]
      : []),
  ];
}

/** True when status/verify must exit 3: plaintext left, cells that do not decrypt, or a broken column. */
export function needsAttention(report: StatusReport): boolean {
  return report.columns.some((c) => c.plaintext > 0 || c.undecryptable > 0 || c.state === 'invalid');
}

/** True when cells could not be checked (no usable key): status and verify exit 4 unless 3 applies. */
export function couldNotCheck(report: StatusReport): boolean {
  return report.columns.some((c) => c.unchecked > 0);
}

/** The exit code of status and verify: 3 for damage or plaintext, 4 for cells not checked, else 0. */
export function statusExitCode(report: StatusReport, ok = true): number {
  if (needsAttention(report)) return 3;
  if (couldNotCheck(report)) return 4;
  return ok ? 0 : 3;
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
  const base = {
    table: column.table,
    column: column.column,
    cells: 0,
    byKey: {},
    plaintext: 0,
    undecryptable: 0,
    unchecked: 0,
  };
  const verdict = classifyColumn(column, await columns.describe(db, column));
  if ('problem' in verdict) return { ...base, state: 'invalid', problem: verdict.problem };
  if (verdict.state === 'encrypted') {
    const census = await columns.census(db, column, { decrypt });
    // Without an open key no cell can be shown to decrypt, nor to be damaged: all are unchecked.
    return {
      ...base,
      state: verdict.state,
      cells: census.cells,
      byKey: { ...census.byKey },
      ...(decrypt ? { undecryptable: census.undecryptable ?? 0 } : { unchecked: census.cells }),
    };
  }
  const plaintext = await columns.countNonNull(db, column, 'plaintext');
  const shadowCells = verdict.state === 'converting' ? await columns.countNonNull(db, column, 'shadow') : 0;
  return { ...base, state: verdict.state, cells: shadowCells, plaintext };
}
