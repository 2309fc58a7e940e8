import { Secret } from '../../src/common/secret';
import type { Run } from './faults';
import { checkOrg, type CheckResult, type Originals } from './org-check';
import { cli, withToolkit, type Org } from './org';

export type Operation = 'install' | 'change-key' | 'change-key-batched' | 'rewrap' | 'activate';
export type Fault = 'sigkill' | 'sigint' | 'server-stop' | 'keystore-down' | 'held';
export const BATCH = 500;

/** What one (operation, fault) pair found over its trials. */
export interface Tally {
  trials: number;
  /** Trials whose fault hit the operation while it ran. */
  faulted: number;
  cellsChecked: number;
  lost: number;
  corrupted: number;
  ambiguous: number;
  plaintextLeft: number;
  /** status or verify reported damage, cells not checked or an inactive org while every cell was intact. */
  falseAlarms: number;
  /** status or verify disagreed with the judge otherwise (states, the key of the cells, an exit code). */
  misreported: number;
  rerunFailed: number;
  /** The operation did not end by itself after its fault. */
  hung: number;
  /** sigint: how the interrupted process ended (130 stopped, 0 had finished; a signal: no orderly stop). */
  exits?: Record<string, number>;
  /** keystore-down: trials per step at which the key store went away (0: before the operation started). */
  steps?: Record<string, number>;
  /** rewrap (held): where each kill left the two stores (see rewrapWindow in the harness). */
  windows?: Record<string, number>;
}

export function newTally(fault: Fault): Tally {
  return {
    trials: 0,
    faulted: 0,
    cellsChecked: 0,
    lost: 0,
    corrupted: 0,
    ambiguous: 0,
    plaintextLeft: 0,
    falseAlarms: 0,
    misreported: 0,
    rerunFailed: 0,
    hung: 0,
    ...(fault === 'sigint' && { exits: {} }),
    ...(fault === 'keystore-down' && { steps: {} }),
  };
}

export function failed(tally: Tally): boolean {
  const { lost, corrupted, ambiguous, plaintextLeft, falseAlarms, misreported, rerunFailed, hung } = tally;
  return lost + corrupted + ambiguous + plaintextLeft + falseAlarms + misreported + rerunFailed + hung > 0;
}

export interface Trial {
  org: Org;
  originals: Originals;
  operation: Operation;
  fault: Fault;
  trial: number;
  tally: Tally;
  run: Run;
  /** activate: the key the operator saved, and its file. */
  saved?: { key: Secret; file: string };
}

export const count = (record: Record<string, number>, key: string) => (record[key] = (record[key] ?? 0) + 1);

/**
 * After every fault: the cells against their originals (the TypeScript codec, every key the key
 * store knows), what the interrupted process said, then the first `status --json` and `verify
 * --json` (in alternating order: the first of them may have a key store to repair) judged
 * against that, the key `show-key` hands out, and a re-run that must complete.
 */
export async function judgeTrial(t: Trial): Promise<void> {
  const { org, originals, tally } = t;
  const note = (what: string) => process.stdout.write(`  trial ${t.trial} (${t.operation}/${t.fault}): ${what}\n`);
  tally.trials++;
  if (t.run.faulted) tally.faulted++;
  if (t.run.hung) {
    tally.hung++;
    note(`did not exit by itself after its fault: ${t.run.stderr.slice(-500)}`);
  }

  // 1. The data as the fault left it, with every key known.
  const known = await withToolkit(org, async (tk) => {
    const keystore = await tk.keystore().catch(() => undefined);
    const values = [await keystore?.get('passphrase'), await keystore?.get('passphrase.pending'), t.saved?.key];
    // One entry per key: the saved key is the key store's passphrase again once activate stored it.
    const keys = values.filter(
      (k, i): k is Secret => k !== undefined && values.findIndex((other) => other?.equals(k)) === i,
    );
    return { keys, check: await checkOrg(tk, originals, keys) };
  });
  add(tally, known.check, note);

  // 2. What a Ctrl-C'd process said.
  if (t.fault === 'sigint') judgeInterrupted(t, note);

  // 3. The first status and verify.
  const order = t.trial % 2 ? (['verify', 'status'] as const) : (['status', 'verify'] as const);
  const runs: Partial<Record<'status' | 'verify', { code: number; json: any }>> = {};
  for (const command of order) runs[command] = await cli(org.env, [command, '--json']);
  const status = runs.status!.json;
  judgeReport(t, 'status', runs.status!.code, status, known.check, note);
  judgeReport(t, 'verify', runs.verify!.code, runs.verify!.json.status, known.check, note, runs.verify!.json);

  // 4. The key show-key hands out opens every cell (unless a batched change is in flight: then
  //    the cells are on two keys, both in the key store; or the org is honestly inactive).
  const shown = await cli(org.env, ['show-key', '--json']);
  if (shown.code === 0 && !status.keyChange) {
    const alone = await withToolkit(org, (tk) => checkOrg(tk, originals, [new Secret(shown.json.key)]));
    if (alone.lost || alone.corrupted) {
      tally.misreported++;
      note(`the key show-key hands out does not open ${alone.lost} cell(s)`);
    }
  } else if (shown.code !== 0 && status.active && known.check.states.some((s) => s.endsWith('=encrypted'))) {
    tally.misreported++;
    note(`show-key failed: ${JSON.stringify(shown.json)}`);
  }

  // 5. A re-run completes; verify passes; every cell opens with the key show-key hands out.
  const rerun = rerunOf(t, status);
  const again = await cli(org.env, rerun);
  const verified = await cli(org.env, ['verify', '--json']);
  const finalKey = await cli(org.env, ['show-key', '--json']);
  const final =
    finalKey.code === 0
      ? await withToolkit(org, (tk) => checkOrg(tk, originals, [new Secret(finalKey.json.key)]))
      : undefined;
  if (again.code !== 0 || verified.code !== 0 || !final || final.lost || final.corrupted || final.plaintextLeft) {
    tally.rerunFailed++;
    note(
      `re-run ${rerun.join(' ')} exit ${again.code} ${JSON.stringify(again.json.error ?? '')}, ` +
        `verify exit ${verified.code} ${JSON.stringify(verified.json.error ?? verified.json.ok ?? '')}, ` +
        `final ${JSON.stringify(final && { ...final, states: undefined, problems: final.problems.slice(0, 3) })}`,
    );
  }
}

function rerunOf(t: Trial, status: any): string[] {
  if (t.operation === 'install') return ['install'];
  if (status.keyChange) return ['change-key', '--resume', '--batch-size', String(BATCH)];
  if (t.operation === 'rewrap') return ['rewrap'];
  if (t.operation === 'activate' && !status.active) return ['activate', '--key-file', t.saved!.file, '--new-key-store'];
  // Nothing to finish: install again must change nothing and succeed.
  return ['install'];
}

/** A Ctrl-C'd process stops by itself with 130 and says how to go on (or had finished: 0). */
function judgeInterrupted(t: Trial, note: (what: string) => void): void {
  const { code, signal, stderr } = t.run;
  const exits = t.tally.exits!;
  if (signal) {
    // Only a process that ignores its Ctrl-C handling dies of the signal: the harness sends it
    // after the operation has connected, when the handling is in place.
    count(exits, signal);
    t.tally.misreported++;
    return note(`ended by ${signal}: no orderly stop, nothing said`);
  }
  count(exits, String(code));
  if (code === 0) return;
  const way =
    t.operation === 'install'
      ? 'run `cellcrypt install` again'
      : t.operation === 'change-key-batched'
        ? 'change-key --resume --batch-size N'
        : t.operation === 'change-key'
          ? 'run change-key again'
          : 'again if it is not done';
  if (code !== 130 || !stderr.includes('error [CellcryptInterrupted]') || !stderr.includes(way)) {
    t.tally.misreported++;
    note(`after Ctrl-C: exit ${code}, without the way on (${way}): ${stderr.slice(-400)}`);
  }
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/**
 * One status document (status --json, or verify's) against the judge: no operation is running
 * (the process is gone), the column states agree, nothing is called undecryptable, unchecked or
 * inactive while every cell is intact under the key store's keys (a false alarm), the cells are
 * on the keys the judge opened them with, and the exit code is the one those facts call for.
 * Honestly inactive: an activate that had not stored its keys, an install before its keys.
 */
export function judgeReport(
  t: Trial,
  command: 'status' | 'verify',
  code: number,
  doc: any,
  check: CheckResult,
  note: (what: string) => void,
  verified?: any,
): void {
  const { tally } = t;
  const misreport = (what: string) => {
    tally.misreported++;
    note(`${command}: ${what}`);
  };
  const falseAlarm = (what: string) => {
    tally.falseAlarms++;
    note(`${command}: false alarm: ${what}`);
  };
  if (!doc || !Array.isArray(doc.columns)) return misreport(`no report: ${JSON.stringify(verified ?? doc)}`);
  if (doc.running) misreport(`says ${JSON.stringify(doc.running)}; nothing runs`);
  const states = doc.columns.map((c: any) => `${c.table}.${c.column}=${c.state}`);
  if (JSON.stringify(states) !== JSON.stringify(check.states))
    misreport(`states ${JSON.stringify(states)}, judge ${JSON.stringify(check.states)}`);
  const intact = check.lost + check.corrupted + check.ambiguous === 0;
  const allEncrypted = check.states.every((s) => s.endsWith('=encrypted'));
  const undecryptable = sum(doc.columns.map((c: any) => c.undecryptable));
  const unchecked = sum(doc.columns.map((c: any) => c.unchecked));
  if (undecryptable > 0 && intact) falseAlarm(`${undecryptable} cell(s) undecryptable`);
  let expected: number;
  if (doc.active) {
    if (unchecked > 0) falseAlarm(`${unchecked} cell(s) unchecked while active`);
    // The key the cells use: status counts them by GUID, the judge by the key that opened them.
    const byKey: Record<string, number> = {};
    for (const column of doc.columns)
      for (const [guid, n] of Object.entries(column.byKey as Record<string, number>))
        byKey[guid] = (byKey[guid] ?? 0) + n;
    const sorted = (record: Record<string, number>) => JSON.stringify(Object.entries(record).sort());
    if (intact && sorted(byKey) !== sorted(check.byKey))
      misreport(`cells by key ${sorted(byKey)}, judge ${sorted(check.byKey)}`);
    const listed = new Set(doc.keys.map((k: any) => k.guid));
    const missing = Object.keys(byKey).filter((guid) => !listed.has(guid));
    if (missing.length) misreport(`cells on ${missing.join(', ')}, a key it does not list`);
    if (!allEncrypted && !doc.installIncomplete) misreport('columns still plaintext, and no "install incomplete"');
    expected = allEncrypted ? 0 : 3;
  } else {
    const encryptedCells = doc.columns.some((c: any) => c.state === 'encrypted' && c.cells > 0);
    const honest =
      (t.operation === 'activate' &&
        /activate/.test(doc.hint ?? '') &&
        doc.columns.every((c: any) => c.state !== 'encrypted' || c.unchecked === c.cells)) ||
      (t.operation === 'install' && !encryptedCells && /install/.test(doc.hint ?? ''));
    if (!honest) falseAlarm(`inactive: ${doc.reason} (${doc.hint})`);
    expected = allEncrypted ? 4 : 3;
  }
  if (code !== expected) {
    if (expected === 0 && intact) falseAlarm(`exit ${code}, nothing wrong`);
    else misreport(`exit ${code}, expected ${expected}`);
  }
  if (!verified) return;
  const offlineFailures = sum((verified.offline ?? []).map((o: any) => o.failed));
  if (offlineFailures > 0 && intact) falseAlarm(`${offlineFailures} sampled cell(s) fail offline`);
  if ((verified.undecryptable ?? []).length && intact) falseAlarm('rows listed to restore');
  if (verified.ok !== (expected === 0 && Boolean(doc.active))) misreport(`ok ${verified.ok}, exit ${code}`);
}

function add(tally: Tally, check: CheckResult, note: (what: string) => void): void {
  tally.cellsChecked += check.cells;
  tally.lost += check.lost;
  tally.corrupted += check.corrupted;
  tally.ambiguous += check.ambiguous;
  tally.plaintextLeft += check.plaintextLeft;
  if (check.lost || check.corrupted || check.ambiguous || check.plaintextLeft)
    note(`${JSON.stringify({ ...check, problems: check.problems.slice(0, 5) })}`);
}
