import type { ScriptProbe } from '../engine';
import { keyStatements as K } from './key-statements';
import { fail } from './script-errors';

/**
 * The known-answer probe of a script's key, run right after its OPEN SYMMETRIC KEY: the blob
 * Node encrypted under the key file's key must decrypt to the probe's bytes with the key the
 * server just made from KEY_SOURCE. sqlcmd reads a :setvar file without a BOM in the ANSI code
 * page, so a non-ASCII key becomes another KEY_SOURCE, while IDENTITY_VALUE (ASCII) still gives
 * the right GUID: every check made inside the server would pass, and the cells would be under a
 * key that neither the key file nor `cellcrypt` can open. DECRYPTBYKEY picks the key by the GUID
 * in the blob; DATALENGTH too, because varbinary `=` ignores trailing zero bytes.
 */
export function probeCheck(probe: ScriptProbe, keyName: string): string {
  const cell = `DECRYPTBYKEY(0x${probe.cell.toString('hex')})`;
  const plaintext = `0x${probe.plaintext.toString('hex')}`;
  return (
    `IF ${cell} IS NULL OR DATALENGTH(${cell}) <> ${probe.plaintext.length} OR ${cell} <> ${plaintext} ` +
    `${fail(
      'probeFailed',
      `KEY_SOURCE is not the key in the key file (${keyName} would not be the key with GUID ${probe.keyGuid} ` +
        'the key file makes): the variables file was read in the wrong code page; use script variables ' +
        '(UTF-16) or sqlcmd -f 65001. Nothing was changed',
    )};`
  );
}

/** The probe proved the derivation: recorded as the engine records it, so cellcrypt never has to guess. */
export const recordProbedDerivation = (probe: ScriptProbe, keyName: string): string =>
  `${K.recordDerivation(keyName, probe.derivation)};`;
