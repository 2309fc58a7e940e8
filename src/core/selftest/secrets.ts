import { existsSync } from 'node:fs';
import { redact, type Secret } from '../../common/secret';
import { keystoreSecretFile, resolveKeystoreSecret } from '../../keystore/keystore-secret';
import type { Toolkit } from '../toolkit';
import { keyStorePassphrases } from './org-data';
import type { SelftestResult } from './types';

/**
 * A selftest report is evidence a DBA attaches to a ticket, so no secret may be in it, not
 * even the throw-away org's: every line is cleaned of every secret its key store holds (the
 * passphrases of every generation, the master-key passwords) and of the key-store secret, as
 * they are when the line is written. Messages never carry them on purpose; this is the belt.
 */
export class SecretRedactor {
  /** Every secret seen so far: a key change or activate replaces values, and the old ones stay secret. */
  private readonly seen = new Map<string, Secret>();

  constructor(private readonly tk: Toolkit) {}

  async clean(result: SelftestResult): Promise<SelftestResult> {
    for (const secret of await this.known()) if (secret) this.seen.set(secret.reveal(), secret);
    const secrets = [...this.seen.values()];
    return {
      ...result,
      detail: redact(result.detail, secrets),
      ...(result.hint !== undefined && { hint: redact(result.hint, secrets) }),
    };
  }

  private async known(): Promise<Array<Secret | undefined>> {
    const { settings } = this.tk;
    const found: Array<Secret | undefined> = [settings.keystoreSecret];
    if (!settings.keystoreSecret && existsSync(keystoreSecretFile(settings)))
      found.push(resolveKeystoreSecret(settings));
    // Before install there is no key store for this org, and nothing in it to hide.
    if (!(await this.tk.organizationId().catch(() => undefined))) return found;
    try {
      const keystore = await this.tk.keystore();
      found.push(...(await keyStorePassphrases(this.tk)));
      found.push(await keystore.get('master-key-password'), await keystore.get('master-key-password.pending'));
    } catch {
      // A key store that cannot be read holds nothing that could be in the line either.
    }
    return found;
  }
}
