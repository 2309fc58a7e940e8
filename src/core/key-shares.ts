import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { combine, split } from 'shamir-secret-sharing';
import { CellcryptError, refuse } from '../common/errors';
import { Secret } from '../common/secret';
import { keyGuidFor } from '../cellcrypt/key-identity';
import { readFileUpTo } from './key-file';

/**
 * Split knowledge: `show-key --shares K-of-N --out-dir D` splits the key into N shares with
 * Shamir's scheme over GF(256) (the audited `shamir-secret-sharing` library; nothing of the
 * scheme is written here), so that any K custodians together can rebuild it and fewer learn
 * nothing about it. `activate --key-share F ...` rebuilds it. One share file, ASCII, LF:
 *
 *   cellcrypt key share (format 1): share 2 of 3; any 2 shares of this split rebuild the key
 *   organization: <org id>
 *   key-guid: <GUID of the key>
 *   split: <16 hex digits, random per show-key run>
 *   share: 2
 *   threshold: 2
 *   shares: 3
 *   data: <base64 of the share bytes>
 *   sha256: <hex SHA-256 of every line above, each ended by LF>
 *
 * The checksum covers the header too and is taken over LF-ended lines, so a mail client that
 * turns LF into CRLF does not make a good share look damaged. The secret that is split is the
 * key's UTF-8 bytes behind a 2-byte length and padded with zeros to 320 bytes (every key the
 * Dynamics rule allows fits), so the length of a share does not tell its custodian the
 * length of the key. The split id tells shares of two runs apart: mixing them would rebuild
 * garbage, and they are refused by name instead.
 */

export const SHARE_FORMAT = 'cellcrypt key share (format 1)';
export const MAX_SHARES = 255;
export const MAX_SHARE_FILE_BYTES = 16 * 1024;
/** 2 + 300 (100 UTF-16 units, 3 UTF-8 bytes each at most) fits; rounded up. */
const PADDED_SECRET_BYTES = 320;

export interface ShareSpec {
  threshold: number;
  total: number;
}

export interface KeyShare {
  /** The file it was read from (refusals name it); undefined for one not read from a file. */
  file?: string;
  organization: string;
  keyGuid: string;
  split: string;
  number: number;
  threshold: number;
  total: number;
  data: Buffer;
}

const SHARE_HINT = 'use the share files `cellcrypt show-key --shares K-of-N --out-dir D` wrote, unchanged';
const FIELDS = ['organization', 'key-guid', 'split', 'share', 'threshold', 'shares', 'data'] as const;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function invalid(message: string, hint = SHARE_HINT): CellcryptError {
  return new CellcryptError('CellcryptKeyFileInvalid', message, { exitCode: 2, hint });
}

function named(share: Pick<KeyShare, 'file' | 'number' | 'total'>): string {
  return share.file ?? `share ${share.number} of ${share.total}`;
}

/** `2-of-3` -> { threshold: 2, total: 3 }; refuses what cannot be a split (exit 2). */
export function parseShareSpec(text: string): ShareSpec {
  const match = /^\s*(\d{1,4})\s*-?of-?\s*(\d{1,4})\s*$/i.exec(text);
  const usage = (problem: string) =>
    refuse(
      'CellcryptUsage',
      `--shares ${text}: ${problem}`,
      'e.g. `--shares 2-of-3`: any 2 of 3 shares rebuild the key',
    );
  if (!match) throw usage('expected K-of-N');
  const threshold = Number(match[1]);
  const total = Number(match[2]);
  // One share would be the key itself; more than 255 cannot have distinct points in GF(256).
  if (threshold < 2) throw usage('K must be at least 2 (one share alone would be the whole key)');
  if (threshold > total) throw usage(`K (${threshold}) cannot be more than N (${total})`);
  if (total > MAX_SHARES) throw usage(`N can be at most ${MAX_SHARES}`);
  return { threshold, total };
}

function checksumOf(lines: readonly string[]): string {
  return createHash('sha256')
    .update(lines.map((line) => `${line}\n`).join(''), 'utf8')
    .digest('hex');
}

function pad(passphrase: Secret): Uint8Array {
  const bytes = Buffer.from(passphrase.reveal(), 'utf8');
  if (bytes.length === 0 || bytes.length > 0xffff)
    throw refuse('CellcryptUsage', 'the key cannot be split: it is empty or longer than 65535 bytes');
  const size = Math.max(PADDED_SECRET_BYTES, Math.ceil((bytes.length + 2) / 64) * 64);
  // A plain Uint8Array, not a Buffer: the library checks the constructor.
  const secret = new Uint8Array(size);
  secret[0] = bytes.length >> 8;
  secret[1] = bytes.length & 0xff;
  secret.set(bytes, 2);
  bytes.fill(0);
  return secret;
}

function unpad(secret: Uint8Array): string | undefined {
  const length = secret.length >= 2 ? (secret[0] << 8) | secret[1] : 0;
  if (length === 0 || length > secret.length - 2) return undefined;
  if (secret.subarray(2 + length).some((byte) => byte !== 0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(secret.subarray(2, 2 + length));
  } catch {
    return undefined;
  }
}

export function formatShare(share: KeyShare): string {
  const lines = [
    `${SHARE_FORMAT}: share ${share.number} of ${share.total}; ` +
      `any ${share.threshold} shares of this split rebuild the key`,
    `organization: ${share.organization}`,
    `key-guid: ${share.keyGuid}`,
    `split: ${share.split}`,
    `share: ${share.number}`,
    `threshold: ${share.threshold}`,
    `shares: ${share.total}`,
    `data: ${share.data.toString('base64')}`,
  ];
  return `${lines.join('\n')}\nsha256: ${checksumOf(lines)}\n`;
}

/** Splits the key into `spec.total` shares of which any `spec.threshold` rebuild it. */
export async function splitKey(passphrase: Secret, organization: string, spec: ShareSpec): Promise<KeyShare[]> {
  const { threshold, total } = parseShareSpec(`${spec.threshold}-of-${spec.total}`);
  const secret = pad(passphrase);
  try {
    const parts = await split(secret, total, threshold);
    const keyGuid = keyGuidFor(passphrase);
    const splitId = randomBytes(8).toString('hex');
    return parts.map((data, i) => ({
      organization,
      keyGuid,
      split: splitId,
      number: i + 1,
      threshold,
      total,
      data: Buffer.from(data),
    }));
  } finally {
    secret.fill(0);
  }
}

function wholeNumber(value: string, field: string, file: string, min: number, max: number): number {
  if (!/^\d{1,3}$/.test(value) || Number(value) < min || Number(value) > max)
    throw invalid(`${file}: "${field}" is not a whole number from ${min} to ${max}`);
  return Number(value);
}

/** Parses one share file; every refusal starts with `file` (exit 2, CellcryptKeyFileInvalid). */
export function parseShare(bytes: Buffer, file: string): KeyShare {
  if (bytes.length === 0) throw invalid(`${file} is empty: not a cellcrypt key share`);
  if (bytes.length > MAX_SHARE_FILE_BYTES)
    throw invalid(`${file} is larger than ${MAX_SHARE_FILE_BYTES} bytes: not a cellcrypt key share`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw invalid(`${file} is not text: not a cellcrypt key share, or damaged`);
  }
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  const last = /^sha256: ?([0-9a-f]{64})$/i.exec(lines[lines.length - 1] ?? '');
  const body = lines.slice(0, -1);
  if (!last) {
    if (!lines[0]?.startsWith(SHARE_FORMAT)) throw invalid(`${file} is not a cellcrypt key share`);
    throw invalid(`${file} has no sha256: line at its end: the share is truncated or damaged`);
  }
  // Before anything is read from it: a damaged header or share number must not be believed.
  if (checksumOf(body) !== last[1].toLowerCase())
    throw invalid(`${file} is damaged: its content does not match its sha256: line`);
  if (!body[0]?.startsWith(SHARE_FORMAT))
    throw invalid(`${file} is not a cellcrypt key share of a format this cellcrypt reads`);
  const values = new Map<string, string>();
  for (const line of body.slice(1)) {
    const match = /^([a-z-]+): (.*)$/.exec(line);
    if (!match || !(FIELDS as readonly string[]).includes(match[1]) || values.has(match[1]))
      throw invalid(`${file}: unexpected line "${line.slice(0, 40)}"`);
    values.set(match[1], match[2].trim());
  }
  const missing = FIELDS.filter((field) => !values.has(field));
  if (missing.length) throw invalid(`${file}: missing ${missing.join(', ')}`);
  const get = (field: (typeof FIELDS)[number]) => values.get(field)!;
  if (!UUID.test(get('organization'))) throw invalid(`${file}: the organization is not an id`);
  if (!UUID.test(get('key-guid'))) throw invalid(`${file}: the key-guid is not a GUID`);
  if (!/^[0-9a-f]{16}$/.test(get('split'))) throw invalid(`${file}: the split is not 16 hexadecimal digits`);
  const total = wholeNumber(get('shares'), 'shares', file, 2, MAX_SHARES);
  const threshold = wholeNumber(get('threshold'), 'threshold', file, 2, total);
  const number = wholeNumber(get('share'), 'share', file, 1, total);
  if (!BASE64.test(get('data'))) throw invalid(`${file}: the data is not base64`);
  const data = Buffer.from(get('data'), 'base64');
  if (data.length < 2) throw invalid(`${file}: the data is too short to be a share`);
  return {
    file,
    organization: get('organization').toLowerCase(),
    keyGuid: get('key-guid').toUpperCase(),
    split: get('split'),
    number,
    threshold,
    total,
    data,
  };
}

/** Reads and parses a share file (at most MAX_SHARE_FILE_BYTES + 1 bytes are read). */
export async function readShareFile(path: string): Promise<KeyShare> {
  let bytes: Buffer;
  try {
    bytes = await readFileUpTo(path, MAX_SHARE_FILE_BYTES);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CellcryptError('CellcryptKeyFileInvalid', `cannot read key share ${path}: ${reason}`, {
      exitCode: 2,
      hint: 'check the path and its permissions',
      cause: error,
    });
  }
  return parseShare(bytes, path);
}

/**
 * The key the shares rebuild, after every check that can name a file: all of one split of one
 * key of one organization (`organization`: the database's id, when it has one), no share twice,
 * at least K of them, and the rebuilt key has the GUID the shares name.
 */
export async function rebuildKey(shares: readonly KeyShare[], organization: string | undefined): Promise<Secret> {
  if (shares.length === 0) throw refuse('CellcryptUsage', 'no key share given', 'give --key-share F once per share');
  const [first] = shares;
  for (const share of shares.slice(1)) {
    const differs =
      share.organization !== first.organization
        ? `${named(share)} is a share of organization ${share.organization}, ` +
          `${named(first)} of organization ${first.organization}`
        : share.keyGuid !== first.keyGuid
          ? `${named(share)} is a share of key ${share.keyGuid}, ${named(first)} of key ${first.keyGuid}`
          : share.split !== first.split ||
              share.threshold !== first.threshold ||
              share.total !== first.total ||
              share.data.length !== first.data.length
            ? `${named(share)} and ${named(first)} come from two different splits of key ${first.keyGuid} ` +
              '(two show-key --shares runs)'
            : undefined;
    if (differs)
      throw invalid(
        `${differs}: shares of different keys or splits do not combine`,
        'give shares one `show-key --shares` run wrote',
      );
  }
  const seen = new Map<number, KeyShare>();
  for (const share of shares) {
    const twin = seen.get(share.number);
    if (twin)
      throw invalid(
        `${named(share)} and ${named(twin)} are both share ${share.number} of ${share.total}: a copy counts once`,
        `give ${first.threshold} different shares`,
      );
    seen.set(share.number, share);
  }
  if (organization !== undefined && first.organization !== organization.toLowerCase())
    throw invalid(
      `${named(first)} is a share of organization ${first.organization}; this database is organization ${organization}`,
      "give the shares of this organization's key",
    );
  if (shares.length < first.threshold) {
    const more = first.threshold - shares.length;
    throw refuse(
      'CellcryptKeyFileInvalid',
      `${shares.length} of the ${first.threshold} key shares needed were given: ${more} more needed`,
      `add ${more} more --key-share F of the same split (any ${first.threshold} of its ${first.total} shares)`,
    );
  }
  let secret: Uint8Array;
  try {
    secret = await combine(shares.map((share) => new Uint8Array(share.data)));
  } catch (error) {
    throw invalid(`the key shares do not combine: ${(error as Error).message}`);
  }
  const text = unpad(secret);
  secret.fill(0);
  const passphrase = text === undefined ? undefined : new Secret(text);
  if (!passphrase || keyGuidFor(passphrase) !== first.keyGuid)
    throw invalid(
      `the key shares (${shares.map(named).join(', ')}) do not rebuild key ${first.keyGuid}: ` +
        'one of them was altered (its checksum recomputed) or made for another key',
    );
  return passphrase;
}

/** The file name of a share: the key GUID's first group tells sets apart in one directory. */
export function shareFileName(share: KeyShare): string {
  return `cellcrypt-key-${share.keyGuid.slice(0, 8).toLowerCase()}-share-${share.number}-of-${share.total}.txt`;
}

/**
 * Writes each share to its own new file in `dir` (created 0700 when missing): mode 0600, never
 * over an existing file. A failure removes the files this call wrote, so no partial set is left.
 */
export function writeShareFiles(dir: string, shares: readonly KeyShare[]): string[] {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw refuse('CellcryptUsage', `cannot create ${dir}: ${(error as Error).message}`, undefined, error);
  }
  const written: string[] = [];
  try {
    for (const share of shares) {
      const path = join(dir, shareFileName(share));
      writeFileSync(path, formatShare(share), { mode: 0o600, flag: 'wx' });
      written.push(path);
    }
  } catch (error) {
    for (const path of written) rmSync(path, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw refuse(
        'CellcryptUsage',
        `${dir} already holds share files of key ${shares[0].keyGuid} with ${shares.length} shares; ` +
          'they may be the only copies of another split, so nothing is overwritten',
        'choose another --out-dir',
      );
    throw refuse('CellcryptUsage', `cannot write the shares to ${dir}: ${(error as Error).message}`, undefined, error);
  }
  return written;
}
