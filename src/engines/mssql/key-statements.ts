import { KEY_PREFIX } from '../../common/key-names';
import { applicationPrepareStatements, grantCertificateToApplications, grantKeyToApplications } from './application';
import { guidLiteral } from './column-statements';
import { likeEscape, MASTER_KEY_NAME, ourCertificates } from './our-objects';
import { quoteTsqlIdentifier as q, tsqlLiteral } from './quote';

export { MASTER_KEY_NAME, ourCertificates };

/**
 * The T-SQL of the key hierarchy, shared by the engine (which sends it) and by
 * `cellcrypt script` (which prints it for a DBA): one builder per statement, so what a DBA
 * reviews is what the engine runs. Secrets enter only through a `SecretText`: the engine's
 * inlines the escaped value, the script's writes a sqlcmd variable.
 */
export type SecretSlot = 'masterKeyPassword' | 'newMasterKeyPassword' | 'passphrase' | 'identityValue';

/** Returns the complete literal for a secret slot: `N'...'` with the value, or `N'$(Var)'`. */
export type SecretText = (slot: SecretSlot) => string;

/**
 * The slots a sqlcmd script may hold. Not `newMasterKeyPassword`: only `rewrap` changes the
 * master-key password, and it has no script, because the key store must learn the new password
 * in step with the database (a script run by hand would leave cellcrypt with the old one, and
 * the org inactive).
 */
export type ScriptSecretSlot = Exclude<SecretSlot, 'newMasterKeyPassword'>;

export const SQLCMD_VARIABLES: Readonly<Record<ScriptSecretSlot, string>> = {
  masterKeyPassword: 'CellcryptMasterKeyPassword',
  passphrase: 'CellcryptPassphrase',
  identityValue: 'CellcryptIdentityValue',
};

export const sqlcmdSecrets: SecretText = (slot) => {
  if (slot === 'newMasterKeyPassword') throw new Error('no sqlcmd script changes the master-key password');
  return `N'$(${SQLCMD_VARIABLES[slot]})'`;
};

export function inlineSecrets(values: Partial<Record<SecretSlot, { reveal(): string }>>): SecretText {
  return (slot) => {
    const value = values[slot];
    if (!value) throw new Error(`no value for ${slot}`);
    return tsqlLiteral(value.reveal());
  };
}

export const keyStatements = {
  createMasterKey: (secret: SecretText) =>
    `IF NOT EXISTS (SELECT 1 FROM sys.symmetric_keys WHERE name = N'${MASTER_KEY_NAME}') ` +
    `CREATE MASTER KEY ENCRYPTION BY PASSWORD = ${secret('masterKeyPassword')}`,

  /**
   * Opens the master key with its password, and nothing else: the master key's protection is the
   * DBA's (ALTER MASTER KEY DROP ENCRYPTION BY SERVICE MASTER KEY is how one asks for a
   * password-only master key), so no command changes it by the way (review WR4). `status` and
   * `doctor` probe whether it opens by itself; `activate` is the explicit repair (its CREATE
   * MASTER KEY is encrypted by this server's service master key by default).
   * Every transaction that touches keys or cells starts here, so it also sets XACT_ABORT: any
   * error then rolls the whole transaction back on the server, even if the client dies before
   * it can send ROLLBACK (knex sends none after a failed COMMIT).
   */
  openMasterKey: (secret: SecretText) =>
    `SET XACT_ABORT ON; OPEN MASTER KEY DECRYPTION BY PASSWORD = ${secret('masterKeyPassword')}`,

  /**
   * The explicit repair a DBA may run by hand (the activate script's last batch, commented out):
   * after a restore on another server is_master_key_encrypted_by_server may still say yes while
   * the copy is useless, so it is re-added unconditionally. No command of cellcrypt sends it.
   */
  reencryptMasterKeyByServer: (secret: SecretText) =>
    `OPEN MASTER KEY DECRYPTION BY PASSWORD = ${secret('masterKeyPassword')}; ` +
    `ALTER MASTER KEY ADD ENCRYPTION BY SERVICE MASTER KEY`,

  /** A new certificate is granted to the application role in the same statement (install, activate, rewrap). */
  createCertificate: (name: string) =>
    `IF NOT EXISTS (SELECT 1 FROM sys.certificates WHERE name = ${tsqlLiteral(name)}) ` +
    `CREATE CERTIFICATE ${q(name)} WITH SUBJECT = ${tsqlLiteral(`cellcrypt ${name}`)}; ` +
    grantCertificateToApplications(name),

  /**
   * A new key is granted to the application role in the same statement, hence in the transaction
   * that creates it: an application in the role never sees a current key it may not open.
   */
  createSymmetricKey: (name: string, certificate: string, secret: SecretText) =>
    `CREATE SYMMETRIC KEY ${q(name)} WITH ALGORITHM = AES_256, KEY_SOURCE = ${secret('passphrase')}, ` +
    `IDENTITY_VALUE = ${secret('identityValue')} ENCRYPTION BY CERTIFICATE ${q(certificate)}; ` +
    grantKeyToApplications(name),

  openSymmetricKey: (name: string, certificate: string) =>
    `OPEN SYMMETRIC KEY ${q(name)} DECRYPTION BY CERTIFICATE ${q(certificate)}`,

  /** A probe encrypted under a freshly created key: decrypted in Node, it proves which derivation the server used. */
  probeSymmetricKey: (name: string, probeHex: string) =>
    `SELECT ENCRYPTBYKEY(KEY_GUID(${tsqlLiteral(name)}), 0x${probeHex}) AS probe, ` +
    `CONVERT(nvarchar(36), KEY_GUID(${tsqlLiteral(name)})) AS key_guid`,

  dropSymmetricKey: (name: string) => `CLOSE ALL SYMMETRIC KEYS; DROP SYMMETRIC KEY ${q(name)}`,

  /**
   * rewrap: the new certificate protects the key before the old one stops (a key is never without
   * an encryption). ADD needs the key open: SQL Server encrypts the key's own bytes again.
   */
  addKeyEncryption: (name: string, certificate: string) =>
    `ALTER SYMMETRIC KEY ${q(name)} ADD ENCRYPTION BY CERTIFICATE ${q(certificate)}`,

  dropKeyEncryption: (name: string, certificate: string) =>
    `ALTER SYMMETRIC KEY ${q(name)} DROP ENCRYPTION BY CERTIFICATE ${q(certificate)}`,

  /** Closes the keys first: they were opened through this certificate. */
  dropCertificate: (name: string) => `CLOSE ALL SYMMETRIC KEYS; DROP CERTIFICATE ${q(name)}`,

  /**
   * A new master-key password, the old one removed: ADD/DROP ENCRYPTION BY PASSWORD rather than
   * REGENERATE. Both are allowed in a user transaction as far as the documentation says, but
   * REGENERATE makes a new master key and re-encrypts everything under it (and its copy under the
   * service master key, kept in `master`), while ADD/DROP change only this database's password
   * encryption of the same key: applications that rely on it opening by itself keep working.
   * The key is opened with the old password first (dropping the keys' certificate closed it).
   */
  changeMasterKeyPassword: (secret: SecretText) =>
    `OPEN MASTER KEY DECRYPTION BY PASSWORD = ${secret('masterKeyPassword')}; ` +
    `ALTER MASTER KEY ADD ENCRYPTION BY PASSWORD = ${secret('newMasterKeyPassword')}; ` +
    `ALTER MASTER KEY DROP ENCRYPTION BY PASSWORD = ${secret('masterKeyPassword')}`,

  /** DECRYPTBYKEY of one blob with the open keys (rewrap's known-answer probe). */
  decrypt: (cellHex: string) => `SELECT DECRYPTBYKEY(0x${cellHex}) AS plain`,

  closeAll: () =>
    `CLOSE ALL SYMMETRIC KEYS; IF EXISTS (SELECT 1 FROM sys.openkeys WHERE ` +
    `key_name = N'${MASTER_KEY_NAME}' AND database_id = DB_ID()) CLOSE MASTER KEY`,

  /**
   * Outside any transaction, with nothing open: can the key be opened the way applications do,
   * through the certificate and a master key that opens by itself? Error 15581 says no.
   */
  probeAutomaticOpen: (keyName: string, certificate: string) =>
    `CLOSE ALL SYMMETRIC KEYS; IF EXISTS (SELECT 1 FROM sys.openkeys WHERE ` +
    `key_name = N'${MASTER_KEY_NAME}' AND database_id = DB_ID()) CLOSE MASTER KEY; ` +
    `OPEN SYMMETRIC KEY ${q(keyName)} DECRYPTION BY CERTIFICATE ${q(certificate)}; CLOSE SYMMETRIC KEY ${q(keyName)}`,

  /**
   * Everything activate rebuilds: our symmetric keys (and their recorded derivations), the
   * certificate, then the master key.
   */
  reset: (certificate: string, keyPrefix: string) => [
    'DELETE FROM cellcrypt.key_derivation',
    'CLOSE ALL SYMMETRIC KEYS',
    `DECLARE @drop nvarchar(max) = N''; ` +
      `SELECT @drop = @drop + N'DROP SYMMETRIC KEY ' + QUOTENAME(name) + N'; ' FROM sys.symmetric_keys ` +
      `WHERE name LIKE ${tsqlLiteral(`${keyPrefix.replace(/[[\]_%]/g, '[$&]')}%`)}; EXEC sys.sp_executesql @drop`,
    // Every generation of the certificate (a rewrap moved the keys to cellcrypt_certificate_N).
    `DECLARE @dropCertificates nvarchar(max) = N''; ` +
      `SELECT @dropCertificates = @dropCertificates + N'DROP CERTIFICATE ' + QUOTENAME(name) + N'; ' ` +
      `FROM sys.certificates WHERE name = ${tsqlLiteral(certificate)} OR ${ourCertificates()}; ` +
      `EXEC sys.sp_executesql @dropCertificates`,
    `IF EXISTS (SELECT 1 FROM sys.symmetric_keys WHERE name = N'${MASTER_KEY_NAME}') DROP MASTER KEY`,
  ],

  /**
   * What else depends on the master key or on our certificates, so that `reset` would fail (DROP
   * MASTER KEY "will fail if any private key in the database is protected by the master key";
   * "Certificates can only be dropped if no entities are associated with them") or destroy
   * someone else's secrets: certificates and asymmetric keys not ours whose private key the
   * master key protects, symmetric keys reset does not drop that our certificates (or the master
   * key) encrypt, modules our certificates sign, users mapped to them, and database scoped
   * credentials (their secrets are encrypted by the master key). One row per object: kind, name.
   */
  foreignDependents: () => {
    const ourThumbprints = `SELECT thumbprint FROM sys.certificates WHERE ${ourCertificates()}`;
    return (
      [
        `SELECT N'certificate' AS kind, name FROM sys.certificates ` +
          `WHERE pvt_key_encryption_type = 'MK' AND NOT ${ourCertificates()}`,
        `SELECT N'asymmetric key', name FROM sys.asymmetric_keys WHERE pvt_key_encryption_type = 'MK'`,
        `SELECT N'symmetric key', k.name FROM sys.symmetric_keys AS k WHERE k.name <> N'${MASTER_KEY_NAME}' ` +
          `AND k.name NOT LIKE ${tsqlLiteral(`${likeEscape(KEY_PREFIX)}%`)} AND EXISTS (SELECT 1 FROM ` +
          `sys.key_encryptions AS e WHERE e.key_id = k.symmetric_key_id AND (e.crypt_type = 'ESKM' OR ` +
          `e.thumbprint IN (${ourThumbprints})))`,
        `SELECT N'signature on', OBJECT_SCHEMA_NAME(major_id) + N'.' + OBJECT_NAME(major_id) ` +
          `FROM sys.crypt_properties WHERE thumbprint IN (${ourThumbprints})`,
        `SELECT N'user', name FROM sys.database_principals ` +
          `WHERE sid IN (SELECT sid FROM sys.certificates WHERE ${ourCertificates()})`,
        `SELECT N'database scoped credential', name FROM sys.database_scoped_credentials`,
      ].join(' UNION ALL ') + ' ORDER BY kind, name'
    );
  },

  readMasterKey: () =>
    `SELECT CASE WHEN EXISTS (SELECT 1 FROM sys.symmetric_keys WHERE ` +
    `name = N'${MASTER_KEY_NAME}') THEN 1 ELSE 0 END AS master_key, ` +
    `CASE WHEN OBJECT_ID(N'cellcrypt.key_derivation', N'U') IS NULL THEN 0 ELSE 1 END AS prepared`,

  readCertificates: () => `SELECT name FROM sys.certificates ORDER BY name`,

  /** Without the derivation table (org not prepared yet) every key reads as 2017+. */
  readSymmetricKeysUnprepared: () =>
    `SELECT name, CONVERT(nvarchar(36), key_guid) AS key_guid, algorithm_desc ` +
    `AS algorithm, create_date AS created_at, NULL AS derivation ` +
    `FROM sys.symmetric_keys WHERE name <> N'${MASTER_KEY_NAME}' ORDER BY create_date, name`,

  readSymmetricKeys: () =>
    `SELECT k.name, CONVERT(nvarchar(36), k.key_guid) AS key_guid, ` +
    `k.algorithm_desc AS algorithm, k.create_date AS created_at, d.derivation ` +
    `FROM sys.symmetric_keys AS k LEFT JOIN cellcrypt.key_derivation AS d ON d.name = k.name ` +
    `WHERE k.name <> N'${MASTER_KEY_NAME}' ORDER BY k.create_date, k.name`,

  forgetDerivation: (name: string) => `DELETE FROM cellcrypt.key_derivation WHERE name = ${tsqlLiteral(name)}`,

  recordDerivation: (name: string, derivation: string) =>
    `${keyStatements.forgetDerivation(name)}; INSERT INTO cellcrypt.key_derivation ` +
    `(name, derivation) VALUES (${tsqlLiteral(name)}, ${tsqlLiteral(derivation)})`,

  /** Dynamics' encryption/decryption test: a probe through ENCRYPTBYKEY and back, compared byte for byte (BIN2). */
  roundTrip: (keyGuid: string, secret: SecretText) => {
    const probe = secret('passphrase');
    return (
      `SELECT CASE WHEN CONVERT(nvarchar(4000), DECRYPTBYKEY(ENCRYPTBYKEY(${guidLiteral(keyGuid)}, ` +
      `${probe}))) = ${probe} COLLATE Latin1_General_BIN2 THEN 1 ELSE 0 END AS ok`
    );
  },
};

/** Objects of our own the engine needs in every org database (idempotent). */
export const prepareStatements = (): string[] => [
  `IF SCHEMA_ID(N'cellcrypt') IS NULL EXEC (N'CREATE SCHEMA cellcrypt')`,
  `IF OBJECT_ID(N'cellcrypt.key_derivation', N'U') IS NULL CREATE TABLE cellcrypt.key_derivation ` +
    `(name nvarchar(128) NOT NULL PRIMARY KEY, derivation varchar(8) NOT NULL)`,
  ...applicationPrepareStatements(),
];
