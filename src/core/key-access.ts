import { keyTransaction } from './key-transaction';
import type { Knex } from 'knex';
import type { Secret } from '../common/secret';
import type { KeyHierarchy, SymmetricKeyInfo } from '../engines/engine';
import { CellcryptError } from '../common/errors';
import { CERTIFICATE_NAME, currentCertificate, generationOf } from '../common/key-names';
import { keyGuidFor } from '../cellcrypt/key-identity';
import type { KeyStore } from '../keystore/keystore';
import type { Toolkit } from './toolkit';

/**
 * Whether this org's encryption is usable ("active", in Dynamics' words) and, if so, what it
 * takes to open its keys. Every operation that reads or writes cells starts here, so the
 * reasons for "inactive" and the command that fixes each are written once.
 */
export interface KeyAccess {
  readonly masterPassword: Secret;
  readonly passphrase: Secret;
  readonly current: SymmetricKeyInfo;
  readonly certificate: string;
  /** Every symmetric key to open for reading (more than one only while a change is in flight). */
  readonly readable: readonly SymmetricKeyInfo[];
  /** A batched key change not finished yet: cells still under `from`, whose passphrase this is. */
  readonly inFlight?: { readonly from: SymmetricKeyInfo; readonly passphrase: Secret };
}

export type Activity =
  | { active: true; access: KeyAccess; hierarchy: KeyHierarchy }
  | { active: false; reason: string; hint: string; code: CellcryptError['code']; hierarchy: KeyHierarchy };

export function currentKey(hierarchy: KeyHierarchy): SymmetricKeyInfo | undefined {
  let best: SymmetricKeyInfo | undefined;
  for (const key of hierarchy.symmetricKeys) {
    const generation = generationOf(key.name);
    if (generation !== undefined && (best === undefined || generation > (generationOf(best.name) ?? 0))) best = key;
  }
  return best;
}

const ACTIVATE =
  'run `cellcrypt activate --key-file F` with the key you saved (`show-key --out F` on the old deployment)';

export async function assessActivity(tk: Toolkit): Promise<Activity> {
  const hierarchy = await tk.engine.keys.read(tk.engine.knex);
  const inactive = (code: CellcryptError['code'], reason: string, hint = ACTIVATE): Activity => ({
    active: false,
    code,
    reason,
    hint,
    hierarchy,
  });
  if (!(await tk.organizationId())) {
    // "run install" is the wrong advice for a database that is not the org (a mistyped URL).
    if (!(await anyRegisteredTable(tk))) {
      const tables = [...new Set(tk.registry.map((c) => c.table))].join(', ');
      return inactive(
        'CellcryptUsage',
        `not an organization database: none of the registered tables (${tables}) exist in ` +
          tk.settings.database.display,
        'is this the org database? Check --database-url / DATABASE_URL (and CELLCRYPT_REGISTRY)',
      );
    }
    return inactive('CellcryptUsage', 'not installed', 'run `cellcrypt install`');
  }
  const current = currentKey(hierarchy);
  if (!hierarchy.masterKey)
    return inactive('SqlEncryptionDatabaseMasterKeyDoesNotExist', 'the database has no master key');
  if (!current) return inactive('SqlEncryptionSymmetricKeyDoesNotExist', 'the database has no cellcrypt symmetric key');
  // The certificate's name changes with every rewrap (SQL Server cannot rename one): the newest of ours.
  const certificate = currentCertificate(hierarchy.certificates);
  if (!certificate)
    return inactive('SqlEncryptionCertificateDoesNotExist', `certificate ${CERTIFICATE_NAME} is missing`);
  let passphrase: Secret | undefined;
  let masterPassword: Secret | undefined;
  let keystore: KeyStore | undefined;
  try {
    keystore = await tk.keystore();
    passphrase = await keystore.get('passphrase');
    masterPassword = await keystore.get('master-key-password');
  } catch (error) {
    if (error instanceof CellcryptError) return inactive(error.code, error.message, error.hint ?? ACTIVATE);
    throw error;
  }
  // Name the key store: a forgotten CELLCRYPT_CONFIG_URL opens the embedded one, which is empty.
  const where = `the key store ${keystore.display}`;
  const checkStore = `; first check that --config-url / CELLCRYPT_CONFIG_URL names this deployment's key store`;
  if (!passphrase)
    return inactive(
      'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB',
      `${where} holds no encryption key for this organization`,
      `${ACTIVATE}${checkStore}`,
    );
  if (!masterPassword)
    return inactive(
      'SqlEncryptionSymmetricKeyPasswordDoesNotExistInConfigDB',
      `${where} holds no master-key password for this organization`,
      `${ACTIVATE}${checkStore}`,
    );
  const readable = hierarchy.symmetricKeys.filter((k) => generationOf(k.name) !== undefined);
  const base = { masterPassword, current, certificate, readable };
  if (keyGuidFor(passphrase) === current.keyGuid)
    return opened(tk, { active: true, access: { ...base, passphrase }, hierarchy }, inactive);

  // The key store's passphrase is not the current key's. A key change writes the new passphrase
  // as `passphrase.pending` before the database commits and promotes it after; if the process
  // died in between, the pending one opens the data and the change is finished here.
  const pending = await keystore!.get('passphrase.pending');
  if (pending && keyGuidFor(pending) === current.keyGuid) {
    const previous = readable.find((k) => k.keyGuid === keyGuidFor(passphrase!));
    if (previous) {
      // Both generations still in the database: a batched change is under way (or was stopped).
      return opened(
        tk,
        {
          active: true,
          access: { ...base, passphrase: pending, inFlight: { from: previous, passphrase: passphrase! } },
          hierarchy,
        },
        inactive,
      );
    }
    await keystore!.put('passphrase', pending);
    await keystore!.remove('passphrase.pending');
    tk.reporter.log(
      `repaired the key store: key change to ${current.name} ` +
        `(${current.keyGuid}) had committed in the database but not in the key store`,
    );
    return opened(tk, { active: true, access: { ...base, passphrase: pending }, hierarchy }, inactive);
  }
  return inactive(
    'SqlEncryptionKeyCannotDecryptExistingData',
    `the key store's encryption key does not belong to the current key ${current.name} (${current.keyGuid})`,
  );
}

/**
 * Active only if the keys really open: the master-key password, the certificate and every
 * symmetric key are tried in a transaction that touches nothing (a wrong password or a key
 * moved to another certificate would otherwise pass every check above and fail mid-operation).
 */
async function opened(
  tk: Toolkit,
  tried: Activity & { active: true },
  inactive: (code: CellcryptError['code'], reason: string, hint?: string) => Activity,
): Promise<Activity> {
  let activity = tried;
  try {
    await withOpenKeys(tk, activity.access, async () => undefined);
  } catch (error) {
    if (!(error instanceof CellcryptError)) throw error;
    const repaired = await withPendingMasterPassword(tk, activity);
    if (!repaired) return inactive(error.code, `the keys do not open: ${error.message}`);
    activity = repaired;
  }
  // cellcrypt opens the master key with its password; the applications that read cells rely on
  // it opening by itself, which a restore on another server breaks (SQL Server error 15581).
  const { keys } = tk.engine;
  if (
    tk.engine.capabilities.masterKeyOpensByItself &&
    !(await keys.opensByItself(tk.engine.knex, activity.access.current.name, activity.access.certificate))
  ) {
    return inactive(
      'SqlEncryptionCannotOpenSymmetricKeyBecauseDatabaseMasterKeyDoesNotExistOrIsNotOpened',
      'the database master key does not open by itself on this server (error 15581: ' +
        'restored or failed over from another server, or its service-master-key protection was dropped), ' +
        'so applications cannot read the cells',
      // cellcrypt never adds that protection back by itself (a DBA may have dropped it on purpose).
      `${ACTIVATE}; on an availability-group replica add the master key's password to it with ` +
        'sp_control_dbmasterkey_password instead (README, Restores: "Availability groups")',
    );
  }
  return activity;
}

/**
 * A rewrap writes the new master-key password as `master-key-password.pending` before the
 * database commits and promotes it after (see rewrap.ts). If the process died in between, the
 * master key opens with the pending password only: it is tried when the current one fails, and
 * promoted when it opens. A pending password that does not open is left alone: a rewrap running
 * now (this reader takes no org lock) may not have committed yet, and removing its pending
 * password would lose the only copy of the one its commit brings.
 */
async function withPendingMasterPassword(
  tk: Toolkit,
  activity: Activity & { active: true },
): Promise<(Activity & { active: true }) | undefined> {
  const keystore = await tk.keystore();
  const pending = await keystore.get('master-key-password.pending');
  if (!pending || pending.equals(activity.access.masterPassword)) return undefined;
  const access = { ...activity.access, masterPassword: pending };
  try {
    await withOpenKeys(tk, access, async () => undefined);
  } catch (error) {
    if (error instanceof CellcryptError) return undefined;
    throw error;
  }
  await keystore.put('master-key-password', pending);
  // Only if it is still the value that opened: a newer rewrap may have written its own meanwhile.
  if ((await keystore.get('master-key-password.pending'))?.equals(pending))
    await keystore.remove('master-key-password.pending');
  tk.reporter.log(
    'repaired the key store: a rewrap had committed a new master-key password in the database but not in the key store',
  );
  return { ...activity, access };
}

async function anyRegisteredTable(tk: Toolkit): Promise<boolean> {
  for (const column of tk.registry)
    if ((await tk.engine.columns.describe(tk.engine.knex, column)).tableExists) return true;
  return false;
}

/** Throws the inactive reason as an error (for operations that need an active org). */
export async function requireActive(tk: Toolkit): Promise<{ access: KeyAccess; hierarchy: KeyHierarchy }> {
  const activity = await assessActivity(tk);
  if (!activity.active)
    throw new CellcryptError(activity.code, `encryption is inactive: ${activity.reason}`, {
      exitCode: 2,
      hint: activity.hint,
    });
  return activity;
}

/** Runs `work` in one transaction with the master key and every readable key open. */
export async function withOpenKeys<T>(
  tk: Toolkit,
  access: KeyAccess,
  work: (trx: Knex.Transaction) => Promise<T>,
): Promise<T> {
  const { keys } = tk.engine;
  return keyTransaction(tk.engine, async (trx) => {
    await keys.openMasterKey(trx, access.masterPassword);
    for (const key of access.readable) await keys.openSymmetricKey(trx, key.name, access.certificate);
    return work(trx);
  });
}
