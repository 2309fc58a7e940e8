import { createHash, randomBytes } from 'node:crypto';
import { Secret } from '../common/secret';
import { keyGuidFromIdentity } from './derivation';
import { guidBytesToString } from './guid';

/**
 * What a key generation's identity is derived from. The IDENTITY_VALUE of a key generation is
 * derived from its passphrase, so the passphrase alone is enough to re-create a key with the
 * same GUID after a restore (`activate`), exactly as SQL Server re-creates it. The identity
 * value is a hash, not the passphrase: it never needs to be shown, but the passphrase never
 * sits in it either. (A GUID lets an attacker test passphrase guesses; so does any cell, which
 * SQL Server's fast KEY_SOURCE derivation already allows: choose long keys.)
 */
export function identityValueFor(passphrase: Secret): Secret {
  const digest = createHash('sha256').update(passphrase.reveal(), 'utf8').digest('hex');
  return new Secret(`cellcrypt-identity-v1:${digest}`);
}

export function keyGuidFor(passphrase: Secret): string {
  return guidBytesToString(keyGuidFromIdentity(identityValueFor(passphrase).reveal()));
}

/** A random master-key password that also meets SQL Server's password complexity policy. */
export function generateMasterKeyPassword(): Secret {
  return new Secret(`Mk1!${randomBytes(32).toString('base64url')}`);
}
