import { refuse } from '../../common/errors';
import type { Secret } from '../../common/secret';
import { SQLCMD_VARIABLES, type ScriptSecretSlot } from './key-statements';

/**
 * `cellcrypt script variables`: the secrets a script needs, as a sqlcmd `:setvar` file.
 *
 * UTF-16LE with a BOM, because sqlcmd reads a file without one in the ANSI code page, and a
 * non-ASCII key would then reach KEY_SOURCE as other characters (the script's probe stops that,
 * but only after the DBA's run failed). sqlcmd recognises UTF-16 by its BOM whatever -f says.
 *
 * Each value goes through two readers, so it is escaped for both:
 * - the script writes it inside a T-SQL literal, `N'$(Name)'`, and sqlcmd substitutes the text as
 *   it is: a `'` must be doubled to stay inside the literal;
 * - sqlcmd reads `:setvar Name "value"`, where a `"` that is part of the value is doubled
 *   (sqlcmd-use-scripting-variables: `:setvar MyVar "spac""e"`).
 */

export type ScriptSecrets = Readonly<Record<ScriptSecretSlot, Secret>>;

const SLOT_NAMES: Readonly<Record<ScriptSecretSlot, string>> = {
  masterKeyPassword: 'the master-key password',
  passphrase: 'the key',
  identityValue: 'the identity value',
};

/** What cannot travel in a :setvar line: refused, never mangled. */
function refusal(text: string): string | undefined {
  if (text === '') return 'is empty';
  // A line break would end the :setvar line; NUL and other controls are never part of a secret here.
  if (/\p{Cc}/u.test(text)) return 'contains a control or line-break character';
  if (/\p{Surrogate}/u.test(text.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) return 'has an unpaired surrogate';
  // sqlcmd substitutes $(Name) wherever it finds one; whether it does inside a :setvar value is
  // not documented, so a value holding one could silently become another value.
  if (text.includes('$(')) return `contains "$(", which sqlcmd may read as a variable`;
  return undefined;
}

/** The :setvar line of one value (the line's own text is secret). */
export function setvarLine(name: string, value: string): string {
  return `:setvar ${name} "${value.replace(/'/g, "''").replace(/"/g, '""')}"`;
}

export function sqlcmdVariablesFile(secrets: ScriptSecrets): Buffer {
  const slots = Object.keys(SQLCMD_VARIABLES) as ScriptSecretSlot[];
  const lines = slots.map((slot) => {
    const text = secrets[slot].reveal();
    const problem = refusal(text);
    if (problem)
      throw refuse(
        'CellcryptUsage',
        `${SLOT_NAMES[slot]} ${problem}: it cannot be written as a sqlcmd variable; nothing was written`,
        slot === 'masterKeyPassword'
          ? 'choose another master-key password'
          : 'run the operation with cellcrypt itself (`cellcrypt install`, `change-key --key-file F`, `activate`), ' +
              'which sends the key without sqlcmd',
      );
    return setvarLine(SQLCMD_VARIABLES[slot], text);
  });
  const text = `${lines.join('\r\n')}\r\n`;
  return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
}
