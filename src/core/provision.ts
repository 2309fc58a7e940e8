import { keyTransaction } from './key-transaction';
import { Secret } from '../common/secret';
import { CellcryptError, refuse } from '../common/errors';
import { assessActivity, currentKey } from './key-access';
import { CERTIFICATE_NAME, currentCertificate, generationOf, keyName } from '../common/key-names';
import { recordGeneration } from './key-history';
import { generateMasterKeyPassword, identityValueFor, keyGuidFor } from '../cellcrypt/key-identity';
import { generatePassphrase } from './passphrase';
import { classifyColumn } from './column-state';
import type { Toolkit } from './toolkit';

/**
 * Ensures the key hierarchy: master key, certificate, current symmetric key.
 *
 * Order of writes (two stores, no distributed transaction): secrets go into the key store
 * first, database objects second, in one transaction. A crash in between leaves a key store
 * with secrets nobody uses yet, which the next run picks up ("when the key store already holds
 * one, use it"); never a database key whose passphrase was not saved.
 */
export interface ProvisionResult {
  readonly created: string[];
  readonly keyGuid: string;
  readonly keyName: string;
}

export async function provisionKeys(tk: Toolkit): Promise<ProvisionResult> {
  const { engine } = tk;
  const keystore = await tk.keystore();
  let hierarchy = await engine.keys.read(engine.knex);
  let current = currentKey(hierarchy);
  // An installed org: the activity check first, as every command makes it, so a rewrap whose
  // process died after its commit has its master-key password promoted before it is used here.
  if (current) {
    hierarchy = (await assessActivity(tk)).hierarchy;
    current = currentKey(hierarchy);
  }
  let passphrase = await keystore.get('passphrase');
  let masterPassword = await keystore.get('master-key-password');
  const activate =
    'this organization was restored or imported without its key: ' +
    'run `cellcrypt activate --key-file F` with the key you saved';

  if (current && !passphrase) {
    throw refuse(
      'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB',
      `the database has key ${current.name} but the key store holds no encryption key for it`,
      activate,
    );
  }
  if (hierarchy.masterKey && !masterPassword) {
    throw refuse(
      'SqlEncryptionSymmetricKeyPasswordDoesNotExistInConfigDB',
      'the database has a master key but the key store holds no password for it',
      activate,
    );
  }
  if (!current && (await hasEncryptedColumns(tk))) {
    throw refuse(
      'SqlEncryptionSymmetricKeyDoesNotExist',
      'encrypted columns exist but the database has no cellcrypt key',
      activate,
    );
  }

  const created: string[] = [];
  if (!passphrase) {
    passphrase = generatePassphrase();
    await keystore.put('passphrase', passphrase);
    created.push('encryption key (key store)');
  }
  if (!masterPassword) {
    masterPassword = generateMasterKeyPassword();
    await keystore.put('master-key-password', masterPassword);
    created.push('master-key password (key store)');
  }
  if (current && current.keyGuid !== keyGuidFor(passphrase)) {
    throw new CellcryptError(
      'SqlEncryptionKeyCannotDecryptExistingData',
      `the key store's encryption key does not belong to key ${current.name} (${current.keyGuid})`,
      {
        exitCode: 2,
        hint: 'run `cellcrypt status` for the reason; `cellcrypt activate --key-file F` installs the right key',
      },
    );
  }

  // Which database these values are for: activating a copy elsewhere must not take them over.
  if (!(await keystore.get('location'))) await keystore.put('location', new Secret(tk.settings.database.location));
  const secrets = { passphrase, masterPassword };
  const name = current?.name ?? keyName(1);
  const keyGuid = await keyTransaction(engine, async (trx) => {
    if (!hierarchy.masterKey) {
      await engine.keys.createMasterKey(trx, secrets.masterPassword);
      created.push('database master key');
    }
    await engine.keys.openMasterKey(trx, secrets.masterPassword);
    // A rewrapped org's certificate has a later generation's name: it is still the one.
    const certificate = currentCertificate(hierarchy.certificates) ?? CERTIFICATE_NAME;
    if (!hierarchy.certificates.includes(certificate)) {
      await engine.keys.createCertificate(trx, certificate);
      created.push(`certificate ${certificate}`);
    }
    let guid = current?.keyGuid;
    if (!guid) {
      guid = await engine.keys.createSymmetricKey(trx, {
        name,
        certificate,
        keySource: secrets.passphrase,
        identityValue: identityValueFor(secrets.passphrase),
      });
      created.push(`symmetric key ${name} (AES_256)`);
    }
    await engine.keys.openSymmetricKey(trx, name, certificate);
    if (!(await engine.keys.roundTrip(trx, guid, new Secret('cellcrypt round-trip probe Ω😀')))) {
      throw new CellcryptError(
        'SqlEncryptionEncryptionDecryptionTestError',
        `key ${name} failed the encryption/decryption test; nothing was changed`,
      );
    }
    return guid;
  });
  // The key history keeps every generation (an org installed before it had none: recorded now).
  await recordGeneration(keystore, generationOf(name)!, secrets.passphrase, current?.createdAt);
  return { created, keyGuid, keyName: name };
}

async function hasEncryptedColumns(tk: Toolkit): Promise<boolean> {
  for (const column of tk.registry) {
    const verdict = classifyColumn(column, await tk.engine.columns.describe(tk.engine.knex, column));
    if ('state' in verdict && verdict.state === 'encrypted') {
      const census = await tk.engine.columns.census(tk.engine.knex, column, { decrypt: false });
      if (census.cells > 0) return true;
    }
  }
  return false;
}
