import type { Db, KeyHierarchy } from '../engines/engine';
import { classifyColumn, type ColumnState } from './column-state';
import { assessActivity, currentKey, withOpenKeys, type Activity } from './key-access';
import type { SensitiveColumn } from './registry';
import { describeRunning, orgLockHeld, type RunningOperation } from './running-operation';
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
  /**
   * A batched key change that stopped (cells on two keys, both readable, and no change-key holds
   * the org lock): `--resume` finishes it.
   */
  keyChange?: { state: 'interrupted'; from: string; to: string; hint: string };
  /**
   * A key operation holds the org lock: nothing was opened or counted (`columns` is empty, exit
   * 0), since what it holds is no picture of the org; `active` only says whether the database
   * has a key hierarchy.
   */
  running?: RunningOperation;
  /**
   * An installed org with registered columns still plaintext (an install that did not finish,
   * or a column registered since): applications still write plaintext there (exit 3).
   */
  installIncomplete?: { columns: string[]; hint: string };
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

/**
 * How often status reads again when the key hierarchy changed while it read (a key operation
 * started and committed meanwhile); after that it says a key operation is running.
 */
const ATTEMPTS = 3;

export async function readStatus(tk: Toolkit): Promise<StatusReport> {
  return (await readStatusConsistently(tk)).status;
}

/** A status report, the activity it was read with (none while an operation runs), and `more`. */
export interface StatusSnapshot<T> {
  status: StatusReport;
  activity?: Activity;
  more?: T;
}

/**
 * One consistent picture: nothing is read while a key operation holds the org lock, and a
 * picture is kept only if the key hierarchy is the same after it (and after `more`, verify's
 * own reads) as before: a change that committed in between moved cells to a key this reader
 * never opened, and counting them reported every cell undecryptable (issue 15). A key-store
 * repair in the first read is read again in the second, so the command works on what it
 * repaired.
 */
export async function readStatusConsistently<T>(
  tk: Toolkit,
  more?: (status: StatusReport, activity: Activity) => Promise<T>,
): Promise<StatusSnapshot<T>> {
  for (let attempt = 1; ; attempt++) {
    if (await orgLockHeld(tk)) return { status: await runningReport(tk) };
    const activity = await assessActivity(tk);
    const status = await reportOf(tk, activity);
    const extra = more ? await more(status, activity) : undefined;
    const after = await tk.engine.keys.read(tk.engine.knex);
    if (fingerprint(after) === fingerprint(activity.hierarchy)) return { status, activity, more: extra };
    if (attempt === ATTEMPTS)
      return {
        status: await runningReport(tk, {
          operation: 'key operation',
          detail: `the key hierarchy changed each of the ${ATTEMPTS} times status read it: key operations are running`,
          hint: 'run `cellcrypt status` again when they have finished',
        }),
      };
  }
}

async function reportOf(tk: Toolkit, activity: Activity): Promise<StatusReport> {
  // Inactive, the newest key in the database is the one the org would be activated with.
  const current = activity.active ? activity.access.current : currentKey(activity.hierarchy);
  const keys = keyList(activity.hierarchy, await keyCreationTimes(tk.engine.knex).catch(() => new Map<string, Date>()));
  const columns = activity.active
    ? await withOpenKeys(tk, activity.access, (trx) => allColumns(tk, trx, true))
    : await allColumns(tk, tk.engine.knex, false);
  const installIncomplete = await unfinishedInstall(tk, columns);
  return {
    active: activity.active,
    engine: tk.engine.kind,
    ...(activity.active
      ? {}
      : { reason: explain(activity.reason, columns), hint: inactiveHint(activity, columns, installIncomplete) }),
    ...(activity.active && activity.access.inFlight
      ? {
          keyChange: {
            state: 'interrupted' as const,
            from: activity.access.inFlight.from.keyGuid,
            to: activity.access.current.keyGuid,
            hint: 'finish it with `cellcrypt change-key --resume --batch-size N`',
          },
        }
      : {}),
    ...(installIncomplete && { installIncomplete }),
    keys,
    ...(await keyLife(tk, keys, current?.keyGuid)),
    columns,
  };
}

/** While an operation holds the org lock: what runs, the keys the database has, no cell counted. */
async function runningReport(tk: Toolkit, running?: RunningOperation): Promise<StatusReport> {
  const hierarchy = await tk.engine.keys.read(tk.engine.knex);
  const current = currentKey(hierarchy);
  const keys = keyList(hierarchy, await keyCreationTimes(tk.engine.knex).catch(() => new Map<string, Date>()));
  return {
    active: hierarchy.masterKey && current !== undefined,
    engine: tk.engine.kind,
    running: running ?? (await describeRunning(tk, hierarchy)),
    keys,
    ...(await keyLife(tk, keys, current?.keyGuid)),
    columns: [],
  };
}

/** What identifies the key hierarchy: a change-key, activate or rewrap that commits changes it. */
function fingerprint(hierarchy: KeyHierarchy): string {
  const keys = hierarchy.symmetricKeys.map((k) => `${k.name}=${k.keyGuid}@${k.createdAt.toISOString()}`).sort();
  return JSON.stringify([hierarchy.masterKey, [...hierarchy.certificates].sort(), keys]);
}

const INSTALL_AGAIN = 'run `cellcrypt install` again: it converts what is left and changes nothing else';

/** An installed org whose registered columns are not all encrypted: an install stopped, or a new column. */
async function unfinishedInstall(
  tk: Toolkit,
  columns: readonly ColumnStatus[],
): Promise<StatusReport['installIncomplete']> {
  if (!(await tk.organizationId())) return undefined;
  const left = columns.filter((c) => c.state === 'plaintext' || c.state === 'converting');
  return left.length ? { columns: left.map((c) => `${c.table}.${c.column}`), hint: INSTALL_AGAIN } : undefined;
}

/** An install stopped before it made the keys: no cell is encrypted, so activate is the wrong advice. */
function inactiveHint(
  activity: Activity & { active: false },
  columns: readonly ColumnStatus[],
  installIncomplete: StatusReport['installIncomplete'],
): string {
  const encryptedCells = columns.some((c) => c.state === 'encrypted' && c.cells > 0);
  return installIncomplete && !encryptedCells ? INSTALL_AGAIN : activity.hint;
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

/**
 * True when status/verify must exit 3: plaintext left, cells that do not decrypt, a broken
 * column, or an install that did not finish (a registered column not encrypted, even an empty one).
 */
export function needsAttention(report: StatusReport): boolean {
  return (
    report.installIncomplete !== undefined ||
    report.columns.some((c) => c.plaintext > 0 || c.undecryptable > 0 || c.state === 'invalid')
  );
}

/** True when cells could not be checked (no usable key): status and verify exit 4 unless 3 applies. */
export function couldNotCheck(report: StatusReport): boolean {
  return report.columns.some((c) => c.unchecked > 0);
}

/**
 * The exit code of status and verify: 3 for damage or plaintext, 4 for cells not checked, else 0;
 * 0 while a key operation runs (nothing was counted, and nothing is wrong for being in progress).
 */
export function statusExitCode(report: StatusReport, ok = true): number {
  if (report.running) return 0;
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
