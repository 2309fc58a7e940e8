/**
 * Benchmark (not a test) of the cell codec against the cheapest possible AES-256-CBC in
 * node:crypto: one createCipheriv/createDecipheriv + update + final per cell over the same data.
 * That floor is what any per-cell encryption must pay; the codec adds the header, SHA-1
 * integrity, a random IV and parsing. The goal (issue): within 2x of the floor for 500-byte cells.
 *
 *   npx tsx scripts/bench-codec.ts [--seconds N]     (N = seconds per side and operation, default 1)
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { decryptByKey, encryptByKey, type CellKey } from '../src/cellcrypt';

const CELLS_PER_SET = 1024;
const SIZES = [100, 500];

function secondsOption(): number {
  const at = process.argv.indexOf('--seconds');
  const value = at === -1 ? 1 : Number(process.argv[at + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error('--seconds needs a positive number');
  return value;
}

/** Cells per second of `work(i)` run for about `seconds`, checking the clock every 256 cells. */
function measure(seconds: number, work: (index: number) => unknown): number {
  const budget = BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let cells = 0;
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 256; i++) work(cells++ % CELLS_PER_SET);
    elapsed = process.hrtime.bigint() - start;
  }
  return cells / (Number(elapsed) / 1e9);
}

interface Row {
  size: number;
  operation: string;
  floor: number;
  codec: number;
}

function benchSize(size: number, seconds: number, warmup: number): Row[] {
  const key: CellKey = { keyGuid: randomBytes(16), key: randomBytes(32) };
  const plaintexts = Array.from({ length: CELLS_PER_SET }, () => randomBytes(size));
  const authenticators = Array.from({ length: CELLS_PER_SET }, () => randomBytes(16));
  const ivs = Array.from({ length: CELLS_PER_SET }, () => randomBytes(16));

  const floorEncrypt = (i: number): Buffer => {
    const cipher = createCipheriv('aes-256-cbc', key.key, ivs[i]);
    return Buffer.concat([cipher.update(plaintexts[i]), cipher.final()]);
  };
  const floorCiphertexts = plaintexts.map((_, i) => floorEncrypt(i));
  const floorDecrypt = (i: number): Buffer => {
    const decipher = createDecipheriv('aes-256-cbc', key.key, ivs[i]);
    return Buffer.concat([decipher.update(floorCiphertexts[i]), decipher.final()]);
  };
  const codecEncrypt = (i: number): Buffer => encryptByKey(key, plaintexts[i], { authenticator: authenticators[i] });
  const blobs = plaintexts.map((_, i) => codecEncrypt(i));
  const codecDecrypt = (i: number): Buffer | null => decryptByKey(blobs[i], key, authenticators[i]);
  if (blobs.some((blob, i) => !decryptByKey(blob, key, authenticators[i])?.equals(plaintexts[i]))) {
    throw new Error('codec round trip failed: the benchmark would measure nonsense');
  }

  for (const work of [floorEncrypt, codecEncrypt, floorDecrypt, codecDecrypt]) measure(warmup, work);
  return [
    { size, operation: 'encrypt', ...compare(seconds, floorEncrypt, codecEncrypt) },
    { size, operation: 'decrypt', ...compare(seconds, floorDecrypt, codecDecrypt) },
  ];
}

const ROUNDS = 5;

/**
 * Floor and codec alternate in short rounds and each keeps its median, so a burst of load or a
 * garbage collection on a shared machine hits both sides instead of skewing the ratio.
 */
type Work = (index: number) => unknown;

function compare(seconds: number, floor: Work, codec: Work): { floor: number; codec: number } {
  const floorRates: number[] = [];
  const codecRates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    floorRates.push(measure(seconds / ROUNDS, floor));
    codecRates.push(measure(seconds / ROUNDS, codec));
  }
  const median = (rates: number[]): number => rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)];
  return { floor: median(floorRates), codec: median(codecRates) };
}

function printTable(rows: Row[]): void {
  const megabytes = (cellsPerSecond: number, size: number): string => ((cellsPerSecond * size) / 1e6).toFixed(1);
  const header = [
    'bytes',
    'operation',
    'floor cells/s',
    'codec cells/s',
    'floor MB/s',
    'codec MB/s',
    'codec/floor time',
  ];
  const lines = rows.map((row) => [
    String(row.size),
    row.operation,
    Math.round(row.floor).toLocaleString('en-US'),
    Math.round(row.codec).toLocaleString('en-US'),
    megabytes(row.floor, row.size),
    megabytes(row.codec, row.size),
    `${(row.floor / row.codec).toFixed(2)}x`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells: string[]): string => cells.map((cell, column) => cell.padStart(widths[column])).join('  ');
  console.log(format(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const line of lines) console.log(format(line));
}

const seconds = secondsOption();
console.log('codec = encryptByKey/decryptByKey with a 16-byte authenticator; floor = raw aes-256-cbc');
console.log(`${seconds}s per side and operation, in ${ROUNDS} alternating rounds (medians)\n`);
printTable(SIZES.flatMap((size) => benchSize(size, seconds, Math.min(seconds, 0.5))));
console.log(
  '\ncodec/floor time: how many times longer a codec cell takes than the raw cipher (goal <= 2x at 500 bytes)',
);
