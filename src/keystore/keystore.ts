import { isCellcryptError, type CellcryptError } from '../common/errors';
import { Secret } from '../common/secret';
import type { Sealer } from './sealing';
import type { SecretStorage } from './storage';

/**
 * The secrets of one organization, kept outside its database:
 * - `passphrase`: the encryption key an administrator sees (KEY_SOURCE of the current key);
 * - `passphrase.pending`: a new passphrase while a change is in flight (written before the
 *   database commits, promoted after), so a crash between the two stores never leaves a key
 *   store that cannot open the data;
 * - `master-key-password`: opens the database master key;
 * - `master-key-password.pending`: a new master-key password while a rewrap is in flight, in the
 *   same order as `passphrase.pending` (see core/rewrap.ts).
 */
export type SecretName =
  | 'passphrase'
  | 'passphrase.pending'
  | 'master-key-password'
  | 'master-key-password.pending'
  | 'location'
  | `history:${number}`;

/**
 * What an operation may rely on before its first change: `own` is whether this org's values are
 * there and open with this key-store secret; `location` is the org database they were written
 * for (a restored copy elsewhere must not take them over unasked).
 */
export interface KeyStoreCheck {
  readonly own: 'readable' | 'none' | 'unreadable';
  readonly location?: string;
  /** Why `own` is unreadable (the unseal error), for the refusal. */
  readonly problem?: CellcryptError;
}

const OWN_VALUES: SecretName[] = [
  'passphrase',
  'passphrase.pending',
  'master-key-password',
  'master-key-password.pending',
  'location',
];
const PROBE = 'write-check';

export class KeyStore {
  constructor(
    private readonly storage: SecretStorage,
    private readonly sealer: Sealer,
    readonly orgId: string,
    /** Where the key store is (the config URL without its password), for every message. */
    readonly display: string = 'the key store',
  ) {}

  /**
   * Reads every value of this org (and, if it has none, one of another org, which proves the
   * key-store secret) and writes and removes a probe: an operation that checks this first
   * never commits a change it then cannot record (a mistyped CELLCRYPT_KEYSTORE_SECRET did).
   * A wrong secret for another org's value throws; for this org's values it is reported.
   */
  async check(): Promise<KeyStoreCheck> {
    let own: KeyStoreCheck['own'] = 'none';
    let location: string | undefined;
    try {
      for (const name of OWN_VALUES) {
        const value = await this.get(name);
        if (value) own = 'readable';
        if (value && name === 'location') location = value.reveal();
      }
    } catch (error) {
      if (!isCellcryptError(error) || error.code !== 'CellcryptKeyStoreLocked') throw error;
      return { own: 'unreadable', problem: error };
    }
    if (own === 'none') {
      const other = await this.storage.anyOther(this.orgId);
      if (other) this.sealer.unseal(other.sealed, `cellcrypt-keystore:${other.orgId}:${other.name}`);
    }
    await this.storage.write(this.orgId, PROBE, this.sealer.seal('probe', this.associatedData('location')));
    await this.storage.remove(this.orgId, PROBE);
    return { own, ...(location !== undefined && { location }) };
  }

  async get(name: SecretName): Promise<Secret | undefined> {
    const sealed = await this.storage.read(this.orgId, name);
    return sealed ? new Secret(this.sealer.unseal(sealed, this.associatedData(name))) : undefined;
  }

  async put(name: SecretName, value: Secret): Promise<void> {
    await this.storage.write(this.orgId, name, this.sealer.seal(value.reveal(), this.associatedData(name)));
  }

  /** The names of this org's values (the key history's generations among them). */
  async names(): Promise<string[]> {
    return this.storage.names(this.orgId);
  }

  async remove(name: SecretName): Promise<void> {
    await this.storage.remove(this.orgId, name);
  }

  private associatedData(name: SecretName): string {
    return `cellcrypt-keystore:${this.orgId}:${name}`;
  }
}
