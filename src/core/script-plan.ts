import { deriveKey, encryptByKey, guidStringToBytes } from '../cellcrypt';
import { keyGuidFor } from '../cellcrypt/key-identity';
import { CellcryptError } from '../common/errors';
import { CERTIFICATE_NAME, keyName } from '../common/key-names';
import type { Secret } from '../common/secret';
import type { ScriptPlan, ScriptProbe, ScriptRenderer } from '../engines/engine';
import { encryptedColumnBytes, plaintextByteLimit } from './column-state';
import { ORG_KEY_LOCK } from './org-lock';
import type { SensitiveColumn } from './registry';
import { SCHEMA, TOOLKIT_TABLE_DEFINITIONS } from './toolkit-tables';

/**
 * `cellcrypt script`: what the engine would do, as a script for a DBA to review and run. Needs
 * no connection: the registry gives the columns and sizes, `generation` the key names, the key
 * file the known-answer probe. Core decides what the script does; the engine's renderer writes
 * it in its own SQL.
 */
export type ScriptOperation = ScriptPlan['operation'];

/**
 * The probe's plaintext and IV are fixed, so the same key file always prints the same script (a
 * DBA can diff two). A fixed IV costs nothing here: every cell shows its IV anyway, and this
 * plaintext is public.
 */
export const PROBE_PLAINTEXT = Buffer.from('cellcrypt known-answer probe v1', 'utf8');
const PROBE_IV = Buffer.from('cellcrypt probe!', 'ascii');

/**
 * The key the script creates (install, activate) or moves to (change-key), from the key file:
 * the scripts accept only servers that derive KEY_SOURCE the 2017+ way (they check the version
 * and trace flag 4631), so the probe is made that way and the script records that derivation.
 */
export function scriptProbe(passphrase: Secret): ScriptProbe {
  const keyGuid = keyGuidFor(passphrase);
  const key = { keyGuid: guidStringToBytes(keyGuid), key: deriveKey(passphrase.reveal(), 'sql2017') };
  const cell = encryptByKey(key, PROBE_PLAINTEXT, { iv: PROBE_IV });
  key.key.fill(0);
  return { keyGuid, plaintext: PROBE_PLAINTEXT, cell, derivation: 'sql2017' };
}

export function planScript(
  operation: ScriptOperation,
  registry: readonly SensitiveColumn[],
  generation: number,
  passphrase: Secret,
): ScriptPlan {
  if (!Number.isSafeInteger(generation) || generation < 1)
    throw new CellcryptError('CellcryptUsage', `--generation must be a whole number from 1, got ${generation}`, {
      exitCode: 2,
    });
  const columns = registry.map((column) => ({
    ...column,
    sizeBytes: encryptedColumnBytes(column),
    plaintextBytes: plaintextByteLimit(column),
  }));
  const tables = { schema: SCHEMA, definitions: TOOLKIT_TABLE_DEFINITIONS };
  const probe = scriptProbe(passphrase);
  const base = { operation, columns, certificate: CERTIFICATE_NAME, tables, lockName: ORG_KEY_LOCK, probe };
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
  passphrase: Secret,
): string {
  return renderer.render(planScript(operation, registry, generation, passphrase));
}
