import type { EngineDiagnosis, KeyPermission } from '../engines/engine';
import { isCellcryptError } from '../common/errors';
import { assessActivity } from './key-access';
import { keyGuidFor } from '../cellcrypt/key-identity';
import { MIGRATIONS_CONFIG } from './install-run';
import { orgLockHeld, describeRunning } from './running-operation';
import { keyLifeWarnings, readStatus } from './status';
import type { Toolkit } from './toolkit';
import { countRecentAudits } from './toolkit-tables';

/**
 * `doctor`: every check a DBA would run by hand before trusting an org, each with what it found
 * and the command that fixes it. Read-only (the one exception is the key-store repair that any
 * command performs after a key change whose last step was interrupted; doctor reports it).
 */
export type Diagnosis = EngineDiagnosis;

export interface DoctorReport {
  healthy: boolean;
  checks: Diagnosis[];
}

const PERMISSIONS: KeyPermission[] = ['read-key', 'change-key', 'activate'];

export async function doctor(tk: Toolkit): Promise<DoctorReport> {
  const checks: Diagnosis[] = [];
  const add: AddCheck = (check, outcome, detail, hint) =>
    checks.push({ check, outcome, detail, ...(hint ? { hint } : {}) });

  checks.push(...(await tk.engine.diagnose()));
  const orgId = await tk.organizationId();
  if (!orgId) {
    add('installed', 'fail', `${tk.settings.database.display} has not been installed`, 'run `cellcrypt install`');
    return { healthy: false, checks };
  }
  add('installed', 'ok', `organization ${orgId}`);

  const [completed, pending] = (await tk.engine.knex.migrate.list(MIGRATIONS_CONFIG)) as [unknown[], unknown[]];
  if (pending.length)
    add(
      'migrations',
      'warn',
      `${pending.length} migration(s) not applied (${completed.length} applied)`,
      'run `cellcrypt install`',
    );
  else add('migrations', 'ok', `${completed.length} applied`);
  // knex's builder, not raw SQL: the same check on every engine (no table yet: not locked).
  const lock = await tk.engine
    .knex('cellcrypt_migrations_lock')
    .max({ locked: 'is_locked' })
    .first()
    .catch(() => undefined);
  if (Number(lock?.locked ?? 0) > 0)
    add(
      'migration lock',
      'warn',
      'the knex migration lock is set (a killed run left it, or an install is running now)',
      'run `cellcrypt install` (it clears a stale lock safely) or `cellcrypt migrate unlock`',
    );

  // What a running operation holds (locked tables, a pending key, a key committed a moment ago)
  // is no picture of the org: the key and column checks would report its moving parts as faults.
  if (await orgLockHeld(tk)) {
    const running = await describeRunning(tk, await tk.engine.keys.read(tk.engine.knex));
    add('operation running', 'warn', `${running.detail}: key and column checks skipped`, RUNNING_HINT);
  } else {
    await keyAndColumnChecks(tk, add);
  }

  const used = await countRecentAudits(tk.engine.knex, 'change-key', 15);
  add(
    'change quota',
    used >= tk.settings.changeQuota ? 'warn' : 'ok',
    `${used} of ${tk.settings.changeQuota} key changes used in the last 15 minutes`,
  );

  for (const permission of PERMISSIONS) {
    try {
      const check = await tk.engine.checkPermission(permission);
      add(
        `permission ${permission}`,
        check.granted ? 'ok' : 'warn',
        check.granted ? `granted to ${check.user}` : `not granted to ${check.user}`,
        check.granted ? undefined : `needs ${check.grantedBy}`,
      );
    } catch (error) {
      add(`permission ${permission}`, 'warn', isCellcryptError(error) ? error.message : 'could not be checked');
    }
  }
  return { healthy: checks.every((c) => c.outcome !== 'fail'), checks };
}

type AddCheck = (check: string, outcome: Diagnosis['outcome'], detail: string, hint?: string) => void;

const RUNNING_HINT = 'wait for it to finish, then run `cellcrypt doctor` again';

/** The key, the columns' cells and the key's life: only read while no operation runs. */
async function keyAndColumnChecks(tk: Toolkit, add: AddCheck): Promise<void> {
  const activity = await assessActivity(tk);
  if (!activity.active) {
    add('key', 'fail', `${activity.code}: ${activity.reason}`, activity.hint);
  } else {
    const { access } = activity;
    add(
      'key',
      'ok',
      `active: ${access.current.name} (${access.current.keyGuid}), derivation ${access.current.derivation}`,
    );
    if (access.inFlight)
      add(
        'key change',
        'warn',
        `a batched change from ${access.inFlight.from.keyGuid} has not finished`,
        'run `cellcrypt change-key --resume --batch-size N`',
      );
    const pendingKey = await (await tk.keystore()).get('passphrase.pending');
    if (pendingKey && !access.inFlight && keyGuidFor(pendingKey) !== access.current.keyGuid) {
      add(
        'key store',
        'warn',
        'an unused pending key is left from a key change that failed before its database commit (harmless)',
        'the next change-key replaces it',
      );
    }
  }

  const status = await readStatus(tk);
  // Without a usable key no cell can be decrypted, so every encrypted column counts all its cells
  // as undecryptable: that is the key check's failure again, once per column, with a hint (verify)
  // that cannot help. Those columns are named once here; plaintext and broken columns still fail.
  const unchecked = status.active
    ? []
    : status.columns.filter((column) => column.state === 'encrypted' && column.plaintext === 0);
  for (const column of status.columns) {
    const label = `${column.table}.${column.column}`;
    if (unchecked.includes(column)) continue;
    if (column.state === 'encrypted' && column.plaintext === 0 && column.undecryptable === 0)
      add(`column ${label}`, 'ok', `${column.cells} cell(s) encrypted`);
    else
      add(
        `column ${label}`,
        'fail',
        `${column.state}: ${column.plaintext} plaintext, ${column.undecryptable} ` +
          `undecryptable of ${column.cells}${column.problem ? ` (${column.problem})` : ''}`,
        column.plaintext ? 'run `cellcrypt install`' : 'run `cellcrypt verify` for the failing cells',
      );
  }
  if (unchecked.length) {
    const cells = unchecked.reduce((sum, column) => sum + column.cells, 0);
    add(
      'columns',
      'warn',
      `${unchecked.length} encrypted column(s), ${cells} cell(s), not decrypted: no usable key (see the key check)`,
    );
  }
  if (!status.columns.length) add('columns', 'warn', 'no sensitive columns are registered');

  // A key nobody saved dies with the key store; an old one has had long to leak. Only for an
  // active org: otherwise the key check has failed already, and there is no key to save.
  if (status.active && status.keyAgeDays !== null) {
    const maxAge = tk.settings.keyMaxAgeDays;
    const warnings = keyLifeWarnings(status, maxAge);
    const unsaved = warnings.find((w) => w.check === 'key saved');
    add(
      'key saved',
      unsaved ? 'warn' : 'ok',
      unsaved?.detail ?? `the current key was last saved ${status.keySavedAt}`,
      unsaved?.hint,
    );
    const old = warnings.find((w) => w.check === 'key age');
    add(
      'key age',
      old ? 'warn' : 'ok',
      old?.detail ?? `the current key is ${status.keyAgeDays} day(s) old (CELLCRYPT_KEY_MAX_AGE_DAYS: ${maxAge})`,
      old?.hint,
    );
  }
}
