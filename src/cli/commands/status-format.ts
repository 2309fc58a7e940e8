import { couldNotCheck, keyLifeWarnings, type StatusReport } from '../../core/status';
import type { CliIo } from '../io';

/**
 * The human-readable form of a status report, with a warning for a key never saved and, given
 * `keyMaxAgeDays` (CELLCRYPT_KEY_MAX_AGE_DAYS; status passes it), for a key that is too old.
 */
export function printStatus(io: CliIo, report: StatusReport, keyMaxAgeDays = Infinity): void {
  if (report.running) {
    // Nothing was counted: the keys are listed, the cells are not.
    io.print(`encryption: ${report.running.detail} (engine ${report.engine})\n  -> ${report.running.hint}`);
    for (const key of report.keys) io.print(`key ${key.name}  ${key.guid}  ${key.algorithm}  created ${key.createdAt}`);
    io.print('cells: not counted while a key operation runs');
    return;
  }
  io.print(`encryption: ${report.active ? 'active' : (report.reason ?? 'inactive')} (engine ${report.engine})`);
  if (!report.active && report.hint) io.print(`  -> ${report.hint}`);
  if (report.installIncomplete) {
    const { columns, hint } = report.installIncomplete;
    io.print(`install incomplete: ${columns.length} column(s) still plaintext (${columns.join(', ')})\n  -> ${hint}`);
  }
  if (report.keyChange)
    io.print(
      `key change interrupted (no change-key is running): ${report.keyChange.from} -> ${report.keyChange.to}` +
        `\n  -> ${report.keyChange.hint}`,
    );
  for (const key of report.keys) io.print(`key ${key.name}  ${key.guid}  ${key.algorithm}  created ${key.createdAt}`);
  if (report.active && report.keyAgeDays !== null)
    io.print(`current key: ${report.keyAgeDays} day(s) old, saved ${report.keySavedAt ?? 'never'}`);
  for (const warning of keyLifeWarnings(report, keyMaxAgeDays))
    io.print(`warning: ${warning.detail}\n  -> ${warning.hint}`);
  const rows = report.columns.map((c) => [
    `${c.table}.${c.column}`,
    c.state,
    String(c.cells),
    String(c.plaintext),
    String(c.undecryptable),
    String(c.unchecked),
    Object.entries(c.byKey)
      .map(([guid, n]) => `${guid}:${n}`)
      .join(' ') ||
      (c.problem ?? ''),
  ]);
  const header = ['column', 'state', 'cells', 'plaintext', 'undecryptable', 'unchecked', 'by key'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  io.print(line(header));
  for (const row of rows) io.print(line(row));
  if (couldNotCheck(report))
    io.print('unchecked: cells that could not be checked without a usable key (not damage: see the reason above)');
}
