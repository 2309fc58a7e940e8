import type { Secret } from '../common/secret';
import { CellcryptError, refuse } from '../common/errors';
import { keyGuidFor } from '../cellcrypt/key-identity';
import { formatKeyFile, type KeyFileEncoding } from './key-file';
import { writeNewPrivateFile } from './private-file';
import { assessActivity } from './key-access';
import { splitKey, writeShareFiles, type ShareSpec } from './key-shares';
import { requirePermission } from './permissions';
import type { Toolkit } from './toolkit';
import { writeAudit } from './toolkit-tables';
import { readHistory } from './key-history';

/**
 * `show-key`: the exact encryption key, so an administrator can keep a copy outside the
 * deployment (without it, a restored org is unreadable forever). Files are created 0600, never
 * over an existing file (that could be the only other copy of an older key), and carry a
 * SHA-256 checksum so a later import can tell a copy damaged by an ANSI editor.
 */
export async function readCurrentKey(tk: Toolkit): Promise<Secret> {
  await requirePermission(tk, 'read-key');
  const activity = await assessActivity(tk); // finishes a key change the key store missed
  if (activity.active) {
    if (activity.access.inFlight) {
      // The cells not moved yet still need the old key: saving only this one would lose them.
      tk.reporter.log(
        `warning: a key change to ${activity.access.current.keyGuid} has not finished; ` +
          `cells on ${activity.access.inFlight.from.keyGuid} still need the previous key. ` +
          'Finish it (`cellcrypt change-key --resume --batch-size N`) and save the key again.',
      );
    }
    return activity.access.passphrase;
  }
  const passphrase = await (await tk.keystore()).get('passphrase');
  if (!passphrase) {
    throw new CellcryptError(
      'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB',
      'the key store holds no encryption key for this organization',
      {
        exitCode: 2,
        hint: 'run `cellcrypt status` for the reason; after a restore use `cellcrypt activate --key-file F`',
      },
    );
  }
  // Still handed out (it may be the only copy of a key another copy of this org needs), but
  // never silently: saved as "the key", it would not restore this organization.
  tk.reporter.log(
    `warning: encryption is inactive (${activity.reason}); this is ` +
      `the key store's key, which may not open this organization's data. ` +
      'To restore this org use the key saved from it: `cellcrypt activate --key-file F`.',
  );
  return passphrase;
}

/** `show-key --generation N`: an older generation's passphrase from the key history (issue 18). */
export async function readKeyGeneration(tk: Toolkit, generation: number): Promise<Secret> {
  await requirePermission(tk, 'read-key');
  const history = await readHistory(await tk.keystore());
  const found = history.find((entry) => entry.generation === generation);
  if (!found)
    throw refuse(
      'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB',
      `the key history has no generation ${generation} ` +
        `(it has ${history.map((h) => h.generation).join(', ') || 'none'})`,
      'run `cellcrypt keys` to see the generations it keeps',
    );
  return found.passphrase;
}

export function writeKeyFile(path: string, passphrase: Secret, encoding: KeyFileEncoding): void {
  writeNewPrivateFile(
    path,
    formatKeyFile(passphrase, encoding),
    '; it may be the only copy of an earlier key, so it is not overwritten',
  );
}

/**
 * The audit row that says this key was saved, so doctor and status can tell a key nobody kept
 * (lost for good with the key store) from a saved one. Written after the file: the copy exists
 * whether or not the row can be written (a key reader may not be allowed to insert), so a
 * failure is a warning, not a failed show-key.
 */
export async function recordKeySaved(tk: Toolkit, passphrase: Secret, detail: string): Promise<void> {
  try {
    await writeAudit(tk.engine.knex, {
      createdBy: tk.actor,
      operation: 'show-key',
      outcome: 'succeeded',
      newKeyGuid: keyGuidFor(passphrase),
      detail,
    });
  } catch (error) {
    tk.reporter.log(
      `warning: the key was saved, but the audit row recording it could not be written ` +
        `(${(error as Error).message}); \`cellcrypt doctor\` will still say the key was never saved`,
    );
  }
}

/** `show-key --shares K-of-N --out-dir D`: the shares' files, written and recorded. */
export async function writeKeyShares(tk: Toolkit, passphrase: Secret, dir: string, spec: ShareSpec): Promise<string[]> {
  const organization = await tk.organizationId();
  if (!organization)
    throw refuse('CellcryptUsage', 'this organization has not been installed', 'run `cellcrypt install`');
  const files = writeShareFiles(dir, await splitKey(passphrase, organization, spec));
  await recordKeySaved(tk, passphrase, `shares ${spec.threshold}-of-${spec.total}`);
  return files;
}

/**
 * `show-key --master-key-password --out F`: the password a PostgreSQL application passes to
 * `cellcrypt.open_keys` (PostgreSQL has no service master key to open the master key for it).
 * Only into a new 0600 file, exactly the password (no line break): it opens every cell, so it
 * goes to no terminal, log or JSON document. SQL Server applications never need it.
 */
export async function readMasterKeyPassword(tk: Toolkit): Promise<Secret> {
  if (tk.engine.kind === 'mssql')
    throw refuse(
      'CellcryptUsage',
      'SQL Server applications need no master-key password: the service master key opens the database ' +
        'master key, and `EXEC cellcrypt.open_keys` opens the keys through the certificate',
      'see "For applications" in the README; `cellcrypt show-key --out F` saves the encryption key',
    );
  await requirePermission(tk, 'read-key');
  const activity = await assessActivity(tk); // the password that opens the master key now, pending included
  if (!activity.active)
    throw refuse(
      activity.code,
      `encryption is inactive (${activity.reason}): no master-key password opens it`,
      activity.hint,
    );
  return activity.access.masterPassword;
}

/** The password, exactly, in a new file only its owner reads; an existing file is never replaced. */
export function writeSecretFile(path: string, secret: Secret): void {
  writeNewPrivateFile(path, secret.reveal(), '; it is not overwritten');
}
