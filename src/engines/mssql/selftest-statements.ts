import { quoteTsqlIdentifier as q, tsqlInteger, tsqlLiteral } from './quote';

/**
 * The T-SQL of `cellcrypt selftest` on SQL Server (see selftest.ts). No statement here carries
 * a secret: the keys are opened by the key hierarchy's own statements before any of these run,
 * and every value inlined is a probe, a GUID or a name, through the engine's one quoting helper.
 * Every builder is parsed with the T-SQL grammar in the unit tests.
 */
const hex = (bytes: Buffer) => `0x${bytes.toString('hex')}`;

/** A GUID string as a uniqueidentifier literal (validated: only hex digits and dashes get in). */
function guid(keyGuid: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(keyGuid))
    throw new Error(`not a GUID: ${keyGuid.slice(0, 40)}`);
  return `CONVERT(uniqueidentifier, ${tsqlLiteral(keyGuid.toUpperCase())})`;
}

export const selftestStatements = {
  createDatabase: (name: string) => `CREATE DATABASE ${q(name)}`,
  /** SINGLE_USER WITH ROLLBACK IMMEDIATE ends any session still in it (a killed run's pool). */
  dropDatabase: (name: string) =>
    `IF DB_ID(${tsqlLiteral(name)}) IS NOT NULL BEGIN ALTER DATABASE ${q(name)} ` +
    `SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE ${q(name)}; END`,
  /** A key hierarchy counts as content too: activate's rebuild would drop it. */
  userObjects: () =>
    `SELECT SCHEMA_NAME(schema_id) + N'.' + name AS name FROM sys.objects WHERE is_ms_shipped = 0 ` +
    `UNION ALL SELECT N'symmetric key ' + name FROM sys.symmetric_keys ` +
    `UNION ALL SELECT N'certificate ' + name FROM sys.certificates WHERE name NOT LIKE N'##%' ORDER BY name`,
  serverFacts: () =>
    `SELECT CONVERT(nvarchar(128), SERVERPROPERTY('ProductVersion')) AS product_version, ` +
    `CONVERT(int, SERVERPROPERTY('ProductMajorVersion')) AS major_version, ` +
    `CONVERT(nvarchar(128), SERVERPROPERTY('ProductLevel')) AS product_level, ` +
    `CONVERT(nvarchar(128), SERVERPROPERTY('ProductUpdateLevel')) AS update_level, ` +
    `CONVERT(nvarchar(128), SERVERPROPERTY('Edition')) AS edition, ` +
    `CONVERT(int, SERVERPROPERTY('EngineEdition')) AS engine_edition, ` +
    `d.compatibility_level, CONVERT(int, d.is_master_key_encrypted_by_server) AS master_key_by_server ` +
    `FROM sys.databases AS d WHERE d.database_id = DB_ID()`,
  /** Rows TraceFlag, Status, Global, Session; public may run it (dbcc-tracestatus-transact-sql.md). */
  traceFlag4631: () => `DBCC TRACESTATUS(4631, -1) WITH NO_INFOMSGS`,
  /**
   * The key as the certificate protects it (reference section 4): DECRYPTBYCERT of the key's EPUC
   * row for this certificate. The master key must be open (it protects the certificate).
   */
  keyMaterial: (keyName: string, certificate: string) =>
    `SELECT DECRYPTBYCERT(CERT_ID(${tsqlLiteral(certificate)}), e.crypt_property) AS key_bytes ` +
    `FROM sys.symmetric_keys AS k JOIN sys.key_encryptions AS e ON e.key_id = k.symmetric_key_id ` +
    `JOIN sys.certificates AS c ON c.thumbprint = e.thumbprint ` +
    `WHERE e.crypt_type = 'EPUC' AND k.name = ${tsqlLiteral(keyName)} AND c.name = ${tsqlLiteral(certificate)}`,
  encrypt: (keyGuid: string, plaintext: { text: string } | { bytes: Buffer }, authenticator?: Buffer) =>
    `SELECT ENCRYPTBYKEY(${guid(keyGuid)}, ` +
    `${'text' in plaintext ? tsqlLiteral(plaintext.text) : hex(plaintext.bytes)}` +
    `${authenticator ? `, 1, ${hex(authenticator)}` : ''}) AS cell`,
  decrypt: (cell: Buffer, authenticator?: Buffer) =>
    `SELECT DECRYPTBYKEY(${hex(cell)}${authenticator ? `, 1, ${hex(authenticator)}` : ''}) AS plain`,
  /** The object locks this session holds on the table (review F: confirm lockTable's TABLOCKX). */
  tableLocks: (table: string) =>
    `SELECT request_mode AS mode FROM sys.dm_tran_locks WHERE request_session_id = @@SPID ` +
    `AND resource_database_id = DB_ID() AND resource_type = N'OBJECT' AND request_status = N'GRANT' ` +
    `AND resource_associated_entity_id = OBJECT_ID(${tsqlLiteral(q(table))}) ORDER BY request_mode`,
  /**
   * One batch: SET LOCK_TIMEOUT lasts to the end of the batch knex sends (sp_executesql).
   * READCOMMITTEDLOCK: under READ_COMMITTED_SNAPSHOT a plain read would not wait at all.
   */
  readWithLockTimeout: (table: string, milliseconds: number) =>
    `SET LOCK_TIMEOUT ${tsqlInteger(milliseconds)}; SELECT COUNT(*) AS n FROM ${q(table)} WITH (READCOMMITTEDLOCK)`,
  /** TOP (1), not TOP (0): a plan that reads no row might take no lock (review F). */
  holdTable: (table: string) => `SELECT TOP (1) 1 AS held FROM ${q(table)} WITH (TABLOCKX, HOLDLOCK)`,
  sessionId: () => `SELECT @@SPID AS spid`,
  /** Needs VIEW SERVER STATE to see another session's request. */
  waitingOn: (spid: number) =>
    `SELECT session_id FROM sys.dm_exec_requests WHERE blocking_session_id = ${tsqlInteger(spid)}`,
  /** Needs ALTER ANY CONNECTION (sysadmin, processadmin). */
  kill: (spid: number) => `KILL ${tsqlInteger(spid)}`,
};

/** What lockTable must hold: an exclusive OBJECT lock. */
export const EXCLUSIVE_MODE = 'X';

/** "Lock request time out period exceeded." */
export const LOCK_TIMEOUT_ERROR = 1222;

/** SQL Server 2017 is 14: the first that derives KEY_SOURCE keys the way cellcrypt writes them (SHA-512). */
export const MINIMUM_MAJOR_VERSION = 14;

/** THROW and TRY_CONVERT in the engine's statements need compatibility level 110 (SQL Server 2012) or newer. */
export const MINIMUM_COMPATIBILITY_LEVEL = 110;
