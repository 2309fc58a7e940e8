import { deriveKey } from '../../cellcrypt';
import { CellcryptError, isCellcryptError } from '../../common/errors';
import type { Engine, SelftestOps } from '../../engines/engine';
import { batchedInterrupted } from './batched';
import {
  cellFormat,
  emptyString,
  keyMaterialCheck,
  longestValue,
  nodeCellsInServer,
  serverCellsInNode,
} from './codec-checks';
import { activateAfterDrop, changeKeyOneTransaction, demoOrg, installAgain, installOrg, verifyOrg } from './life';
import { lockTimeout, orgLockExcludes, tableLockHeld } from './lock-checks';
import { printedScripts } from './script-checks';
import { SecretRedactor } from './secrets';
import {
  fail,
  skipped,
  type CheckContext,
  type SelftestEnvironment,
  type SelftestReport,
  type SelftestResult,
  type SelftestSeams,
  type Verdict,
} from './types';

/**
 * The selftest's order: the life of an org (each step needs the one before), with the engine's
 * assumption checks run on the installed org before its key changes. Every check runs even
 * after another fails, unless it needs what failed; each reports ok, fail or skipped with why.
 */
export const LIFE_CHECKS = {
  demo: 'demo org',
  install: 'install',
  again: 'install again changes nothing',
  oneTransaction: 'change-key in one transaction',
  batched: 'change-key in batches, interrupted, resumed',
  activate: 'activate after the key hierarchy is dropped',
  verify: 'verify',
} as const;

export const ENGINE_CHECKS = {
  orgLock: 'org lock excludes a second session',
  keyMaterial: 'key bytes the server derived equal deriveKey',
  serverToNode: 'cells the server writes decrypt in Node',
  nodeToServer: 'cells Node writes decrypt in the server',
  format: 'cell version and integrity hash length',
  empty: "encryption of an empty string (N'')",
  longest: 'encryption of the longest value a column allows',
  tableLock: 'lockTable holds an exclusive table lock',
  lockTimeout: 'a lock wait ends with the lock-timeout error',
  scripts: 'printed sqlcmd scripts',
} as const;

export const DEFAULT_ROWS = 60;

export async function runSelftest(
  env: SelftestEnvironment,
  options: { seams?: SelftestSeams; onResult?: (result: SelftestResult) => void } = {},
): Promise<SelftestReport> {
  const started = Date.now();
  const { tk } = env;
  const ops = requireSelftest(tk.engine);
  const results: SelftestResult[] = [];
  const redactor = new SecretRedactor(tk);
  const record = async (result: SelftestResult) => {
    const clean = await redactor.clean(result);
    results.push(clean);
    options.onResult?.(clean);
  };
  const outcome = (check: string) => results.find((r) => r.check === check)?.outcome;
  const check = async (name: string, needs: readonly string[], run: () => Promise<Verdict>) => {
    const missing = needs.find((need) => outcome(need) !== 'ok');
    if (missing) return record({ check: name, ...skipped(`needs "${missing}", which did not pass`) });
    await record({ check: name, ...(await settle(run)) });
  };

  const second = env.openSecond && !tk.engine.capabilities.singleConnection ? await env.openSecond() : undefined;
  try {
    const ctx: CheckContext = {
      tk,
      ops,
      deriveKey: options.seams?.deriveKey ?? ((passphrase, derivation) => deriveKey(passphrase, derivation)),
      second,
      rows: env.rows ?? DEFAULT_ROWS,
    };
    const L = LIFE_CHECKS;
    const E = ENGINE_CHECKS;
    const installed = [L.install];
    await check(L.demo, [], () => demoOrg(tk, ctx.rows));
    await check(L.install, [L.demo], () => installOrg(tk));
    await check(L.again, installed, () => installAgain(tk));
    if (outcome(L.install) === 'ok') {
      for (const finding of await ops.serverFacts().catch((error: unknown) => [serverFactsFailed(error)]))
        await record(finding);
    }
    await check(E.orgLock, installed, () => orgLockExcludes(ctx));
    await check(E.keyMaterial, installed, () => keyMaterialCheck(ctx));
    await check(E.serverToNode, installed, () => serverCellsInNode(ctx));
    await check(E.nodeToServer, installed, () => nodeCellsInServer(ctx));
    await check(E.format, installed, () => cellFormat(ctx));
    await check(E.empty, installed, () => emptyString(ctx));
    await check(E.longest, installed, () => longestValue(ctx));
    await check(E.tableLock, installed, () => tableLockHeld(ctx));
    await check(E.lockTimeout, installed, () => lockTimeout(ctx));
    await check(L.oneTransaction, installed, () => changeKeyOneTransaction(tk));
    await check(L.batched, installed, () => batchedInterrupted(ctx));
    await check(L.activate, installed, () => activateAfterDrop(tk));
    await check(L.verify, [L.activate], () => verifyOrg(tk));
    await check(E.scripts, [], () => printedScripts(env, ctx.rows));
  } finally {
    await second?.close();
  }
  const failed = results.filter((r) => r.outcome === 'fail').map((r) => r.check);
  return { ok: failed.length === 0, engine: tk.engine.kind, checks: results, failed, durationMs: Date.now() - started };
}

function requireSelftest(engine: Engine): SelftestOps {
  if (engine.selftest) return engine.selftest;
  throw new CellcryptError('CellcryptEngineUnsupported', `the ${engine.kind} engine has no selftest`, {
    exitCode: 2,
    hint: 'run selftest on PostgreSQL, PGlite or SQL Server',
  });
}

/** A check that throws has failed: the error is what it saw. */
async function settle(run: () => Promise<Verdict>): Promise<Verdict> {
  try {
    return await run();
  } catch (error) {
    if (isCellcryptError(error)) return fail(`${error.code}: ${error.message}`, error.hint);
    return fail(error instanceof Error ? error.message : String(error));
  }
}

function serverFactsFailed(error: unknown): SelftestResult {
  return { check: 'server facts', ...fail(`could not read them: ${error instanceof Error ? error.message : error}`) };
}
