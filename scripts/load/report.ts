// Rates before, during and after each operation, and how long application transactions waited.
import type { Sample } from './app-sessions';
import type { OperationRun } from './operations';

export interface Window {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

export interface WindowReport {
  readonly window: string;
  readonly seconds: number;
  readonly writesPerSecond: number;
  readonly readsPerSecond: number;
  /** The slowest write and the 99th percentile, milliseconds: lock waits show here. */
  readonly writeMsMax: number;
  readonly writeMsP99: number;
  /** Total time writes spent beyond 100 ms (a proxy for waiting on locks). */
  readonly writeWaitMs: number;
}

/** Before the first operation, during each, between them and after the last. */
export function windowsOf(operations: readonly OperationRun[], end: number): Window[] {
  const windows: Window[] = [];
  let at = 0;
  for (const [i, op] of operations.entries()) {
    if (op.from > at)
      windows.push({ name: i === 0 ? 'before' : `after ${operations[i - 1].name}`, from: at, to: op.from });
    windows.push({ name: `during ${op.name}`, from: op.from, to: op.to });
    at = op.to;
  }
  if (end > at)
    windows.push({
      name: operations.length ? `after ${operations[operations.length - 1].name}` : 'run',
      from: at,
      to: end,
    });
  return windows;
}

export function reportWindows(
  windows: readonly Window[],
  writes: readonly Sample[],
  reads: readonly Sample[],
): WindowReport[] {
  return windows.map((window) => {
    const inside = (s: Sample) => s.at >= window.from && s.at < window.to;
    const w = writes
      .filter(inside)
      .map((s) => s.ms)
      .sort((a, b) => a - b);
    const seconds = Math.max((window.to - window.from) / 1000, 0.001);
    return {
      window: window.name,
      seconds: round(seconds),
      writesPerSecond: round(w.length / seconds),
      readsPerSecond: round(reads.filter(inside).length / seconds),
      writeMsMax: w.length ? w[w.length - 1] : 0,
      writeMsP99: w.length ? w[Math.min(w.length - 1, Math.floor(w.length * 0.99))] : 0,
      writeWaitMs: w.reduce((sum, ms) => sum + Math.max(0, ms - 100), 0),
    };
  });
}

const round = (n: number) => Math.round(n * 10) / 10;

export function formatWindows(rows: readonly WindowReport[]): string {
  const head = ['window', 's', 'writes/s', 'reads/s', 'write ms p99', 'max', 'waited ms'];
  const body = rows.map((r) => [
    r.window,
    String(r.seconds),
    String(r.writesPerSecond),
    String(r.readsPerSecond),
    String(r.writeMsP99),
    String(r.writeMsMax),
    String(r.writeWaitMs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  return [head, ...body].map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ')).join('\n');
}
