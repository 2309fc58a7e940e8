import type { Db, EngineDiagnosis } from '../engine';
import { query } from './execute';

/**
 * SQL Server checks for `doctor`: version (2017+ for the SHA-512 derivation) and the master key's
 * automatic opening.
 */
export const diagnoseStatement = () =>
  `SELECT CONVERT(int, SERVERPROPERTY('ProductMajorVersion')) AS major, ` +
  `CONVERT(nvarchar(128), SERVERPROPERTY('ProductVersion')) AS version, ` +
  `(SELECT is_master_key_encrypted_by_server FROM sys.databases WHERE database_id = DB_ID()) AS by_server, ` +
  `CASE WHEN EXISTS (SELECT 1 FROM sys.symmetric_keys ` +
  `WHERE name = N'##MS_DatabaseMasterKey##') THEN 1 ELSE 0 END AS master_key`;

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
  if (Number(row?.master_key) === 1 && Number(row?.by_server) !== 1) {
    checks.push({
      check: 'master key',
      outcome: 'warn',
      detail:
        "the database master key is not encrypted by this server's service master key: applications get error 15581",
      hint: 'run `cellcrypt activate --key-file F` (or the last batch of `cellcrypt script activate --engine mssql`)',
    });
  }
  return checks;
}
