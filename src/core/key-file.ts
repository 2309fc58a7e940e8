import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Secret } from '../common/secret';
import { CellcryptError } from '../common/errors';

/**
 * The file an administrator keeps the passphrase in (written by `show-key --out`, read by
 * `activate` and `decrypt-offline`). Dynamics warns that a random-Unicode key saved as ANSI is
 * destroyed, so the file is always Unicode and carries a checksum that catches re-encoding:
 *   <passphrase>\n
 *   sha256:<hex SHA-256 of the passphrase's UTF-8 bytes>\n
 * `base64` replaces the first line by `base64:<base64 of the UTF-8 bytes>` for channels that
 * only carry ASCII. Hand-written files may omit the checksum line.
 */

export type KeyFileEncoding = 'utf8' | 'utf16le' | 'base64';
export type DetectedKeyFileEncoding = 'utf8' | 'utf8-bom' | 'utf16le-bom' | 'utf16be-bom' | 'base64';

export interface ParsedKeyFile {
  passphrase: Secret;
  encoding: DetectedKeyFileEncoding;
  checksum: 'verified' | 'absent';
  /**
   * Spaces at the start or end of the key, described (`ends with 1 space (U+0020)`), when no
   * checksum line proves them part of the key: an editor or a copy from a terminal adds them,
   * and a key that differs by one space has another GUID, which said nothing about whitespace.
   */
  edgeWhitespace?: string;
}

export const MAX_KEY_FILE_BYTES = 64 * 1024;
const BASE64_PREFIX = 'base64:';
const CHECKSUM_LINE = /^sha256:([0-9a-fA-F]{64})$/;
const BASE64_TEXT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const EXPORT_AGAIN = 'export it again with `cellcrypt show-key --out F` (it writes UTF-8 with a BOM and a checksum)';

function invalid(message: string, cause?: unknown, hint = EXPORT_AGAIN): CellcryptError {
  return new CellcryptError('CellcryptKeyFileInvalid', message, { exitCode: 2, hint, cause });
}

function checksumOf(passphrase: string): string {
  return createHash('sha256').update(passphrase, 'utf8').digest('hex');
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch (error) {
    throw invalid(`${what} is not valid UTF-8 (saved as ANSI or another code page?)`, error);
  }
}

export function formatKeyFile(passphrase: Secret, encoding: KeyFileEncoding): Buffer {
  const text = passphrase.reveal();
  // Exactly what parseKeyFile refuses, so a written file can always be read back.
  if (text.length === 0 || /[\p{Surrogate}\p{Cc}]/u.test(text)) {
    const message =
      'the key cannot be written to a key file: it is empty or has control characters or an unpaired surrogate';
    throw invalid(message, undefined, 'change to a key that passes the key rule with `cellcrypt change-key`');
  }
  const checksumLine = `sha256:${checksumOf(text)}\n`;
  if (encoding === 'base64') {
    return Buffer.from(`${BASE64_PREFIX}${Buffer.from(text, 'utf8').toString('base64')}\n${checksumLine}`, 'utf8');
  }
  // Read back, such a first line would be taken for the base64 form.
  if (text.startsWith(BASE64_PREFIX)) {
    const message = `a key that starts with "${BASE64_PREFIX}" can only be written with --encoding base64`;
    throw invalid(message, undefined, 'run `cellcrypt show-key --out F --encoding base64`');
  }
  const body = `${text}\n${checksumLine}`;
  return encoding === 'utf8'
    ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body, 'utf8')])
    : Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(body, 'utf16le')]);
}

function decodeText(bytes: Buffer): { text: string; encoding: DetectedKeyFileEncoding } {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    return { text: decodeUtf8(bytes.subarray(3), 'the key file'), encoding: 'utf8-bom' };
  }
  const littleEndian = bytes[0] === 0xff && bytes[1] === 0xfe;
  if (littleEndian || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    const units = Buffer.from(bytes.subarray(2));
    if (units.length % 2 !== 0)
      throw invalid('the UTF-16 key file has an odd number of bytes (truncated or not UTF-16)');
    const text = (littleEndian ? units : units.swap16()).toString('utf16le');
    if (/\p{Surrogate}/u.test(text)) throw invalid('the UTF-16 key file contains an unpaired surrogate');
    return { text, encoding: littleEndian ? 'utf16le-bom' : 'utf16be-bom' };
  }
  return { text: decodeUtf8(bytes, 'the key file'), encoding: 'utf8' };
}

/**
 * Splits into lines, allowing CRLF and blank lines at the end (an editor adds them); anything
 * past line 2 is refused.
 */
function splitLines(text: string): [string, string | undefined] {
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  while (lines.length > 1 && /^\p{Zs}*$/u.test(lines[lines.length - 1])) lines.pop();
  if (lines.length > 2) {
    throw invalid(`the key file has ${lines.length} lines; expected the key and an optional sha256: line`);
  }
  return [lines[0], lines[1]];
}

export function parseKeyFile(bytes: Buffer): ParsedKeyFile {
  if (bytes.length === 0) throw invalid('the key file is empty');
  if (bytes.length > MAX_KEY_FILE_BYTES)
    throw invalid(`the key file is larger than ${MAX_KEY_FILE_BYTES} bytes: not a key file`);
  const decoded = decodeText(bytes);
  const [firstLine, secondLine] = splitLines(decoded.text);
  let passphrase = firstLine;
  let encoding = decoded.encoding;
  if (firstLine.startsWith(BASE64_PREFIX)) {
    const payload = firstLine.slice(BASE64_PREFIX.length).trim();
    if (payload === '' || !BASE64_TEXT.test(payload)) throw invalid('the base64: line is not valid base64');
    passphrase = decodeUtf8(Buffer.from(payload, 'base64'), 'the base64-decoded key');
    encoding = 'base64';
  }
  if (passphrase === '') throw invalid('the key file has no key on its first line');
  // NUL and other controls are never part of a key; they mean UTF-16 read as UTF-8 (no BOM).
  if (/\p{Cc}/u.test(passphrase)) {
    throw invalid(
      'the key contains control characters: the file is damaged or in the wrong encoding (UTF-16 without a BOM?)',
    );
  }
  const edgeWhitespace = describeEdgeWhitespace(passphrase);
  if (secondLine === undefined) {
    return {
      passphrase: new Secret(passphrase),
      encoding,
      checksum: 'absent',
      ...(edgeWhitespace && { edgeWhitespace }),
    };
  }
  const match = CHECKSUM_LINE.exec(secondLine.trim());
  if (!match) throw invalid('the second line of the key file is not "sha256:" followed by 64 hexadecimal digits');
  const expected = match[1].toLowerCase();
  if (expected !== checksumOf(passphrase)) {
    if (edgeWhitespace && expected === checksumOf(passphrase.replace(/^\p{Zs}+|\p{Zs}+$/gu, ''))) {
      throw invalid(
        `the key line ${edgeWhitespace} that is not part of the key (the checksum matches the key without it)`,
        undefined,
        'remove the whitespace from the first line of the key file and run the command again',
      );
    }
    throw invalid(
      'the key does not match the checksum in the key file: the ' +
        'file was changed or saved in the wrong encoding (e.g. ANSI)',
    );
  }
  return { passphrase: new Secret(passphrase), encoding, checksum: 'verified' };
}

/** `starts with 1 space (U+0020)`, `ends with 2 spaces (U+0020, U+00A0)`, or undefined. */
export function describeEdgeWhitespace(key: string): string | undefined {
  const describe = (run: string): string => {
    const chars = [...run];
    const codes = [...new Set(chars.map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`))];
    return `${chars.length} space${chars.length === 1 ? '' : 's'} (${codes.join(', ')})`;
  };
  const leading = /^\p{Zs}+/u.exec(key)?.[0];
  const trailing = /\p{Zs}+$/u.exec(key)?.[0];
  const parts = [
    ...(leading ? [`starts with ${describe(leading)}`] : []),
    ...(trailing && trailing !== key ? [`ends with ${describe(trailing)}`] : []),
  ];
  return parts.length ? parts.join(' and ') : undefined;
}

async function readLimited(path: string, stdin: NodeJS.ReadableStream): Promise<Buffer> {
  if (path === '-') {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stdin) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk);
      chunks.push(buffer);
      total += buffer.length;
      if (total > MAX_KEY_FILE_BYTES) break; // parseKeyFile refuses it; no need to read the rest
    }
    return Buffer.concat(chunks);
  }
  return readFileUpTo(path, MAX_KEY_FILE_BYTES);
}

/**
 * At most `limit + 1` bytes of a file: one byte past the limit is enough for the parser to
 * refuse a file too large, and a huge or endless file (a device) is never read whole.
 */
export async function readFileUpTo(path: string, limit: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(limit + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/** Reads and parses a key file; `-` reads standard input. */
export async function readKeyFile(path: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<ParsedKeyFile> {
  let bytes: Buffer;
  try {
    bytes = await readLimited(path, stdin);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const source = path === '-' ? 'from stdin' : `'${path}'`;
    throw new CellcryptError('CellcryptKeyFileInvalid', `cannot read key file ${source}: ${reason}`, {
      exitCode: 2,
      hint: 'check the path and its permissions, or pass the key on stdin with --key-file -',
      cause: error,
    });
  }
  return parseKeyFile(bytes);
}
