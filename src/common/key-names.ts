/**
 * The names of the key hierarchy's objects. Every engine and every operation uses these, so a
 * name is spelled once: the certificate, and one symmetric key per generation
 * (`cellcrypt_key_1`, `cellcrypt_key_2`, ...).
 */
export const CERTIFICATE_NAME = 'cellcrypt_certificate';
export const KEY_PREFIX = 'cellcrypt_key_';

export function keyName(generation: number): string {
  return `${KEY_PREFIX}${generation}`;
}

/** The generation number of one of our key names, undefined for any other key. */
export function generationOf(name: string): number | undefined {
  if (!name.startsWith(KEY_PREFIX)) return undefined;
  const n = Number(name.slice(KEY_PREFIX.length));
  return Number.isInteger(n) && n > 0 ? n : undefined;
}
