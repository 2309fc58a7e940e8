import {
  decryptByKey,
  encryptByKey,
  guidBytesToString,
  guidStringToBytes,
  keyGuidFromIdentity,
  deriveKey,
  nvarcharBytes,
} from '../../src/cellcrypt';
import { createHash } from 'node:crypto';
import type { Secret } from '../../src/common/secret';
import { identityValueFor } from '../../src/cellcrypt/key-identity';
import { ORG_MIGRATIONS } from '../../src/core/install-run';
import type { SensitiveColumn } from '../../src/core/registry';

/**
 * A scripted SQL Server for unit tests of the mssql engine's transaction plans: it answers the
 * statements cellcrypt sends (recognised by their text) from a small state of keys and cell
 * counts, so the REAL core operations (install's provision + convert, change-key, activate) run
 * over knex's real mssql client and the recording tedious. It is no database: it proves what is
 * sent, in which order and transaction, and what the engine does with the answers. Anything it
 * does not recognise is an error, so a new statement cannot slip past the grammar tests.
 */
export interface FakeKey {
  name: string;
  passphrase: Secret;
  /** The certificates the key is encrypted by (default: the one every org is installed with). */
  certificates?: string[];
}

export interface FakeServerState {
  orgId: string;
  masterKey: boolean;
  certificates: string[];
  keys: FakeKey[];
  /** Cells per column label, per key GUID. */
  cells: Map<string, Map<string, number>>;
  /** Plaintext rows per column label (before conversion). */
  plaintext: Map<string, number>;
  /** Sample cells activate reads (id → blob), per column label. */
  samples: Map<string, Array<{ id: string; cell: Buffer }>>;
  /** Restored on another server: the master key does not open by itself (15581) until re-created. */
  restoredElsewhere?: boolean;
  /** Migration file names recorded as applied (default: every file in migrations/). */
  appliedMigrations?: string[];
  /**
   * The passwords the master key is encrypted by. When set (CREATE MASTER KEY sets it), OPEN
   * MASTER KEY with any other password fails as SQL Server's does (15313).
   */
  masterPasswords?: string[];
  /** Statement → error, to make one fail (matched by substring). */
  failOn?: { contains: string; error: Error & { number?: number }; after?: number };
  /** Objects not cellcrypt's on the master key or our certificate (foreignDependents rows); none by default. */
  foreignDependents?: Array<{ kind: string; name: string }>;
  /** Every GRANT to cellcrypt_application sent, as `<permission> <class>::<name>`, in order. */
  grants?: string[];
  /** What blocks the swap, per column label (the rows of blockers.ts); none by default. */
  blockers?: Map<string, Array<{ kind: string; blocker: string }>>;
  /** Views and modules the refresh after each swap reports (default 0). */
  refreshed?: number;
}

type Row = Record<string, unknown>;

const ALL_MIGRATIONS = ORG_MIGRATIONS.names();

const guidOf = (passphrase: Secret) => guidBytesToString(keyGuidFromIdentity(identityValueFor(passphrase).reveal()));

export function sampleCells(passphrase: Secret, count: number): Array<{ id: string; cell: Buffer }> {
  const key = {
    keyGuid: keyGuidFromIdentity(identityValueFor(passphrase).reveal()),
    key: deriveKey(passphrase.reveal(), 'sql2017'),
  };
  return Array.from({ length: count }, (_, i) => {
    const id = `0000000${i}-1111-2222-3333-444444444444`.slice(-36);
    return { id, cell: encryptByKey(key, nvarcharBytes(`secret ${i} 😀`), { authenticator: guidStringToBytes(id) }) };
  });
}

/** The passwords inlined in a statement, in order (`PASSWORD = N'...'`). */
function passwordsIn(sql: string): string[] {
  return [...sql.matchAll(/PASSWORD = N'((?:[^']|'')*)'/g)].map((m) => m[1].replace(/''/g, "'"));
}

/** A GRANT to the application role, as application.ts sends it (through EXEC). */
const APPLICATION_GRANT = new RegExp(
  "EXEC \\(N'GRANT (VIEW DEFINITION|CONTROL) ON (SYMMETRIC KEY|CERTIFICATE)::\\[([^\\]]+)\\] " +
    "TO \\[cellcrypt_application\\]'\\)",
  'g',
);

const wrongPassword = () =>
  Object.assign(new Error('The key is not encrypted using the specified decryptor.'), { number: 15313 });

/**
 * The primary keys of a column's rows, in the server's order: random-looking GUIDs sorted the way
 * SQL Server sorts a uniqueidentifier (last group first, review SS1), which is not the order of
 * the strings, so an engine that computed its cursor in JavaScript would skip or repeat rows.
 */
export function rowIds(columnLabel: string, count: number): string[] {
  const ids = Array.from({ length: count }, (_, i) => {
    const hex = createHash('md5').update(`${columnLabel}#${i}`).digest('hex').toUpperCase();
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
  });
  return ids.sort((a, b) => (serverOrder(a) < serverOrder(b) ? -1 : 1));
}
/** The groups of a GUID string, last first: how SQL Server compares two uniqueidentifiers. */
const serverOrder = (id: string) => id.split('-').reverse().join('-');
/** The `[pk] > CONVERT(uniqueidentifier, N'…')` of a keyset batch, if any. */
const cursorIn = (sql: string) => /\] > CONVERT\(uniqueidentifier, N'([0-9A-F-]{36})'\)/i.exec(sql)?.[1].toUpperCase();

export function fakeSqlServer(state: FakeServerState, columns: readonly SensitiveColumn[]) {
  let seen = 0;
  const label = (sql: string) =>
    columns.find(
      (c) => sql.includes(`[${c.table}]`) && (sql.includes(`[${c.column}`) || sql.includes(`N'${c.column}'`)),
    ) ?? columns.find((c) => sql.includes(`[${c.table}]`));
  const keyByName = (name: string) => state.keys.find((k) => k.name === name);
  const guids = (sql: string) =>
    [...sql.matchAll(/CONVERT\(uniqueidentifier, N'([0-9A-F-]{36})'\)/gi)].map((m) => m[1].toUpperCase());
  /**
   * Each cell of a column and its key, by primary key, for the keyset batches of a key change;
   * built from the per-key counts (and again whenever another statement changed those).
   */
  const cellRows = new Map<string, Array<{ id: string; key: string }>>();
  const rowsOf = (columnLabel: string, byKey: Map<string, number>) => {
    let rows = cellRows.get(columnLabel);
    const counts = (list: Array<{ key: string }>) =>
      [...byKey.keys()].map((k) => list.filter((r) => r.key === k).length).join();
    if (
      !rows ||
      rows.length !== [...byKey.values()].reduce((a, b) => a + b, 0) ||
      counts(rows) !== [...byKey.values()].join()
    ) {
      const keys = [...byKey].flatMap(([key, n]) => Array.from({ length: n }, () => key));
      rows = rowIds(columnLabel, keys.length).map((id, i) => ({ id, key: keys[i] }));
      cellRows.set(columnLabel, rows);
    }
    return rows;
  };

  return (sql: string): Row[] | { rows?: Row[]; rowCount?: number } | Error | undefined => {
    seen++;
    if (state.failOn && sql.includes(state.failOn.contains) && seen > (state.failOn.after ?? 0))
      return state.failOn.error;
    for (const [, permission, securable, name] of sql.matchAll(APPLICATION_GRANT))
      (state.grants ??= []).push(`${permission} ${securable}::${name}`);
    const column = label(sql);
    const columnLabel = column ? `${column.table}.${column.column}` : '';
    // ---- knex's own queries (schema builder, toolkit tables) ----
    if (/INFORMATION_SCHEMA\.TABLES/i.test(sql) || /from information_schema\.tables/i.test(sql))
      return [{ TABLE_NAME: 'x' }];
    if (/from \[cellcrypt\]\.\[organization\]/i.test(sql)) return [{ id: state.orgId }];
    if (/insert into \[cellcrypt\]\.\[(audit|ledger)\]/i.test(sql)) return [];
    // knex appends 'select @@rowcount': no row yet, so it inserts
    if (/update \[cellcrypt\]\.\[ledger\]/i.test(sql)) return [{ '': 0 }];
    if (/from \[cellcrypt\]\.\[audit\]/i.test(sql)) return [{ n: 0 }];
    // knex's migration list (change-key refuses an org whose migrations are behind): all applied.
    if (/from \[cellcrypt_migrations_lock\]/i.test(sql)) return [{ index: 1, is_locked: 0 }];
    if (/from \[cellcrypt_migrations\]/i.test(sql))
      return (state.appliedMigrations ?? ALL_MIGRATIONS).map((name) => ({ name }));
    // ---- permissions, lock ----
    if (sql.includes('HAS_PERMS_BY_NAME')) return [{ user_name: 'dbo', granted: 1 }];
    if (sql.includes('sp_getapplock')) return [{ result: 0 }];
    if (sql.includes('sp_releaseapplock')) return [];
    // ---- key hierarchy ----
    if (
      sql.startsWith(
        'SELECT CASE WHEN EXISTS (SELECT 1 FROM sys.symmetric_keys WHERE ' +
          "name = N'##MS_DatabaseMasterKey##') THEN 1 ELSE 0 END AS master_key",
      )
    )
      return [{ master_key: state.masterKey ? 1 : 0, prepared: 1 }];
    if (sql.startsWith('SELECT name FROM sys.certificates')) return state.certificates.map((name) => ({ name }));
    if (sql.startsWith("SELECT N'certificate' AS kind, name FROM sys.certificates"))
      return state.foreignDependents ?? [];
    if (sql.includes('FROM sys.symmetric_keys AS k')) {
      return state.keys.map((k, i) => ({
        name: k.name,
        key_guid: guidOf(k.passphrase),
        algorithm: 'AES_256',
        created_at: new Date(Date.UTC(2026, 0, 1 + i)),
        derivation: 'sql2017',
      }));
    }
    if (state.restoredElsewhere && sql.startsWith('CLOSE ALL SYMMETRIC KEYS;') && sql.includes('OPEN SYMMETRIC KEY')) {
      return Object.assign(
        new Error(
          'Please create a master key in the database or open the ' +
            'master key in the session before performing this operation.',
        ),
        { number: 15581 },
      );
    }
    if (sql.includes('CREATE MASTER KEY')) {
      state.masterKey = true;
      state.restoredElsewhere = false;
      state.masterPasswords = [passwordsIn(sql)[0]];
      return [];
    }
    // ---- rewrap: certificates per key, master-key passwords ----
    const opened = /^SET XACT_ABORT ON; OPEN MASTER KEY|^OPEN MASTER KEY/.test(sql) ? passwordsIn(sql)[0] : undefined;
    if (opened !== undefined && state.masterPasswords && !state.masterPasswords.includes(opened))
      return wrongPassword();
    const alterMaster = [...sql.matchAll(/ALTER MASTER KEY (ADD|DROP) ENCRYPTION BY PASSWORD = N'((?:[^']|'')*)'/g)];
    if (alterMaster.length) {
      for (const [, verb, quoted] of alterMaster) {
        const password = quoted.replace(/''/g, "'");
        const passwords = state.masterPasswords ?? [];
        if (verb === 'ADD') state.masterPasswords = [...passwords, password];
        else if (!passwords.includes(password)) return wrongPassword();
        else state.masterPasswords = passwords.filter((p) => p !== password);
      }
      return [];
    }
    const certificatesOf = (key: FakeKey) => (key.certificates ??= ['cellcrypt_certificate']);
    const openKey = /^OPEN SYMMETRIC KEY \[([^\]]+)\] DECRYPTION BY CERTIFICATE \[([^\]]+)\]$/.exec(sql);
    if (openKey) {
      const key = keyByName(openKey[1]);
      if (key && !certificatesOf(key).includes(openKey[2]))
        return Object.assign(new Error(`The key is not encrypted using certificate ${openKey[2]}.`), { number: 15151 });
      return [];
    }
    const alterKey = /^ALTER SYMMETRIC KEY \[([^\]]+)\] (ADD|DROP) ENCRYPTION BY CERTIFICATE \[([^\]]+)\]$/.exec(sql);
    if (alterKey) {
      const [, name, verb, certificate] = alterKey;
      const key = keyByName(name)!;
      if (verb === 'ADD') certificatesOf(key).push(certificate);
      else if (certificatesOf(key).length < 2)
        return Object.assign(new Error('Cannot drop the last encryption of a key.'), { number: 15317 });
      else key.certificates = certificatesOf(key).filter((c) => c !== certificate);
      return [];
    }
    const dropCertificate = /^CLOSE ALL SYMMETRIC KEYS; DROP CERTIFICATE \[([^\]]+)\]$/.exec(sql);
    if (dropCertificate) {
      if (state.keys.some((k) => certificatesOf(k).includes(dropCertificate[1])))
        return Object.assign(new Error('The certificate cannot be dropped: a key is encrypted by it.'), {
          number: 15352,
        });
      state.certificates = state.certificates.filter((c) => c !== dropCertificate[1]);
      return [];
    }
    const decrypt = /^SELECT DECRYPTBYKEY\(0x([0-9a-f]+)\) AS plain$/.exec(sql);
    if (decrypt) {
      const keys = state.keys.map((k) => ({
        keyGuid: keyGuidFromIdentity(identityValueFor(k.passphrase).reveal()),
        key: deriveKey(k.passphrase.reveal(), 'sql2017'),
      }));
      return [{ plain: decryptByKey(Buffer.from(decrypt[1], 'hex'), keys) }];
    }
    if (
      sql.startsWith('SET XACT_ABORT ON; OPEN MASTER KEY') ||
      sql.startsWith('OPEN SYMMETRIC KEY') ||
      (sql.startsWith('CLOSE ALL SYMMETRIC KEYS;') && !sql.includes('DROP'))
    )
      return [];
    if (sql.includes('CREATE CERTIFICATE')) {
      state.certificates.push(/CREATE CERTIFICATE \[([^\]]+)\]/.exec(sql)![1]);
      return [];
    }
    const created = /^CREATE SYMMETRIC KEY \[([^\]]+)\] WITH ALGORITHM = AES_256, KEY_SOURCE = N'((?:[^']|'')*)'/.exec(
      sql,
    );
    if (created) {
      const passphrase = { reveal: () => created[2].replace(/''/g, "'") } as Secret;
      const certificate = /ENCRYPTION BY CERTIFICATE \[([^\]]+)\](?:;|$)/.exec(sql)![1];
      state.keys.push({ name: created[1], passphrase, certificates: [certificate] });
      return [];
    }
    const probe = /^SELECT ENCRYPTBYKEY\(KEY_GUID\(N'([^']+)'\), 0x([0-9a-f]+)\)/.exec(sql);
    if (probe) {
      const key = keyByName(probe[1])!;
      const cellKey = {
        keyGuid: keyGuidFromIdentity(identityValueFor(key.passphrase).reveal()),
        key: deriveKey(key.passphrase.reveal(), 'sql2017'),
      };
      return [{ probe: encryptByKey(cellKey, Buffer.from(probe[2], 'hex')), key_guid: guidOf(key.passphrase) }];
    }
    if (sql.includes('cellcrypt.key_derivation')) return [];
    const dropped = /DROP SYMMETRIC KEY \[([^\]]+)\]$/.exec(sql);
    if (dropped) {
      state.keys = state.keys.filter((k) => k.name !== dropped[1]);
      return [];
    }
    if (
      sql.includes('DROP SYMMETRIC KEY') ||
      sql.includes('DROP CERTIFICATE') ||
      sql.includes('DROP MASTER KEY') ||
      sql === 'CLOSE ALL SYMMETRIC KEYS'
    ) {
      if (sql.includes('DROP MASTER KEY')) state.masterKey = false;
      if (sql.includes('DROP CERTIFICATE')) state.certificates = [];
      if (sql.includes('QUOTENAME(name)')) state.keys = [];
      return [];
    }
    if (sql.includes('COLLATE Latin1_General_BIN2 THEN 1 ELSE 0 END AS ok')) return [{ ok: 1 }];
    // ---- columns ----
    if (column) {
      const byKey = state.cells.get(columnLabel) ?? new Map<string, number>();
      state.cells.set(columnLabel, byKey);
      const plaintext = state.plaintext.get(columnLabel) ?? 0;
      const converted = plaintext === 0;
      if (sql.includes(') AS blocker FROM ')) return state.blockers?.get(columnLabel) ?? [];
      if (sql.includes('sys.sp_refreshview')) return [{ refreshed: state.refreshed ?? 0 }];
      if (sql.includes('THEN 0 ELSE 1 END AS present')) return [{ present: 1 }];
      if (sql.startsWith('SELECT c.name, ty.name AS type_name')) {
        // max_length in bytes, as sys.columns has it: nvarchar(n) is 2n.
        return [
          {
            name: column.column,
            type_name: converted ? 'varbinary' : 'nvarchar',
            max_length: converted ? 8000 : 2 * column.maxLength,
          },
          { name: column.primaryKey, type_name: 'uniqueidentifier', max_length: 16 },
        ];
      }
      if (sql.includes('i.is_primary_key = 1')) return [{ name: column.primaryKey }];
      if (sql.includes('DATALENGTH(CONVERT(nvarchar(max)')) return [{ n: 0, examples: null }];
      // every shadow round-trips
      if (sql.startsWith('SELECT COUNT(*) AS n FROM') && sql.includes('DECRYPTBYKEY')) return [{ n: 0 }];
      if (sql.startsWith('SELECT COUNT(')) return [{ n: converted ? 0 : plaintext }];
      if (sql.startsWith('ALTER TABLE') && sql.includes(' ADD ')) return [];
      if (sql.includes('DECLARE @written')) {
        // Rows are encrypted in primary-key order: the first `done` have a cell; a batch takes the
        // next `limit` after its cursor (if any) that have none.
        const guid = guids(sql)[0];
        const limit = Number(/TOP \((\d+)\)/.exec(sql)![1]);
        const ids = rowIds(columnLabel, plaintext);
        const done = [...byKey.values()].reduce((a, b) => a + b, 0);
        const after = cursorIn(sql);
        const start = Math.max(done, after === undefined ? 0 : ids.indexOf(after) + 1);
        const written = Math.min(limit, Math.max(0, plaintext - start));
        byKey.set(guid, (byKey.get(guid) ?? 0) + written);
        return [{ written, lost: 0, last: written ? ids[start + written - 1] : null }];
      }
      if (sql.includes('DECLARE @moved')) {
        const [to, from] = guids(sql); // ENCRYPTBYKEY(to, ...) comes before WHERE ... = from
        const written = byKey.get(from) ?? 0;
        byKey.set(from, 0);
        byKey.set(to, (byKey.get(to) ?? 0) + written);
        return [{ written, undecryptable: 0 }];
      }
      if (sql.includes(' REBUILD WITH (ONLINE = OFF)')) return [];
      if (sql.includes('DECLARE @n int')) return [{ n: 0 }];
      if (sql.includes('MAX(DATALENGTH')) return [{ n: 100 }];
      if (sql.includes('TABLOCKX')) return [];
      if (sql.includes('DROP COLUMN')) {
        state.plaintext.set(columnLabel, 0);
        return [];
      }
      if (sql.includes('GROUP BY SUBSTRING')) {
        return [...byKey]
          .filter(([, n]) => n > 0)
          .map(([guid, n]) => ({
            key_guid: guidStringToBytes(guid),
            cells: n,
            undecryptable: sql.includes('SUM(CASE') ? 0 : null,
          }));
      }
      if (sql.includes('DECLARE @batch')) {
        // ENCRYPTBYKEY(to, ...) comes before WHERE ... = from, and that before the cursor.
        const [to, from] = guids(sql);
        const limit = Number(/TOP \((\d+)\)/.exec(sql)![1]);
        const rows = rowsOf(columnLabel, byKey);
        const after = cursorIn(sql);
        const from0 = after === undefined ? 0 : rows.findIndex((r) => r.id === after) + 1;
        const batch = rows
          .slice(from0)
          .filter((r) => r.key === from)
          .slice(0, limit);
        for (const row of batch) row.key = to;
        byKey.set(from, (byKey.get(from) ?? 0) - batch.length);
        byKey.set(to, (byKey.get(to) ?? 0) + batch.length);
        return [{ written: batch.length, undecryptable: 0, last: batch.length ? batch[batch.length - 1].id : null }];
      }
      if (sql.includes('SUM(CONVERT(bigint, DATALENGTH'))
        return [{ n: [...byKey.values()].reduce((a, b) => a + b, 0) * 100 }];
      if (sql.includes('DECLARE @start uniqueidentifier = NEWID()'))
        return (state.samples.get(columnLabel) ?? []).map((s) => ({ id: s.id.toUpperCase(), cell: s.cell }));
    }
    return new Error(`fake SQL Server: unrecognised statement: ${sql.slice(0, 200)}`);
  };
}
