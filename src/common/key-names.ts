/**
 * The names of the key hierarchy's objects. Every engine and every operation uses these, so a
 * name is spelled once: one certificate per certificate generation (`cellcrypt_certificate`,
 * then `cellcrypt_certificate_2`, ...: `rewrap` replaces it, and SQL Server cannot rename a
 * certificate), and one symmetric key per key generation (`cellcrypt_key_1`, `cellcrypt_key_2`, ...).
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

/**
 * The certificate of a generation. The first keeps the name every org was installed with, so an
 * org that was never rewrapped looks exactly as before.
 */
export function certificateName(generation: number): string {
  return generation === 1 ? CERTIFICATE_NAME : `${CERTIFICATE_NAME}_${generation}`;
}

/** The generation of one of our certificate names, undefined for any other certificate. */
export function certificateGenerationOf(name: string): number | undefined {
  if (name === CERTIFICATE_NAME) return 1;
  if (!name.startsWith(`${CERTIFICATE_NAME}_`)) return undefined;
  const digits = name.slice(CERTIFICATE_NAME.length + 1);
  const n = Number(digits);
  return /^[0-9]+$/.test(digits) && Number.isSafeInteger(n) && n > 1 ? n : undefined;
}

/**
 * The certificate that protects our keys: the newest generation of ours in the database. A rewrap
 * creates the next one and drops the old one in the same transaction, so there is one; should a
 * DBA have left an older one behind, the newest is the one a rewrap moved the keys to.
 */
export function currentCertificate(names: readonly string[]): string | undefined {
  let best: { name: string; generation: number } | undefined;
  for (const name of names) {
    const generation = certificateGenerationOf(name);
    if (generation !== undefined && (!best || generation > best.generation)) best = { name, generation };
  }
  return best?.name;
}
