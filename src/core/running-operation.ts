import { keyGuidFor } from '../cellcrypt/key-identity';
import type { KeyHierarchy } from '../engines/engine';
import { ORG_KEY_LOCK } from './org-lock';
import type { Toolkit } from './toolkit';
import { SCHEMA, TABLES } from './toolkit-tables';

/**
 * Whether a key operation (install, change-key, activate, rewrap, keys prune) is running for
 * this org, and which. Read-only commands ask before they read: what a running operation holds
 * (one transaction's locked tables, a key committed a moment ago) is no picture of the org, and
 * counting cells against it reported every cell undecryptable (issue 15).
 */
export interface RunningOperation {
  operation: 'install' | 'change-key' | 'rewrap' | 'key operation';
  detail: string;
  hint: string;
}

/**
 * True when another holder has the org lock. The lock is taken and released at once: nothing
 * waits on it, and an operation that starts in that instant is refused with 0x8004852A, which
 * is what it would get from any other running operation. (The engine interface has no probe that
 * only tests a lock; PostgreSQL's pg_locks and SQL Server's APPLOCK_TEST could be one.)
 */
export async function orgLockHeld(tk: Toolkit): Promise<boolean> {
  const release = await tk.engine.tryLock(ORG_KEY_LOCK);
  if (!release) return true;
  await release();
  return false;
}

const WAIT = 'wait for it to finish, then run `cellcrypt status` again';

/**
 * Names the running operation from what it has written so far: the key store's pending values
 * (written before a change reaches the database) and the ledger's converting rows. Every read
 * is best effort: a key store that does not answer leaves the generic name.
 */
export async function describeRunning(tk: Toolkit, hierarchy: KeyHierarchy): Promise<RunningOperation> {
  const keystore = await tk.keystore().catch(() => undefined);
  const pending = await keystore?.get('passphrase.pending').catch(() => undefined);
  if (pending) {
    const guid = keyGuidFor(pending);
    const key = hierarchy.symmetricKeys.find((k) => k.keyGuid === guid);
    const others = hierarchy.symmetricKeys.filter((k) => k.keyGuid !== guid);
    const detail = !key
      ? `a key change to ${guid} is running (not committed yet: every cell is still on its key)`
      : others.length
        ? `a batched key change from ${others.map((k) => k.name).join(', ')} to ${key.name} (${guid}) is running`
        : `a key change to ${key.name} (${guid}) has committed and is finishing`;
    return { operation: 'change-key', detail, hint: WAIT };
  }
  if (await keystore?.get('master-key-password.pending').catch(() => undefined))
    return { operation: 'rewrap', detail: 'a rewrap (new certificate and master-key password) is running', hint: WAIT };
  const converting = await convertingColumns(tk);
  if (converting.length || !(await tk.organizationId().catch(() => undefined)))
    return {
      operation: 'install',
      detail: `an install is running${converting.length ? ` (converting ${converting.join(', ')})` : ''}`,
      hint: WAIT,
    };
  return { operation: 'key operation', detail: 'an install, change-key, activate or rewrap is running', hint: WAIT };
}

/** The ledger's columns whose conversion has started and not finished (before install: none). */
async function convertingColumns(tk: Toolkit): Promise<string[]> {
  try {
    const rows = (await tk.engine.knex
      .withSchema(SCHEMA)
      .table(TABLES.ledger)
      .where({ state: 'converting' })
      .select('table_name', 'column_name')) as Array<{ table_name: string; column_name: string }>;
    return rows.map((row) => `${row.table_name}.${row.column_name}`);
  } catch {
    return [];
  }
}
