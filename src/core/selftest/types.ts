import type { Derivation } from '../../cellcrypt';
import type { Engine, ScriptRenderer, SelftestFinding, SelftestOps } from '../../engines/engine';
import type { Toolkit } from '../toolkit';

/**
 * `cellcrypt selftest`: the whole life of an org on a throw-away database, and every assumption
 * the engine makes about its server, each reported as ok, FAIL or skipped with why. Core writes
 * the checks once; the engine supplies its SQL (`engine.selftest`, engines/<kind>/selftest.ts).
 */
export type SelftestResult = SelftestFinding;

/** Where a selftest runs: what the composition root opened for it (cli/commands/selftest*.ts). */
export interface SelftestEnvironment {
  /** The throw-away org: a database of its own and a throw-away embedded key store. */
  readonly tk: Toolkit;
  /** Another engine on the same database (a second session); absent on a single-connection engine. */
  openSecond?(): Promise<Engine>;
  /** A second throw-away database for the printed scripts, and cellcrypt's renderer of them. */
  readonly scripts?: {
    readonly renderer: ScriptRenderer;
    open(): Promise<{ readonly tk: Toolkit; close(): Promise<void> }>;
  };
  /** Rows per demo table. */
  readonly rows?: number;
}

/**
 * What a test may replace to make one of the selftest's assumptions false and see it fail. Not
 * reachable from the command line: the selftest command never passes any.
 */
export interface SelftestSeams {
  /** The key bytes the server's key must equal, and that the Node side of the cell checks uses. */
  readonly deriveKey?: (passphrase: string, derivation: Derivation) => Buffer;
}

export interface SelftestReport {
  readonly ok: boolean;
  readonly engine: string;
  readonly checks: readonly SelftestResult[];
  /** The names of the checks that failed. */
  readonly failed: readonly string[];
  readonly durationMs: number;
}

/** What one check returns; its name is the runner's. */
export type Verdict = Omit<SelftestResult, 'check'>;

export const ok = (detail: string): Verdict => ({ outcome: 'ok', detail });
export const fail = (detail: string, hint?: string): Verdict => ({ outcome: 'fail', detail, ...(hint && { hint }) });
export const skipped = (why: string): Verdict => ({ outcome: 'skipped', detail: why });

/** Everything a check may use. */
export interface CheckContext {
  readonly tk: Toolkit;
  readonly ops: SelftestOps;
  readonly deriveKey: (passphrase: string, derivation: Derivation) => Buffer;
  /** A second session on the same database, when the engine has more than one connection. */
  readonly second?: Engine;
  readonly rows: number;
}
