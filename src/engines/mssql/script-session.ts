import { fail } from './script-errors';
import { tsqlLiteral } from './quote';

/**
 * The batches every sqlcmd script opens with, before it changes anything: the guard against a
 * run without sqlcmd's variables, the SET options SQL Server demands for writing to tables with
 * filtered indexes, indexed views or indexed computed columns, and the server checks.
 */

/** Every sqlcmd variable `$(Name)` a script's text uses, in order of first use. */
export const sqlcmdVariablesIn = (text: string): string[] => [
  ...new Set([...text.matchAll(/\$\(([A-Za-z_][\w]*)\)/g)].map((match) => match[1])),
];

/**
 * Batch 2, its own batch: without SQLCMD mode (SSMS's default) batch 1 (`:on error exit`) fails
 * to parse and SSMS goes on with the next batch, `$(...)` stays literal, and the key would be made
 * from the public text `$(CellcryptPassphrase)`; with `sqlcmd -x`, or a variable not set, the same.
 * The variable's text equal to its own name means no substitution: RAISERROR (THROW would end
 * the batch before the next line) and SET NOEXEC ON, which lasts for the session, so no later
 * batch runs. `N'$' + N'(...)'` is not a variable to sqlcmd, so it is never substituted.
 */
export function guardBatch(variables: readonly string[]): string[] {
  return variables.map(
    (name) =>
      `IF N'$(${name})' = N'$' + N'(${name})' BEGIN RAISERROR(${tsqlLiteral(
        `cellcrypt: the sqlcmd variable ${name} is not set: run this script with sqlcmd, or in SSMS with ` +
          'SQLCMD mode on, and with every variable set (cellcrypt script variables). Nothing was changed; ' +
          'SET NOEXEC ON stops the rest of this session (SET NOEXEC OFF or reconnect)',
      )}, 16, 1); SET NOEXEC ON; END;`,
  );
}

/**
 * sqlcmd (ODBC) connects with QUOTED_IDENTIFIER OFF (`-I` turns it on); UPDATE, INSERT and DELETE
 * on a table with a filtered index, an indexed view or an index on a computed column then fail
 * (error 1934). These are the options those require. In a batch of their own: QUOTED_IDENTIFIER
 * is read when a batch is parsed, so it applies from the next batch on.
 */
export const SESSION_OPTIONS: readonly (readonly [string, 'ON' | 'OFF'])[] = [
  ['QUOTED_IDENTIFIER', 'ON'],
  ['ANSI_NULLS', 'ON'],
  ['ANSI_PADDING', 'ON'],
  ['ANSI_WARNINGS', 'ON'],
  ['ARITHABORT', 'ON'],
  ['CONCAT_NULL_YIELDS_NULL', 'ON'],
  ['NUMERIC_ROUNDABORT', 'OFF'],
];

export const sessionOptionsBatch = (): string[] => SESSION_OPTIONS.map(([option, value]) => `SET ${option} ${value};`);

/**
 * KEY_SOURCE becomes key bytes by SHA-512 from SQL Server 2017 (major version 14) on, by SHA-1
 * before, and by SHA-1 again on 2017+ with trace flag 4631 (global or for the session): the key
 * file's key is the SHA-512 one, so the scripts run only where the server makes that key.
 * (The probe would stop anything else too; these say why, before any change.)
 */
export const serverChecks = (): string[] => [
  `IF COALESCE(CONVERT(int, SERVERPROPERTY('ProductMajorVersion')), 0) < 14 ${fail(
    'serverTooOld',
    'this script needs SQL Server 2017 or later (it derives keys from KEY_SOURCE with SHA-512, as the key file ' +
      'does); nothing was changed. On older servers run `cellcrypt install|change-key|activate` instead',
  )};`,
  'DECLARE @traceFlags TABLE (TraceFlag int, Status int, Global int, Session int);',
  `INSERT INTO @traceFlags EXEC (N'DBCC TRACESTATUS(4631, -1) WITH NO_INFOMSGS');`,
  `IF EXISTS (SELECT 1 FROM @traceFlags WHERE TraceFlag = 4631 AND Status = 1) ${fail(
    'traceFlag4631',
    'trace flag 4631 is on: this server derives keys from KEY_SOURCE the SQL Server 2016 way, not as the key ' +
      'file does; nothing was changed. Turn it off (DBCC TRACEOFF(4631, -1)) and run the script again',
  )};`,
];
