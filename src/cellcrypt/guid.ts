import { CellcryptError } from '../common/errors';

/**
 * SQL Server stores a uniqueidentifier in .NET `Guid.ToByteArray()` order: the first three
 * groups little-endian, the last eight bytes as written. Key GUIDs in blobs and the 16-byte
 * authenticator of a uniqueidentifier primary key both use this order.
 */

const GUID_PATTERN = /^\{?([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})\}?$/i;

function reversedHex(hex: string): string {
  return Buffer.from(hex, 'hex').reverse().toString('hex');
}

export function guidStringToBytes(guid: string): Buffer {
  const match = GUID_PATTERN.exec(guid.trim());
  // An opening brace without a closing one (or the reverse) is a typo, not a GUID.
  if (!match || guid.trim().startsWith('{') !== guid.trim().endsWith('}')) {
    throw new CellcryptError(
      'CellcryptUsage',
      `'${guid}' is not a GUID: expected 8-4-4-4-12 hexadecimal digits, e.g. 01DE2200-EF6C-3C1A-0F3A-889881EF77E7`,
      { exitCode: 2 },
    );
  }
  const [, a, b, c, d, e] = match;
  return Buffer.from(reversedHex(a) + reversedHex(b) + reversedHex(c) + d + e, 'hex');
}

export function guidBytesToString(bytes: Buffer): string {
  if (bytes.length !== 16) {
    throw new CellcryptError('CellcryptUsage', `a GUID is 16 bytes, got ${bytes.length}`, { exitCode: 2 });
  }
  const hex = (from: number, to: number, reverse: boolean): string => {
    const part = Buffer.from(bytes.subarray(from, to));
    return (reverse ? part.reverse() : part).toString('hex');
  };
  return [hex(0, 4, true), hex(4, 6, true), hex(6, 8, true), hex(8, 10, false), hex(10, 16, false)]
    .join('-')
    .toUpperCase();
}
