import type { ColumnConversion } from './convert';
import { InstallRun, MIGRATIONS_CONFIG, runMigrationsWith } from './install-run';
import { currentKey, requireActive } from './key-access';
import { refuse } from '../common/errors';
import { withOrgLock } from './org-lock';
import { columnLabel } from './registry';
import type { Toolkit } from './toolkit';
import { writeAudit } from './toolkit-tables';
import { requireSecretsStayOutOfServerLog } from './secret-logging';

/**
 * `cellcrypt install`: what an org install or upgrade runs, and the one orchestrator of it:
 * preflight (plan, read-only), prepare, provision, convert. The knex migrations name those
 * steps (so `npx knex migrate:latest` does the same) and this run does each once; afterwards
 * any column registered since the conversion migration ran is converted too. Running it again
 * changes nothing.
 */
export interface InstallResult {
  migrations: string[];
  conversions: ColumnConversion[];
  durationMs: number;
}

export async function install(tk: Toolkit): Promise<InstallResult> {
  return withOrgLock(tk, 'install', () => installLocked(tk));
}

async function installLocked(tk: Toolkit): Promise<InstallResult> {
  const started = Date.now();
  // Read-only preflight: a missing table or a value too long for its cell is refused here,
  // before the schema, the keys or the key store are touched.
  const run = new InstallRun(tk);
  const plans = await run.plan();
  // Binary cells in a registered column but no key to read them: a restored org whose key
  // hierarchy is gone, or foreign data. Creating a new key would strand those cells.
  if (!currentKey(await tk.engine.keys.read(tk.engine.knex))) {
    const stranded = [];
    for (const plan of plans) {
      if (
        plan.state === 'encrypted' &&
        (await tk.engine.columns.countNonNull(tk.engine.knex, plan.column, 'plaintext')) > 0
      )
        stranded.push(columnLabel(plan.column));
    }
    if (stranded.length) {
      throw refuse(
        'SqlEncryptionSymmetricKeyDoesNotExist',
        `nothing was changed: ${stranded.join(', ')} already hold binary cells, but the database has no cellcrypt key`,
        'if this org was restored, run ' +
          '`cellcrypt activate --key-file F` with its saved key; otherwise clear those columns',
      );
    }
  }
  await requireSecretsStayOutOfServerLog(tk);
  await run.prepare();
  // An installed org must still have its key before anything runs: an org restored without its
  // key store is refused here (activate is the way out), not half-upgraded.
  if (currentKey(await tk.engine.keys.read(tk.engine.knex))) await requireActive(tk);
  // knex marks its migration table locked for the length of a run; a killed install leaves the
  // mark behind and every later run would fail. We hold the org lock, so no other install is
  // running: the mark is stale by definition and is cleared.
  await tk.engine.knex.migrate.forceFreeMigrationsLock(MIGRATIONS_CONFIG);
  const [, applied] = (await runMigrationsWith(run, () => tk.engine.knex.migrate.latest(MIGRATIONS_CONFIG))) as [
    number,
    string[],
  ];
  // Columns registered after the conversion migration ran; the same conversion if it ran now.
  const conversions = await run.convert();
  const durationMs = Date.now() - started;
  if (applied.length > 0 || conversions.length > 0) {
    // The key the cells are under: an install that created it is when the key was born.
    const key = currentKey(await tk.engine.keys.read(tk.engine.knex));
    await writeAudit(tk.engine.knex, {
      createdBy: tk.actor,
      operation: 'install',
      outcome: 'succeeded',
      newKeyGuid: key?.keyGuid,
      durationMs,
      detail: applied.length
        ? `migrations: ${applied.join(', ')}`
        : `late conversions: ${conversions.map((c) => `${c.table}.${c.column}`).join(', ')}`,
    });
  }
  return { migrations: applied, conversions, durationMs };
}
