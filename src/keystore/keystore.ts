import { Secret } from '../common/secret';
import type { Sealer } from './sealing';
import type { SecretStorage } from './storage';

/**
 * The secrets of one organization, kept outside its database:
 * - `passphrase`: the encryption key an administrator sees (KEY_SOURCE of the current key);
 * - `passphrase.pending`: a new passphrase while a change is in flight (written before the
 *   database commits, promoted after), so a crash between the two stores never leaves a key
 *   store that cannot open the data;
 * - `master-key-password`: opens the database master key.
 */
export type SecretName = 'passphrase' | 'passphrase.pending' | 'master-key-password';

export class KeyStore {
  constructor(
    private readonly storage: SecretStorage,
    private readonly sealer: Sealer,
    readonly orgId: string,
  ) {}

  async get(name: SecretName): Promise<Secret | undefined> {
    const sealed = await this.storage.read(this.orgId, name);
    return sealed ? new Secret(this.sealer.unseal(sealed, this.associatedData(name))) : undefined;
  }

  async put(name: SecretName, value: Secret): Promise<void> {
    await this.storage.write(this.orgId, name, this.sealer.seal(value.reveal(), this.associatedData(name)));
  }

  async remove(name: SecretName): Promise<void> {
    await this.storage.remove(this.orgId, name);
  }

  private associatedData(name: SecretName): string {
    return `cellcrypt-keystore:${this.orgId}:${name}`;
  }
}
