/**
 * `nvarchar` values are encrypted as their UTF-16LE bytes; the same bytes must come back out or
 * SQL Server's CONVERT(nvarchar, DECRYPTBYKEY(...)) would show a different string.
 */

export function nvarcharBytes(text: string): Buffer {
  return Buffer.from(text, 'utf16le');
}

// With the u flag a well-formed pair is one code point, so this only matches lone surrogates.
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * The text of decrypted nvarchar bytes, or null when they cannot be nvarchar: an odd byte count
 * (a varchar cell, or a wrong key that passed every check) or a lone surrogate.
 */
export function nvarcharText(bytes: Buffer): string | null {
  if (bytes.length % 2 !== 0) return null;
  const text = bytes.toString('utf16le');
  return LONE_SURROGATE.test(text) ? null : text;
}
