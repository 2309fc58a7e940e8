/**
 * `varchar` values are encrypted as code-page bytes. SQL Server's Latin1_General collations use
 * code page 1252: ISO-8859-1 except 0x80..0x9F (0x80 is the euro sign). Node 20's
 * TextDecoder('windows-1252') decodes that range as ISO-8859-1, hence the table; undefined
 * positions keep their C1 code point, as Windows does.
 */
const CP1252_80_TO_9F = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

/** The text of decrypted varchar bytes under code page 1252. */
export function varcharText(bytes: Buffer): string {
  let text = '';
  for (const byte of bytes)
    text += String.fromCharCode(byte >= 0x80 && byte <= 0x9f ? CP1252_80_TO_9F[byte - 0x80] : byte);
  return text;
}
