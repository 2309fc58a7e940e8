import { randomInt } from 'node:crypto';
import { Secret } from '../common/secret';
import { CellcryptError } from '../common/errors';

/**
 * The passphrase an administrator sees as "the encryption key" (reference/dynamics-data-encryption.md):
 * typed ones must pass the Dynamics strength rule, generated ones are random Unicode.
 */

export const PASSPHRASE_MIN_LENGTH = 10;
export const PASSPHRASE_MAX_LENGTH = 100;

interface Rule {
  failed: (text: string) => boolean;
  message: string;
}

// Lengths count UTF-16 code units, like .NET's String.Length that Dynamics checks against.
const RULES: Rule[] = [
  {
    failed: (t) => t.length < PASSPHRASE_MIN_LENGTH || t.length > PASSPHRASE_MAX_LENGTH,
    message: `must be ${PASSPHRASE_MIN_LENGTH} to ${PASSPHRASE_MAX_LENGTH} characters long (UTF-16 code units)`,
  },
  { failed: (t) => !/\p{N}/u.test(t), message: 'must contain at least one numeral' },
  { failed: (t) => !/\p{L}/u.test(t), message: 'must contain at least one letter' },
  { failed: (t) => !/[\p{P}\p{S}]/u.test(t), message: 'must contain at least one symbol or punctuation character' },
  // The next rules protect the key file: these characters are lost or changed by editors, by
  // line-based parsing and by UTF-8, and a key that cannot be saved cannot be restored.
  {
    failed: (t) => /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(t),
    message: 'must not contain control, formatting or line-break characters',
  },
  { failed: (t) => /\p{Surrogate}/u.test(t), message: 'must not contain unpaired UTF-16 surrogates' },
  { failed: (t) => /^\s|\s$/u.test(t), message: 'must not start or end with whitespace' },
];

/** Throws SqlEncryptionEncryptionKeyValidationError naming every rule the passphrase breaks. */
export function validatePassphrase(passphrase: Secret): void {
  const text = passphrase.reveal();
  const failures = RULES.filter((rule) => rule.failed(text)).map((rule) => rule.message);
  if (failures.length === 0) return;
  throw new CellcryptError('SqlEncryptionEncryptionKeyValidationError', `the encryption key ${failures.join('; ')}`, {
    exitCode: 2,
    hint: 'choose another key, or let cellcrypt generate one with `cellcrypt change-key --generate`',
  });
}

const GENERATED_CODE_POINTS = 40;

function range(first: number, last: number, except: number[] = []): number[] {
  const out: number[] = [];
  for (let cp = first; cp <= last; cp++) if (!except.includes(cp)) out.push(cp);
  return out;
}

/**
 * Character pools, each drawn with equal probability (then a character within the pool), so
 * the large CJK block does not crowd out the others. Every character is a letter, a digit or
 * an ASCII symbol: no combining marks, whitespace or controls that an editor could alter.
 * Weakest case per character: a digit, 1/8 x 1/10, i.e. over 6 bits; 40 characters > 250 bits.
 */
const POOLS: readonly number[][] = [
  range(0x41, 0x5a).concat(range(0x61, 0x7a)), // Latin
  range(0xc0, 0xff, [0xd7, 0xf7]), // Latin-1 letters (without x and division signs)
  range(0x391, 0x3a9, [0x3a2]).concat(range(0x3b1, 0x3c9)), // Greek
  range(0x410, 0x44f), // Cyrillic
  range(0x4e00, 0x9fa5), // CJK Unified Ideographs (the original, fully assigned block)
  range(0x30, 0x39), // digits
  range(0x21, 0x7e).filter((cp) => !/[\p{L}\p{N}]/u.test(String.fromCodePoint(cp))), // ASCII symbols
  range(0x1d400, 0x1d433), // Mathematical Bold letters: outside the BMP, stored as surrogate pairs
];

function randomCharacter(): string {
  const pool = POOLS[randomInt(POOLS.length)];
  return String.fromCodePoint(pool[randomInt(pool.length)]);
}

const NON_BMP = /[\u{10000}-\u{10FFFF}]/u;

/**
 * The Dynamics default key: random Unicode. Drawn until it passes the rule and holds at least one
 * surrogate pair (rejection keeps the draw uniform over acceptable keys; about 1 in 100 draws
 * is rejected), so every generated key exercises the UTF-16 paths end to end.
 */
export function generatePassphrase(): Secret {
  for (;;) {
    let text = '';
    for (let i = 0; i < GENERATED_CODE_POINTS; i++) text += randomCharacter();
    const candidate = new Secret(text);
    if (!NON_BMP.test(text)) continue;
    try {
      validatePassphrase(candidate);
      return candidate;
    } catch {
      // missing digit, letter or symbol: draw again
    }
  }
}
