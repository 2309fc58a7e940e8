import { quoteTsqlIdentifier as q, tsqlLiteral } from './quote';
import { keyGeneration, ourCertificates, ourKeys } from './our-objects';

/**
 * The application contract on SQL Server (review DL6, BR1; README, "For applications"): two
 * names applications use instead of a key name, which change-key drops, and the database role
 * that lets them use the keys.
 *
 * `cellcrypt_application` holds what the server checks: VIEW DEFINITION on every cellcrypt
 * symmetric key (OPEN SYMMETRIC KEY needs "some permission on the key", and only then is the key
 * visible in sys.symmetric_keys), CONTROL on every certificate of ours (OPEN SYMMETRIC KEY ...
 * DECRYPTION BY CERTIFICATE requires it), EXECUTE on the function and the procedure. Every key
 * and certificate is granted in the statement that creates it, so members keep working across
 * change-key, activate and rewrap.
 */
export const APPLICATION_ROLE = 'cellcrypt_application';

export const ensureApplicationRole = (): string =>
  `IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = ${tsqlLiteral(APPLICATION_ROLE)} ` +
  `AND type = 'R') CREATE ROLE ${q(APPLICATION_ROLE)}`;

/** The GRANTs themselves: plain T-SQL, sent through EXEC (see `grantKeyToApplications`). */
export const applicationGrants = {
  key: (name: string): string => `GRANT VIEW DEFINITION ON SYMMETRIC KEY::${q(name)} TO ${q(APPLICATION_ROLE)}`,
  certificate: (name: string): string => `GRANT CONTROL ON CERTIFICATE::${q(name)} TO ${q(APPLICATION_ROLE)}`,
};

/**
 * Appended to the statement that creates a key or certificate. The GRANT runs through EXEC
 * because the grammar the tests parse with knows no `class::name` securable; its text is proven
 * apart (test/unit/engines/mssql/application-contract.test.ts). The role is created first if an
 * org prepared by an older cellcrypt lacks it, so a key change there does not fail on its grant.
 */
export const grantKeyToApplications = (name: string): string =>
  `${ensureApplicationRole()}; EXEC (${tsqlLiteral(applicationGrants.key(name))})`;

export const grantCertificateToApplications = (name: string): string =>
  `${ensureApplicationRole()}; EXEC (${tsqlLiteral(applicationGrants.certificate(name))})`;

/**
 * `current_key_guid()`: the key new writes use, the highest generation of ours (during a batched
 * key change both exist and the new one is current). `open_keys`: opens every key of ours through
 * the certificate that protects it, with no secret, since the master key opens by itself on SQL
 * Server. A key opened inside a procedure stays open for the session ("Open symmetric keys are
 * bound to the session not to the security context", OPEN SYMMETRIC KEY), so the caller's
 * ENCRYPTBYKEY/DECRYPTBYKEY find it. Both run as the caller. Each text is one CREATE OR ALTER,
 * which must be a batch of its own: prepare sends it through EXEC.
 */
export const applicationObjects = (): string[] => [
  `CREATE OR ALTER FUNCTION cellcrypt.current_key_guid() RETURNS uniqueidentifier AS BEGIN ` +
    `RETURN (SELECT TOP (1) key_guid FROM sys.symmetric_keys WHERE ${ourKeys()} ` +
    `ORDER BY ${keyGeneration()} DESC); END`,
  `CREATE OR ALTER PROCEDURE cellcrypt.open_keys AS BEGIN SET NOCOUNT ON; ` +
    `DECLARE @open nvarchar(max) = N''; ` +
    `SELECT @open = @open + N'OPEN SYMMETRIC KEY ' + QUOTENAME(k.name) + N' DECRYPTION BY CERTIFICATE ' + ` +
    `QUOTENAME(c.name) + N'; ' FROM sys.symmetric_keys AS k ` +
    `JOIN sys.key_encryptions AS e ON e.key_id = k.symmetric_key_id ` +
    `JOIN sys.certificates AS c ON c.thumbprint = e.thumbprint ` +
    `WHERE ${ourKeys('k.name')} AND ${ourCertificates('c.name')}; ` +
    // Opening nothing would leave the caller's ENCRYPTBYKEY returning NULL: say why instead.
    `IF @open = N'' THROW 50001, N'cellcrypt.open_keys: no cellcrypt key is visible to this user ` +
    `(add it to role ${APPLICATION_ROLE})', 1; ` +
    `EXEC sys.sp_executesql @open; END`,
];

/** Prepare's part (idempotent): the role, the two objects, their EXECUTE grants. */
export const applicationPrepareStatements = (): string[] => {
  const toRole = tsqlLiteral(` TO ${q(APPLICATION_ROLE)}; `);
  return [
    ensureApplicationRole(),
    ...applicationObjects().map((sql) => `EXEC (${tsqlLiteral(sql)})`),
    `GRANT EXECUTE ON cellcrypt.current_key_guid TO ${q(APPLICATION_ROLE)}`,
    `GRANT EXECUTE ON cellcrypt.open_keys TO ${q(APPLICATION_ROLE)}`,
    // An org installed before the role existed: grant the keys and certificates it has already.
    `DECLARE @grant nvarchar(max) = N''; ` +
      `SELECT @grant = @grant + N'GRANT VIEW DEFINITION ON SYMMETRIC KEY::' + QUOTENAME(name) + ${toRole} ` +
      `FROM sys.symmetric_keys WHERE ${ourKeys()}; ` +
      `SELECT @grant = @grant + N'GRANT CONTROL ON CERTIFICATE::' + QUOTENAME(name) + ${toRole} ` +
      `FROM sys.certificates WHERE ${ourCertificates()}; ` +
      `EXEC sys.sp_executesql @grant`,
  ];
};
