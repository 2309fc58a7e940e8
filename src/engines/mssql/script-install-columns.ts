import type { ScriptColumn } from '../engine';
import { blockersQuery } from './blockers';
import { columnStatements as S, keyGuidOf, shadowName } from './column-statements';
import { refreshDependentModules } from './dependent-modules';
import { quoteTsqlIdentifier as q, tsqlInteger, tsqlLiteral } from './quote';
import { fail, scriptErrorNumber } from './script-errors';

/**
 * The install script's per-column T-SQL. A column is converted only while its real type is text:
 * after a first run it is varbinary (the ciphertext), and converting that again would encrypt
 * the ciphertext, cutting every cell longer than the registry's length (CONVERT truncates
 * silently). So each step reads the type from sys.columns: text converts, varbinary is skipped
 * (a re-run changes nothing), anything else stops the script.
 */

/** The whole-table TOP for statements the engine runs in steps: a script runs each once. */
const ALL_ROWS = 2_147_483_647;

export const TEXT_TYPES = ['nvarchar', 'nchar', 'varchar', 'char'] as const;
const textTypes = `(${TEXT_TYPES.map((type) => tsqlLiteral(type)).join(', ')})`;

const label = (column: ScriptColumn) => `${column.table}.${column.column}`;

/** The column's real type name (NULL when there is no such column). */
const typeOf = (column: ScriptColumn) =>
  `(SELECT TYPE_NAME(system_type_id) FROM sys.columns WHERE object_id = ` +
  `OBJECT_ID(${tsqlLiteral(q(column.table))}, N'U') AND name = ${tsqlLiteral(column.column)})`;

/** Its declared length in characters: sys.columns counts bytes, two per nchar/nvarchar character (-1: max). */
const lengthOf = (column: ScriptColumn) =>
  `(SELECT CASE WHEN max_length = -1 THEN -1 WHEN TYPE_NAME(system_type_id) IN (N'nvarchar', N'nchar') ` +
  `THEN max_length / 2 ELSE max_length END FROM sys.columns WHERE object_id = ` +
  `OBJECT_ID(${tsqlLiteral(q(column.table))}, N'U') AND name = ${tsqlLiteral(column.column)})`;

const skipped = (column: ScriptColumn) =>
  `PRINT ${tsqlLiteral(`cellcrypt: ${label(column)} is varbinary already (converted by an earlier run): skipped`)};`;

const notText = (column: ScriptColumn) =>
  `${fail(
    'notText',
    `${label(column)} is not a text column (nvarchar, nchar, varchar, char) nor the varbinary of an earlier ` +
      'run, or does not exist: check the registry (CELLCRYPT_REGISTRY); nothing was changed',
  )};`;

/**
 * Before any change, under the table locks: for every text column, its real length must be the
 * registry's (a wider column would have its longer values cut by CONVERT, in the encryption and
 * in its proof alike), no value may be longer than one cell holds, and nothing may stand in the
 * way of the swap.
 */
export function precheckColumn(column: ScriptColumn): string[] {
  return [
    `SET @type = ${typeOf(column)};`,
    `IF @type IN ${textTypes} BEGIN`,
    `  IF ${lengthOf(column)} <> ${tsqlInteger(column.maxLength)} ${fail(
      'lengthDiffers',
      `${label(column)} is not ${tsqlInteger(column.maxLength)} characters long as the registry says: longer ` +
        'values would be cut; correct the registry (CELLCRYPT_REGISTRY); nothing was changed',
    )};`,
    `  IF EXISTS (SELECT 1 FROM ${q(column.table)} WHERE DATALENGTH(CONVERT(nvarchar(max), ${q(column.column)})) > ` +
      `${tsqlInteger(column.plaintextBytes)}) ${fail(
        'valueTooLong',
        `${label(column)} has a value longer than ${tsqlInteger(column.plaintextBytes)} bytes (UTF-16), more ` +
          'than an encrypted cell holds; shorten it; nothing was changed',
      )};`,
    // The blockers are named in the message: STRING_AGG (SQL Server 2017, which the script requires).
    `  SET @message = (SELECT STRING_AGG(CONVERT(nvarchar(max), blocker), N'; ') ` +
      `FROM (${blockersQuery(column)}) AS b);`,
    `  IF @message IS NOT NULL BEGIN SET @message = LEFT(${tsqlLiteral(
      `cellcrypt: ${label(column)} cannot be swapped for its encrypted copy; nothing was changed. Blocked by: `,
    )} + @message, 2000); THROW ${scriptErrorNumber('swapBlocked')}, @message, 1; END;`,
    'END',
    `ELSE IF @type = N'varbinary' ${skipped(column)}`,
    `ELSE ${notText(column)}`,
  ];
}

/** Adds the shadow column, in its own batch (a batch is compiled before it runs, with the columns it names). */
export function addShadowBatch(column: ScriptColumn): string[] {
  return [
    `IF ${typeOf(column)} IN ${textTypes} AND COL_LENGTH(${tsqlLiteral(q(column.table))}, ` +
      `${tsqlLiteral(shadowName(column))}) IS NULL ${S.addShadow(column, column.sizeBytes)};`,
  ];
}

/**
 * Encrypts, proves and swaps. Sent through sp_executesql: it names the shadow column, which a
 * skipped column does not have, and a batch naming a missing column of an existing table fails
 * to compile even where an IF would not run it.
 */
export function convertBatch(column: ScriptColumn, keyName: string): string[] {
  const step = [
    `${S.encryptBatch(column, keyGuidOf(keyName), ALL_ROWS)};`,
    `IF EXISTS (SELECT 1 FROM @written WHERE lost = 1) ${fail(
      'encryptedToNull',
      `${label(column)}: a non-null value encrypted to NULL (is the key open?)`,
    )};`,
    `IF (${S.countShadowMismatches(column)}) > 0 ${fail(
      'proofFailed',
      `${label(column)}: a cell does not decrypt to its plaintext`,
    )};`,
    `${S.swap(column)};`,
    `${refreshDependentModules(column)};`,
  ].join('\n');
  return [
    `DECLARE @type sysname = ${typeOf(column)};`,
    `IF @type IN ${textTypes} EXEC sys.sp_executesql ${tsqlLiteral(step)};`,
    `ELSE IF @type = N'varbinary' ${skipped(column)}`,
    `ELSE ${notText(column)}`,
  ];
}
