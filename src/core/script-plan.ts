import { CellcryptError } from '../common/errors';
import { CERTIFICATE_NAME, keyName } from '../common/key-names';
import type { ScriptPlan, ScriptRenderer } from '../engines/engine';
import { encryptedColumnBytes } from './column-state';
import type { SensitiveColumn } from './registry';
import { SCHEMA, TOOLKIT_TABLE_DEFINITIONS } from './toolkit-tables';

/**
 * `cellcrypt script`: what the engine would do, as a script for a DBA to review and run. Needs
 * no connection: the registry gives the columns and sizes, `generation` the key names. Core
 * decides what the script does; the engine's renderer writes it in its own SQL.
 */
export type ScriptOperation = ScriptPlan['operation'];

export function planScript(
  operation: ScriptOperation,
  registry: readonly SensitiveColumn[],
  generation: number,
): ScriptPlan {
  if (!Number.isSafeInteger(generation) || generation < 1)
    throw new CellcryptError('CellcryptUsage', `--generation must be a whole number from 1, got ${generation}`, {
      exitCode: 2,
    });
  const columns = registry.map((column) => ({ ...column, sizeBytes: encryptedColumnBytes(column) }));
  const tables = { schema: SCHEMA, definitions: TOOLKIT_TABLE_DEFINITIONS };
  const base = { operation, columns, certificate: CERTIFICATE_NAME, tables };
  switch (operation) {
    case 'install':
      return { ...base, keyName: keyName(1) };
    case 'change-key':
      return { ...base, fromKeyName: keyName(generation), keyName: keyName(generation + 1) };
    case 'activate':
      return { ...base, keyName: keyName(generation) };
  }
}

export function renderScript(
  renderer: ScriptRenderer,
  operation: ScriptOperation,
  registry: readonly SensitiveColumn[],
  generation: number,
): string {
  return renderer.render(planScript(operation, registry, generation));
}
