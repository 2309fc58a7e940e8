import {
  cpSync,
  type Dirent,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

/**
 * An empty PGlite cluster, made once per machine and PGlite version and copied into every test
 * database. Creating a cluster runs initdb inside the WASM runtime (3-7 s on this machine);
 * opening a copied one takes under a second, and a test never needs initdb's own behaviour:
 * cellcrypt's schema, functions and pgcrypto are still created by `prepare()` in every test.
 */
// The package exports no package.json: read it beside the entry point.
const PGLITE_VERSION: string = JSON.parse(
  readFileSync(join(dirname(require.resolve('@electric-sql/pglite')), '..', 'package.json'), 'utf8'),
).version;
const TEMPLATE = join(tmpdir(), `cellcrypt-pglite-template-${PGLITE_VERSION}`);
const READY = join(TEMPLATE, '.cellcrypt-template-ready');

let building: Promise<string> | undefined;

async function template(): Promise<string> {
  if (existsSync(READY)) return TEMPLATE;
  return (building ??= build());
}

async function build(): Promise<string> {
  const { PGlite } = await import('@electric-sql/pglite');
  const staging = mkdtempSync(`${TEMPLATE}-staging-`);
  const pglite = await PGlite.create(join(staging, 'data'));
  await pglite.close();
  writeFileSync(join(staging, 'data', '.cellcrypt-template-ready'), '');
  try {
    renameSync(join(staging, 'data'), TEMPLATE); // atomic: parallel workers never see half a template
  } catch (error) {
    if (!existsSync(READY)) throw error; // another worker won the race: use its template
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return TEMPLATE;
}

/** Makes `directory` a fresh, empty PGlite cluster (a copy of the template); it must not exist yet. */
export async function seedPgliteDirectory(directory: string): Promise<void> {
  if (existsSync(directory)) throw new Error(`${directory} exists already`);
  cpSync(await template(), directory, { recursive: true, filter: (source) => source !== READY });
}

/** Whether `directory` is still byte for byte the template it was copied from (nothing opened it). */
export async function isUntouchedCopy(directory: string): Promise<boolean> {
  const source = await template();
  const files = (root: string) =>
    (readdirSync(root, { recursive: true, withFileTypes: true }) as Dirent[])
      .filter((entry) => entry.isFile())
      .map((entry) => relative(root, join(entry.parentPath, entry.name)))
      .filter((name) => name !== '.cellcrypt-template-ready')
      .sort();
  const mine = files(directory);
  const theirs = files(source);
  if (mine.join('\n') !== theirs.join('\n')) return false;
  return mine.every((name) => readFileSync(join(directory, name)).equals(readFileSync(join(source, name))));
}
