import knexFactory from 'knex';
import { activateScript, changeKeyScript, installScript, type ScriptColumn } from '../engines/mssql/script';
import { encryptedColumnBytes } from './column-state';
import { CellcryptError } from '../common/errors';
import { CERTIFICATE_NAME, keyName } from '../common/key-names';
import type { SensitiveColumn } from './registry';
import { SCHEMA, TOOLKIT_TABLE_DEFINITIONS } from './toolkit-tables';

/**
 * `cellcrypt script`: what the engine would do, as T-SQL for a DBA to review and run. Needs no
 * connection: the registry gives the columns and sizes, `generation` the key names.
 */
export type ScriptOperation = 'install' | 'change-key' | 'activate';

export function renderMssqlScript(
  operation: ScriptOperation,
  registry: readonly SensitiveColumn[],
  generation: number,
): string {
  if (!Number.isSafeInteger(generation) || generation < 1)
    throw new CellcryptError('CellcryptUsage', `--generation must be a whole number from 1, got ${generation}`, {
      exitCode: 2,
    });
  const columns: ScriptColumn[] = registry.map((column) => ({ ...column, sizeBytes: encryptedColumnBytes(column) }));
  const base = { columns, certificate: CERTIFICATE_NAME };
  switch (operation) {
    case 'install':
      return installScript({ ...base, keyName: keyName(1), toolkitTables: toolkitTablesTsql() });
    case 'change-key':
      return changeKeyScript({ ...base, fromKeyName: keyName(generation), keyName: keyName(generation + 1) });
    case 'activate':
      return activateScript({ ...base, keyName: keyName(generation) });
  }
}

/** cellcrypt's own tables, rendered by knex's mssql schema builder from the definitions the engine uses. */
function toolkitTablesTsql(): string[] {
  const knex = knexFactory({ client: 'mssql' });
  return TOOLKIT_TABLE_DEFINITIONS.map(([name, define]) => {
    const ddl = knex.schema
      .withSchema(SCHEMA)
      .createTable(name, (t) => define(t, knex))
      .toString();
    return `IF OBJECT_ID(N'${SCHEMA}.${name}', N'U') IS NULL\nBEGIN\n${ddl.trim().replace(/;?$/, ';')}\nEND`;
  });
}
