import type { Knex } from 'knex';
import { guidBytesToString, guidStringToBytes } from '../../cellcrypt';
import type { Derivation } from '../../cellcrypt';
import type { Secret } from '../../common/secret';
import type { Db, KeyHierarchy, KeyHierarchyOps, SymmetricKeySpec } from '../engine';
import { mapKeyError } from './errors';
import { keyStatements as SQL } from './key-statements';

/**
 * The key hierarchy on PostgreSQL/PGlite: thin calls to the functions of
 * sql/20-key-hierarchy.sql. Secrets travel only as bound parameters.
 */
export function postgresKeyHierarchy(): KeyHierarchyOps {
  return {
    async read(db: Db): Promise<KeyHierarchy> {
      const exists = await db.raw(`select to_regclass('cellcrypt.symmetric_keys') is not null as ready`);
      if (!exists.rows[0].ready) return { masterKey: false, certificates: [], symmetricKeys: [] };
      const master = await db.raw('select count(*)::int as n from cellcrypt.master_key');
      const certificates = await db.raw('select name from cellcrypt.certificates order by name');
      const keys = await db.raw(
        'select name, key_guid, algorithm, derivation, created_at ' +
          'from cellcrypt.symmetric_keys order by created_at, name',
      );
      return {
        masterKey: master.rows[0].n > 0,
        certificates: certificates.rows.map((row: { name: string }) => row.name),
        symmetricKeys: keys.rows.map(
          (row: {
            name: string;
            key_guid: Uint8Array;
            algorithm: string;
            derivation: Derivation;
            created_at: Date | string;
          }) => ({
            name: row.name,
            keyGuid: guidBytesToString(Buffer.from(row.key_guid)),
            algorithm: row.algorithm,
            derivation: row.derivation,
            createdAt: new Date(row.created_at),
          }),
        ),
      };
    },

    async createMasterKey(trx, password) {
      await call(trx, SQL.createMasterKey, [password.reveal()], 'create master key');
    },

    async openMasterKey(trx, password) {
      await call(trx, SQL.openMasterKey, [password.reveal()], 'open master key');
    },

    async reset(trx) {
      for (const sql of SQL.reset) await trx.raw(sql);
    },

    async createCertificate(trx, name) {
      await call(trx, SQL.createCertificate, [name, `cellcrypt ${name}`], `create certificate ${name}`);
    },

    async createSymmetricKey(trx, spec: SymmetricKeySpec) {
      const result = await call(
        trx,
        SQL.createSymmetricKey,
        [
          spec.name,
          spec.keySource.reveal(),
          spec.identityValue.reveal(),
          spec.certificate,
          spec.derivation ?? 'sql2017',
        ],
        `create symmetric key ${spec.name}`,
      );
      return guidBytesToString(Buffer.from(result.rows[0].key_guid));
    },

    async openSymmetricKey(trx, name, certificate) {
      await call(trx, SQL.openSymmetricKey, [name, certificate], `open symmetric key ${name}`);
    },

    async dropSymmetricKey(trx, name) {
      await call(trx, SQL.dropSymmetricKey, [name], `drop symmetric key ${name}`);
    },

    async dropCertificate(trx, name) {
      await call(trx, SQL.dropCertificate, [name], `drop certificate ${name}`);
    },

    async moveSymmetricKey(trx, name, from, to) {
      await call(trx, SQL.moveSymmetricKey, [name, from, to], `move symmetric key ${name} to certificate ${to}`);
    },

    async changeMasterKeyPassword(trx, from, to) {
      await call(trx, SQL.changeMasterKeyPassword, [from.reveal(), to.reveal()], 'change the master-key password');
    },

    async decrypt(trx, cell) {
      const result = await trx.raw(SQL.decrypt, [cell]);
      const plain = result.rows[0]?.plain as Uint8Array | null | undefined;
      return plain ? Buffer.from(plain) : null;
    },

    // Keys are rows of the session's transaction-local state: commit and rollback close them.
    closeAll: async () => undefined,

    // No key opens by itself on PostgreSQL: applications call cellcrypt.open_keys.
    opensByItself: async () => true,

    // The hierarchy is cellcrypt's own rows: nothing of anyone else's hangs off them.
    foreignDependents: async () => [],

    async roundTrip(trx, keyGuid: string, probe: Secret) {
      const result = await trx.raw(
        `select cellcrypt.decrypt_text(cellcrypt.encrypt_text(?::bytea, ?::text, ?::uuid), ?::uuid) = ?::text as ok`,
        [guidStringToBytes(keyGuid), probe.reveal(), PROBE_ROW, PROBE_ROW, probe.reveal()],
      );
      return result.rows[0].ok === true;
    },
  };
}

const PROBE_ROW = '00000000-0000-0000-0000-00000000c0de';

let warnedAboutLogs = false;

async function hideParametersFromLogs(connection: {
  query(text: string, values: unknown[]): Promise<{ rows: Array<Record<string, any>> }>;
}): Promise<void> {
  // An org prepared by an older cellcrypt lacks the function until its next install; calling
  // it anyway would abort the transaction.
  const exists = await connection.query(
    `select to_regprocedure('cellcrypt.hide_parameters_from_logs()') is not null as present`,
    [],
  );
  if (!exists.rows[0].present) {
    warnOnce(
      'warning: this organization was prepared by an older cellcrypt; ' +
        'run `cellcrypt install` so key operations stop the server from logging their parameters',
    );
    return;
  }
  const result = await connection.query('select cellcrypt.hide_parameters_from_logs() as hidden', []);
  if (!result.rows[0].hidden) {
    warnOnce(
      'warning: this PostgreSQL server logs statements with their ' +
        'parameters and this user may not turn that off for its session; ' +
        'key secrets can reach the server log (see README, Security notes)',
    );
  }
}

function warnOnce(text: string): void {
  if (warnedAboutLogs) return;
  warnedAboutLogs = true;
  process.stderr.write(`${text}\n`);
}

/**
 * Every key-hierarchy call goes to the transaction's own connection directly, not through
 * `knex.raw`: knex prints bindings under DEBUG=knex:*, and these bindings are passwords and
 * passphrases. (The driver sends them as bound parameters; see the README on server logs.)
 */
async function call(
  trx: Knex.Transaction,
  sql: string,
  bindings: readonly unknown[],
  where: string,
): Promise<{ rows: Array<Record<string, any>> }> {
  let index = 0;
  const text = sql.replace(/\?/g, () => `$${++index}`);
  const connection = (await trx.client.acquireConnection()) as {
    query(text: string, values: unknown[]): Promise<{ rows: Array<Record<string, any>> }>;
  };
  try {
    if (bindings.length) await hideParametersFromLogs(connection);
    return await connection.query(text, [...bindings]);
  } catch (error) {
    return mapKeyError(error, where);
  } finally {
    await trx.client.releaseConnection(connection);
  }
}
