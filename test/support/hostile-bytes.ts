import fc from 'fast-check';

const BOMS = [
  [0xef, 0xbb, 0xbf],
  [0xff, 0xfe],
  [0xfe, 0xff],
  [0x00, 0x00, 0xfe, 0xff],
  [0xff, 0xfe, 0x00, 0x00],
];
const PIECES = [
  "'",
  ']',
  '?',
  ';',
  '--',
  '\u0000',
  '\r\n',
  '\n',
  'sha256:',
  'base64:',
  'postgres://',
  'pglite:',
  'mssql://',
  '😀',
  '\uD800',
  'e\u0301',
  'שלום',
  '%',
  '@',
  ':',
];

/**
 * Inputs that hit the edges of our parsers: BOMs, fragments of our formats, invalid UTF-8 and
 * UTF-16, sizes at the limits.
 */
export function hostileBytes(): fc.Arbitrary<Uint8Array> {
  const piece = fc.oneof(
    fc.constantFrom(...PIECES).map((p) => Buffer.from(p, 'utf8')),
    fc.constantFrom(...PIECES).map((p) => Buffer.from(p, 'utf16le')),
    fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b)),
    fc.string({ maxLength: 20, unit: 'grapheme' }).map((s) => Buffer.from(s, 'utf8')),
  );
  return fc.oneof(
    fc
      .tuple(fc.option(fc.constantFrom(...BOMS), { nil: undefined }), fc.array(piece, { maxLength: 12 }))
      .map(([bom, parts]) => new Uint8Array(Buffer.concat([Buffer.from(bom ?? []), ...parts]))),
    fc.uint8Array({ maxLength: 200 }),
    fc.constantFrom(64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1).map((n) => new Uint8Array(Buffer.alloc(n, 0x41))),
  );
}
