import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { encryptByKey } from '../cellcrypt';
import { generateMasterKeyPassword } from '../cellcrypt/key-identity';
import { CellcryptError, isCellcryptError } from '../common/errors';
import { certificateGenerationOf, certificateName } from '../common/key-names';
import { Secret } from '../common/secret';
import type { KeyHierarchy } from '../engines/engine';
import { cellKeyFor } from './client-side-move';
import { assessActivity, withOpenKeys, type KeyAccess } from './key-access';
import { requireOwnKeyStore } from './key-store-check';
import { keyTransaction } from './key-transaction';
import { withOrgLock } from './org-lock';
import { requirePermission } from './permissions';
import { requireCurrentSchema } from './schema-version';
import type { Toolkit } from './toolkit';
import { recordingRefusals, writeAudit, writeFailureAudit } from './toolkit-tables';

/**
 * `rewrap`: a new certificate and a new master-key password, in one database transaction, and
 * no cell rewritten. Every cellcrypt symmetric key is put under the new certificate and taken off
 * the old one (SQL Server: ALTER SYMMETRIC KEY ADD / DROP ENCRYPTION BY CERTIFICATE), the old
 * certificate is dropped and the master key gets a new password (ADD / DROP ENCRYPTION BY
 * PASSWORD). The symmetric keys keep their bytes and GUIDs, so every cell, the saved key and
 * `decrypt-offline` stay exactly as they were: this replaces what protects the key in the
 * database (a master-key password or certificate that may have been seen), not the key itself;
 * that is `change-key`.
 *
 * Two stores, no distributed transaction, so the order of writes is the design, the same as
 * change-key's for the passphrase:
 *   1. key store: the new password as `master-key-password.pending` (the current one stays);
 *   2. database: new certificate, keys moved, old certificate dropped, master key's password
 *      changed, the new chain proven, audit row; one commit;
 *   3. key store: the new password as `master-key-password`, then the pending one removed.
 * A crash before the commit leaves the database on the old password, which the key store holds
 * as current (the pending one is never used, and the next rewrap overwrites it). A crash after
 * it leaves the database on the new password, which the key store holds as pending: key-access
 * tries the pending password when the current one does not open the master key, and promotes it
 * (any command repairs it, install included). At no point does the key store lack the password
 * that opens the master key.
 *
 * Why pending first, and not the new password as current first with the old one kept aside: both
 * need that one fallback, but with pending first nothing reads the pending value unless a rewrap
 * died after its commit, so every command run during a rewrap opens with the current password as
 * always; and key-access has one rule for both secrets (current, else pending, then promote).
 * An order that needs no fallback at all would have the database accept both passwords across a
 * commit (add the new one, commit, store it, drop the old one in a second transaction): a crash
 * between the two would leave the retired password, perhaps the very one that was exposed,
 * opening the master key until someone noticed.
 */
export interface RewrapOptions {
  dryRun?: boolean;
}

export interface RewrapResult {
  dryRun: boolean;
  certificate: { from: string; to: string };
  /** The symmetric keys moved to the new certificate (their bytes, GUIDs and cells unchanged). */
  keys: Array<{ name: string; guid: string }>;
  durationMs: number;
  statements?: string[];
}

const PENDING = 'master-key-password.pending';

export async function rewrap(tk: Toolkit, options: RewrapOptions = {}): Promise<RewrapResult> {
  // The master key's password changes: on SQL Server that takes CONTROL on the database (ALTER
  // MASTER KEY), as rebuilding the hierarchy does, so this is activate's permission, not
  // change-key's (which a role member holds with ALTER ANY SYMMETRIC KEY alone).
  await requirePermission(tk, 'activate');
  // A dry run takes the org lock too: it says what a real run now would do, refusals included.
  return withOrgLock(tk, 'rewrap', () => rewrapLocked(tk, options));
}

async function rewrapLocked(tk: Toolkit, options: RewrapOptions): Promise<RewrapResult> {
  const started = Date.now();
  const { access, hierarchy } = await recordingRefusals(
    tk.engine.knex,
    { createdBy: tk.actor, operation: 'rewrap' },
    !options.dryRun,
    () => prepare(tk),
  );
  const from = access.certificate;
  const to = nextCertificate(hierarchy, from);
  const summary = {
    certificate: { from, to },
    keys: access.readable.map((k) => ({ name: k.name, guid: k.keyGuid })),
  };
  if (options.dryRun) {
    const keys = access.readable.map((k) => k.name);
    const statements = tk.engine.dryRun.rewrap({ from, to, keys });
    return { ...summary, dryRun: true, durationMs: Date.now() - started, statements };
  }

  const password = generateMasterKeyPassword();
  const keystore = await tk.keystore();
  await keystore.put(PENDING, password);
  try {
    await keyTransaction(tk.engine, async (trx) => {
      await rewrapHierarchy(tk, trx, access, to, password);
      await proveNewChain(tk, trx, access, to, password);
      await writeAudit(trx, {
        createdBy: tk.actor,
        operation: 'rewrap',
        outcome: 'succeeded',
        cells: 0,
        durationMs: Date.now() - started,
        detail: describe(from, to, access),
      });
    });
  } catch (error) {
    const rolledBack = await forgetPendingIfRolledBack(tk, access);
    const how = rolledBack ? 'rolled back, nothing changed: ' : 'commit not confirmed, new password kept pending: ';
    await writeFailureAudit(
      tk.engine.knex,
      { createdBy: tk.actor, operation: 'rewrap', outcome: 'failed', durationMs: Date.now() - started },
      error,
      how,
    );
    throw failed(error, rolledBack);
  }
  await keystore.put('master-key-password', password);
  await keystore.remove(PENDING);
  return { ...summary, dryRun: false, durationMs: Date.now() - started };
}

/** Every refusal a real run would make, made before anything is written (in a dry run too). */
async function prepare(tk: Toolkit): Promise<{ access: KeyAccess; hierarchy: KeyHierarchy }> {
  const activity = await assessActivity(tk);
  if (!activity.active) {
    throw new CellcryptError(
      activity.code,
      `encryption is inactive, so the key hierarchy cannot be rewrapped: ${activity.reason}`,
      { exitCode: 2, hint: activity.hint },
    );
  }
  // After the activity check: an org that is not installed has no migration table to read.
  await requireCurrentSchema(tk, 'rewrap');
  await requireOwnKeyStore(tk);
  const { access, hierarchy } = activity;
  if (access.inFlight) {
    // Possible (both keys would move), but the org would then depend on two pending values at
    // once; a batched change is finished in minutes with --resume.
    throw new CellcryptError(
      'CellcryptKeyChangeInProgress',
      `a batched change from ${access.inFlight.from.name} to ${access.current.name} has not finished`,
      { exitCode: 2, hint: 'finish it with `cellcrypt change-key --resume --batch-size N`, then rewrap' },
    );
  }
  return { access, hierarchy };
}

/** The certificate after every one of ours in the database (normally one: the current). */
function nextCertificate(hierarchy: KeyHierarchy, current: string): string {
  const generations = [current, ...hierarchy.certificates].map((name) => certificateGenerationOf(name) ?? 0);
  return certificateName(Math.max(1, ...generations) + 1);
}

/**
 * The rewrap itself: the keys are opened through the old certificate (SQL Server encrypts a
 * key's own bytes again, so ADD ENCRYPTION needs it open), each is put under the new certificate
 * before it leaves the old one, the old certificate goes once no key needs it, and the master
 * key's password last (the new certificate is wrapped by the master key, which keeps its bytes).
 */
async function rewrapHierarchy(
  tk: Toolkit,
  trx: Knex.Transaction,
  access: KeyAccess,
  to: string,
  password: Secret,
): Promise<void> {
  const { keys } = tk.engine;
  await keys.openMasterKey(trx, access.masterPassword);
  for (const key of access.readable) await keys.openSymmetricKey(trx, key.name, access.certificate);
  await keys.createCertificate(trx, to);
  for (const key of access.readable) await keys.moveSymmetricKey(trx, key.name, access.certificate, to);
  await keys.dropCertificate(trx, access.certificate);
  await keys.changeMasterKeyPassword(trx, access.masterPassword, password);
}

/**
 * Before the commit: the new password and the new certificate open every key (the keys are
 * closed first, since SQL Server's stay open and re-opening an open key proves nothing), and the
 * keys are the same keys: a probe encrypted here, under the bytes the key store's passphrase
 * derives, decrypts in the database. A key whose passphrase the key store does not hold (a
 * leftover generation) gets the Dynamics encryption/decryption test.
 */
async function proveNewChain(
  tk: Toolkit,
  trx: Knex.Transaction,
  access: KeyAccess,
  to: string,
  password: Secret,
): Promise<void> {
  const { keys } = tk.engine;
  await keys.closeAll(trx);
  await keys.openMasterKey(trx, password);
  for (const key of access.readable) await keys.openSymmetricKey(trx, key.name, to);
  const probe = randomBytes(32);
  const { current } = access;
  const cell = encryptByKey(cellKeyFor(access.passphrase, current.keyGuid, current.derivation), probe);
  const plain = await keys.decrypt(trx, cell);
  if (!plain || !plain.equals(probe))
    throw new CellcryptError(
      'SqlEncryptionEncryptionDecryptionTestError',
      `key ${current.name} opened through ${to} does not decrypt what its passphrase encrypts`,
    );
  for (const key of access.readable) {
    if (!(await keys.roundTrip(trx, key.keyGuid, new Secret('cellcrypt rewrap probe Ω😀'))))
      throw new CellcryptError(
        'SqlEncryptionEncryptionDecryptionTestError',
        `key ${key.name} failed the encryption/decryption test through ${to}`,
      );
  }
}

function describe(from: string, to: string, access: KeyAccess): string {
  const keys = access.readable.map((k) => `${k.name} (${k.keyGuid})`).join(', ');
  return `certificate ${from} -> ${to}, new master-key password; keys ${keys}; no cell rewritten`;
}

/**
 * After a failure: the pending password is removed only once the current one is seen to open
 * the master key, i.e. the transaction really rolled back. A COMMIT whose answer was lost (the
 * connection dropped after the server committed) would otherwise take away the only copy of the
 * password that opens the master key now; left pending, key-access promotes it.
 */
async function forgetPendingIfRolledBack(tk: Toolkit, access: KeyAccess): Promise<boolean> {
  try {
    await withOpenKeys(tk, access, async () => undefined);
  } catch {
    return false;
  }
  await (await tk.keystore()).remove(PENDING).catch(() => undefined);
  return true;
}

function failed(error: unknown, rolledBack: boolean): CellcryptError {
  const outcome = rolledBack
    ? 'the transaction was rolled back: the certificate, the master-key password and every cell are as they were'
    : 'the previous master-key password no longer opens the master key, so the commit may have happened: the ' +
      'new password is kept in the key store (pending) and `cellcrypt status` finishes the rewrap if it did';
  if (isCellcryptError(error))
    return new CellcryptError(error.code, `rewrap failed: ${error.message}\n${outcome}`, {
      exitCode: 1,
      hint: error.hint,
      cause: error,
    });
  const message = error instanceof Error ? error.message : String(error);
  return new CellcryptError('CellcryptInternal', `rewrap failed: ${message}\n${outcome}`, {
    exitCode: 1,
    hint: 'fix the cause and run rewrap again',
    cause: error,
  });
}
