import { keyGuidFor } from '../cellcrypt/key-identity';
import { Secret } from '../common/secret';
import type { KeyStore } from '../keystore/keystore';

/**
 * Every key generation's passphrase, kept in the key store until an operator prunes it (issue
 * 18): after a key change, a backup from before it is readable only with the old key, and the
 * commonest loss is an old key nobody saved. Vault, cloud KMSs and Rails' Active Record
 * Encryption keep every version the same way. Each generation is one sealed value named
 * `history:<generation>`, so the sealing binds it to the org and the generation.
 */
export interface KeyGeneration {
  readonly generation: number;
  readonly keyGuid: string;
  readonly createdAt: string;
  /** When a key change made another generation current. */
  readonly retiredAt?: string;
  readonly passphrase: Secret;
}

const PREFIX = 'history:';
const nameOf = (generation: number) => `${PREFIX}${generation}` as const;

interface Stored {
  keyGuid: string;
  createdAt: string;
  retiredAt?: string;
  passphrase: string;
}

async function read(keystore: KeyStore, generation: number): Promise<KeyGeneration | undefined> {
  const sealed = await keystore.get(nameOf(generation));
  if (!sealed) return undefined;
  const value = JSON.parse(sealed.reveal()) as Stored;
  return { generation, ...value, passphrase: new Secret(value.passphrase) };
}

async function write(keystore: KeyStore, entry: KeyGeneration): Promise<void> {
  const { generation, passphrase, ...rest } = entry;
  await keystore.put(nameOf(generation), new Secret(JSON.stringify({ ...rest, passphrase: passphrase.reveal() })));
}

/** Records a generation (idempotent: an entry already there keeps its dates). */
export async function recordGeneration(
  keystore: KeyStore,
  generation: number,
  passphrase: Secret,
  createdAt = new Date(),
): Promise<void> {
  const existing = await read(keystore, generation);
  if (existing && existing.passphrase.equals(passphrase)) return;
  await write(keystore, {
    generation,
    keyGuid: keyGuidFor(passphrase),
    createdAt: createdAt.toISOString(),
    passphrase,
  });
}

export async function retireGeneration(keystore: KeyStore, generation: number, at = new Date()): Promise<void> {
  const existing = await read(keystore, generation);
  if (existing && !existing.retiredAt) await write(keystore, { ...existing, retiredAt: at.toISOString() });
}

export async function forgetGeneration(keystore: KeyStore, generation: number): Promise<void> {
  await keystore.remove(nameOf(generation));
}

/** Every generation the key store keeps, oldest first. */
export async function readHistory(keystore: KeyStore): Promise<KeyGeneration[]> {
  const generations = (await keystore.names())
    .filter((name) => name.startsWith(PREFIX))
    .map((name) => Number(name.slice(PREFIX.length)))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => a - b);
  const out: KeyGeneration[] = [];
  for (const generation of generations) {
    const entry = await read(keystore, generation);
    if (entry) out.push(entry);
  }
  return out;
}
