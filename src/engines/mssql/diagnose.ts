import { KEY_PREFIX } from '../../common/key-names';
import type { Db, EngineDiagnosis } from '../engine';
import { query } from './execute';
import { mssqlKeyHierarchy } from './key-hierarchy';
import { keyGeneration, ourCertificates, ourKeys } from './our-objects';
import { tsqlLiteral } from './quote';

/**
 * SQL Server checks for `doctor`: version (2017+ for the SHA-512 derivation), the master key's
 * automatic opening, and the expiry of the certificates that protect our keys (CREATE
 * CERTIFICATE without EXPIRY_DATE gives one year).
 *
 * "Opens by itself" is judged by doing it (review WR4): the newest key of ours is opened through
 * its certificate, outside any transaction, with nothing open, as an application would. The
 * sys.databases flag is_master_key_encrypted_by_server may still read 1 after a restore on
 * another server, whose service master key cannot decrypt the copy.
 */

/** Warn this long before a certificate expires: time to plan its replacement. */
export const CERTIFICATE_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;
/** `cellcrypt_key_%` with `_` literal (in LIKE it matches any character). */
const OUR_KEYS = tsqlLiteral(`${KEY_PREFIX.replace(/_/g, '[_]')}%`);

export const diagnoseStatement = () =>
  `SELECT CONVERT(int, SERVERPROPERTY('ProductMajorVersion')) AS major, ` +
  `CONVERT(nvarchar(128), SERVERPROPERTY('ProductVersion')) AS version, ` +
  `CASE WHEN EXISTS (SELECT 1 FROM sys.symmetric_keys ` +
  `WHERE name = N'##MS_DatabaseMasterKey##') THEN 1 ELSE 0 END AS master_key, ` +
  // The certificates that encrypt one of our symmetric keys, whatever their generation's name.
  `(SELECT MIN(c.expiry_date) FROM sys.certificates AS c ` +
  `JOIN sys.key_encryptions AS e ON e.thumbprint = c.thumbprint ` +
  `JOIN sys.symmetric_keys AS k ON k.symmetric_key_id = e.key_id ` +
  `WHERE k.name LIKE ${OUR_KEYS}) AS certificate_expiry`;

/** The newest key of ours and a certificate of ours that encrypts it: what the probe opens. */
export const probeTargetStatement = () =>
  `SELECT TOP (1) k.name AS key_name, c.name AS certificate FROM sys.symmetric_keys AS k ` +
  `JOIN sys.key_encryptions AS e ON e.key_id = k.symmetric_key_id ` +
  `JOIN sys.certificates AS c ON c.thumbprint = e.thumbprint ` +
  `WHERE ${ourKeys('k.name')} AND ${ourCertificates('c.name')} ORDER BY ${keyGeneration('k.name')} DESC`;

export async function diagnoseMssql(db: Db): Promise<EngineDiagnosis[]> {
  const [row] = await query(db, diagnoseStatement(), 'doctor');
  const major = Number(row?.major);
  const checks: EngineDiagnosis[] = [
    major >= 14
      ? { check: 'server', outcome: 'ok', detail: `SQL Server ${String(row?.version)}` }
      : {
          check: 'server',
          outcome: 'warn',
          detail: `SQL Server ${String(row?.version)} derives keys with SHA-1 (2016 and older)`,
          hint: 'keys move between servers only with the same derivation; activate says which one matched',
        },
  ];
  if (Number(row?.master_key) === 1) {
    const master = await masterKeyCheck(db);
    if (master) checks.push(master);
  }
  const expiry = certificateExpiryCheck(row?.certificate_expiry);
  if (expiry) checks.push(expiry);
  return checks;
}

/** Whether the master key opens by itself, by the probe; undefined when there is no key of ours to open. */
async function masterKeyCheck(db: Db): Promise<EngineDiagnosis | undefined> {
  const [target] = await query(db, probeTargetStatement(), 'doctor');
  if (!target) return undefined;
  const keyName = String(target.key_name);
  if (await mssqlKeyHierarchy().opensByItself(db, keyName, String(target.certificate)))
    return { check: 'master key', outcome: 'ok', detail: `opens by itself: ${keyName} opens through its certificate` };
  return {
    check: 'master key',
    outcome: 'warn',
    detail:
      'the database master key does not open by itself on this server (error 15581): applications ' +
      'cannot open the keys (restored or failed over from another server, or its service-master-key ' +
      'encryption was dropped)',
    hint:
      'run `cellcrypt activate --key-file F`, which rebuilds it encrypted by this server; on an availability ' +
      'group replica, add its password with sp_control_dbmasterkey_password instead (README, SQL Server)',
  };
}

/** A warning when the earliest certificate expiry is within CERTIFICATE_WARNING_DAYS (or past). */
export function certificateExpiryCheck(value: unknown, now = Date.now()): EngineDiagnosis | undefined {
  if (value === null || value === undefined) return undefined; // no key yet: nothing expires
  const expiry = value instanceof Date ? value : new Date(String(value));
  if (Number.isNaN(expiry.getTime())) return undefined;
  const days = Math.floor((expiry.getTime() - now) / DAY_MS);
  const when = expiry.toISOString();
  if (days >= CERTIFICATE_WARNING_DAYS)
    return { check: 'certificate', outcome: 'ok', detail: `the certificate protecting the keys expires ${when}` };
  return {
    check: 'certificate',
    outcome: 'warn',
    detail:
      expiry.getTime() <= now
        ? `the certificate protecting the keys expired ${when}`
        : `the certificate protecting the keys expires ${when}, in ${days} day(s)`,
    // SQL Server does not check a certificate's expiry when it opens a symmetric key, so cells
    // stay readable; it is the policies and audits that require a current one.
    hint:
      'cells stay readable (SQL Server ignores the expiry when it opens a key), but if your policy ' +
      'requires a current certificate, protect the keys with a new one before then',
  };
}
