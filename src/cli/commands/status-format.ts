import type { StatusReport } from '../../core/status';
import type { CliIo } from '../io';

/** The human-readable form of a status report. */
export function printStatus(io: CliIo, report: StatusReport): void {
  io.print(`encryption: ${report.active ? 'active' : (report.reason ?? 'inactive')} (engine ${report.engine})`);
  if (!report.active && report.hint) io.print(`  -> ${report.hint}`);
  if (report.keyChange)
    io.print(
      `key change in progress: ${report.keyChange.from} -> ${report.keyChange.to}\n  -> ${report.keyChange.hint}`,
    );
  for (const key of report.keys) io.print(`key ${key.name}  ${key.guid}  ${key.algorithm}  created ${key.createdAt}`);
  const rows = report.columns.map((c) => [
    `${c.table}.${c.column}`,
    c.state,
    String(c.cells),
    String(c.plaintext),
    String(c.undecryptable),
    Object.entries(c.byKey)
      .map(([guid, n]) => `${guid}:${n}`)
      .join(' ') ||
      (c.problem ?? ''),
  ]);
  const header = ['column', 'state', 'cells', 'plaintext', 'undecryptable', 'by key'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  io.print(line(header));
  for (const row of rows) io.print(line(row));
}
