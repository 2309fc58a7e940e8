import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { DERIVATIONS, decryptByKey, deriveKey, guidStringToBytes, type Derivation } from '../../cellcrypt';
import type { Secret } from '../../common/secret';
import { CellcryptError } from '../../common/errors';
import { CERTIFICATE_NAME, KEY_PREFIX } from '../../common/key-names';
import type { Db, KeyHierarchy, KeyHierarchyOps, SymmetricKeySpec } from '../engine';
import { sqlServerErrorNumber } from './errors';
import { query, querySecret, type Row } from './execute';
import { inlineSecrets, keyStatements as K } from './key-statements';

/**
 * The key hierarchy on SQL Server: the real thing (DMK, certificate, AES_256 symmetric keys).
 * Statements with a secret go through `querySecret` (never knex); the rest through knex.
 * SQL Server cannot say which derivation made a key's bytes, so a new key is probed: a value
 * encrypted by the server is decrypted here under each derivation, which proves the key bytes
 * equal `deriveKey` and records the derivation (2016, or 2017+ with trace flag 4631, use SHA-1).
 */
export function mssqlKeyHierarchy(): KeyHierarchyOps {
  return {
    async read(db: Db): Promise<KeyHierarchy> {
      const [state] = await query(db, K.readMasterKey(), 'read key hierarchy');
      const certificates = await query(db, K.readCertificates(), 'read certificates');
      const keys = await query(
        db,
        state.prepared ? K.readSymmetricKeys() : K.readSymmetricKeysUnprepared(),
        'read symmetric keys',
      );
      return {
        masterKey: Number(state.master_key) === 1,
        certificates: certificates.map((row) => String(row.name)),
        symmetricKeys: keys.map((row: Row) => ({
          name: String(row.name),
          keyGuid: String(row.key_guid).toUpperCase(),
          algorithm: String(row.algorithm),
          derivation: (row.derivation as Derivation | null) ?? 'sql2017',
          createdAt: new Date(row.created_at as string | Date),
        })),
      };
    },

    async createMasterKey(trx, password) {
      await querySecret(trx, K.createMasterKey(inlineSecrets({ masterKeyPassword: password })), 'create master key', [
        password.reveal(),
      ]);
    },

    async openMasterKey(trx, password) {
      await querySecret(trx, K.openMasterKey(inlineSecrets({ masterKeyPassword: password })), 'open master key', [
        password.reveal(),
      ]);
    },

    async reset(trx) {
      for (const sql of K.reset(CERTIFICATE_NAME, KEY_PREFIX)) await query(trx, sql, 'remove key hierarchy');
    },

    async createCertificate(trx, name) {
      await query(trx, K.createCertificate(name), `create certificate ${name}`);
    },

    async createSymmetricKey(trx, spec: SymmetricKeySpec) {
      const wanted = spec.derivation ?? 'sql2017';
      const secrets = [spec.keySource.reveal(), spec.identityValue.reveal()];
      await querySecret(
        trx,
        K.createSymmetricKey(
          spec.name,
          spec.certificate,
          inlineSecrets({ passphrase: spec.keySource, identityValue: spec.identityValue }),
        ),
        `create symmetric key ${spec.name}`,
        secrets,
      );
      await query(trx, K.openSymmetricKey(spec.name, spec.certificate), `open symmetric key ${spec.name}`);
      const probe = randomBytes(24);
      const [row] = await query(
        trx,
        K.probeSymmetricKey(spec.name, probe.toString('hex')),
        `probe symmetric key ${spec.name}`,
      );
      const keyGuid = String(row.key_guid).toUpperCase();
      const used = serverDerivation(Buffer.from(row.probe as Uint8Array), probe, spec.keySource, keyGuid);
      if (used !== wanted) {
        throw new CellcryptError(
          'CellcryptEngineUnsupported',
          `this SQL Server derives key bytes the ${used} way, the cells need ${wanted}; the new key was rolled back`,
          {
            exitCode: 1,
            hint:
              wanted === 'sql2016'
                ? 'on SQL Server 2017+ enable trace flag 4631 (DBCC TRACEON(4631, -1)) ' +
                  'for the activate, then turn it off'
                : 'turn trace flag 4631 off (DBCC TRACEOFF(4631, -1))',
          },
        );
      }
      await query(trx, K.recordDerivation(spec.name, used), `record derivation of ${spec.name}`);
      return keyGuid;
    },

    async openSymmetricKey(trx, name, certificate) {
      await query(trx, K.openSymmetricKey(name, certificate), `open symmetric key ${name}`);
    },

    async dropSymmetricKey(trx, name) {
      await query(trx, K.dropSymmetricKey(name), `drop symmetric key ${name}`);
      await query(trx, K.forgetDerivation(name), `drop symmetric key ${name}`);
    },

    async dropCertificate(trx, name) {
      await query(trx, K.dropCertificate(name), `drop certificate ${name}`);
    },

    async moveSymmetricKey(trx, name, from, to) {
      await query(trx, K.addKeyEncryption(name, to), `protect symmetric key ${name} by certificate ${to}`);
      await query(trx, K.dropKeyEncryption(name, from), `remove certificate ${from} from symmetric key ${name}`);
    },

    async changeMasterKeyPassword(trx, from, to) {
      await querySecret(
        trx,
        K.changeMasterKeyPassword(inlineSecrets({ masterKeyPassword: from, newMasterKeyPassword: to })),
        'change the master-key password',
        [from.reveal(), to.reveal()],
      );
    },

    async decrypt(trx, cell) {
      const [row] = await query(trx, K.decrypt(cell.toString('hex')), 'decrypt a probe');
      const plain = row?.plain as Uint8Array | null | undefined;
      return plain ? Buffer.from(plain) : null;
    },

    async roundTrip(trx, keyGuid: string, probe: Secret) {
      const rows = await querySecret(
        trx,
        K.roundTrip(keyGuid, inlineSecrets({ passphrase: probe })),
        'encryption/decryption test',
        [probe.reveal()],
      );
      return Number(rows[0]?.ok) === 1;
    },

    async opensByItself(db: Db, keyName: string, certificate: string) {
      try {
        await query(db, K.probeAutomaticOpen(keyName, certificate), 'check that the master key opens by itself');
        return true;
      } catch (error) {
        if (
          sqlServerErrorNumber((error as { cause?: unknown }).cause) === 15581 ||
          sqlServerErrorNumber(error) === 15581
        )
          return false;
        throw error;
      }
    },

    async foreignDependents(db: Db) {
      const rows = await query(db, K.foreignDependents(), 'find what else depends on the key hierarchy');
      return rows.map((row) => `${String(row.kind)} ${String(row.name)}`);
    },

    async closeAll(trx: Knex.Transaction) {
      await query(trx, K.closeAll(), 'close keys');
    },
  };
}

/** Which derivation the server used for a new key, from a probe it encrypted. */
function serverDerivation(cell: Buffer, expected: Buffer, keySource: Secret, keyGuid: string): Derivation {
  for (const derivation of DERIVATIONS) {
    const key = { keyGuid: guidStringToBytes(keyGuid), key: deriveKey(keySource.reveal(), derivation) };
    const plaintext = decryptByKey(cell, key);
    if (plaintext && plaintext.equals(expected)) return derivation;
  }
  throw new CellcryptError(
    'CellcryptInternal',
    `the server's new key ${keyGuid} decrypts its probe under no known derivation`,
    { exitCode: 1 },
  );
}
