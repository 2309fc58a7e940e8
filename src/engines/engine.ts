import type { Knex } from 'knex';
import type { EngineKind } from '../config/connection-target';
import type { Secret } from '../common/secret';
import type { Derivation } from '../cellcrypt';
import type { Db } from '../common/upsert';

export type { Db };

/**
 * The boundary between policy (src/core: what to encrypt, when a key may change) and the
 * databases that do it. Modelled on kysely's Dialect/DialectAdapter split: a small interface
 * plus capability flags; every engine folder repeats the same file set. Engines answer "do this,
 * report that" and never decide anything.
 *
 * Key semantics follow SQL Server: a master key protected by a password, a certificate
 * protected by the master key, one symmetric key per key generation protected by the
 * certificate. Keys are opened explicitly and only inside a transaction (`trx`): on PostgreSQL
 * they vanish at commit/rollback, so a pooled connection can never keep a key open.
 */

/** A registered sensitive column as the engine needs it. */
export interface ColumnRef {
  readonly table: string;
  readonly column: string;
  readonly primaryKey: string;
  /** Declared length in UTF-16 code units (nvarchar(n)). */
  readonly maxLength: number;
}

export type ColumnKind = 'text' | 'binary' | 'other';

export interface ColumnShape {
  readonly tableExists: boolean;
  readonly column?: {
    readonly dataType: string;
    readonly kind: ColumnKind;
    /**
     * The declared length from the catalog, in the type's own units (characters; UTF-16 code
     * units for nvarchar); null when unbounded (nvarchar(max), text). classifyColumn refuses a
     * text column whose length is not the registry's. Undefined: the engine did not read it.
     */
    readonly maxLength?: number | null;
  };
  readonly shadowExists: boolean;
  readonly primaryKey?: { readonly dataType: string; readonly isUuid: boolean; readonly isPrimaryKey: boolean };
}

export interface SymmetricKeyInfo {
  readonly name: string;
  /** SQL Server's string form, upper case. */
  readonly keyGuid: string;
  readonly algorithm: string;
  /** How KEY_SOURCE became key bytes: SQL Server 2016 (SHA-1) or 2017+ (SHA-512). */
  readonly derivation: Derivation;
  readonly createdAt: Date;
}

export interface KeyHierarchy {
  readonly masterKey: boolean;
  readonly certificates: readonly string[];
  readonly symmetricKeys: readonly SymmetricKeyInfo[];
}

export interface SymmetricKeySpec {
  readonly name: string;
  readonly certificate: string;
  readonly keySource: Secret;
  readonly identityValue: Secret;
  /** Default sql2017; activate recreates a key under the derivation its cells were written with. */
  readonly derivation?: Derivation;
}

/** Non-null cells of one column, grouped by the key GUID at the head of each cell. */
export interface CellCensus {
  readonly cells: number;
  readonly byKey: Readonly<Record<string, number>>;
  /** Cells no open key decrypts with the row's authenticator (null when not checked). */
  readonly undecryptable: number | null;
}

export interface KeyHierarchyOps {
  read(db: Db): Promise<KeyHierarchy>;
  createMasterKey(trx: Knex.Transaction, password: Secret): Promise<void>;
  /** Opens the master key for this transaction; refuses a wrong password. */
  openMasterKey(trx: Knex.Transaction, password: Secret): Promise<void>;
  createCertificate(trx: Knex.Transaction, name: string): Promise<void>;
  /** Returns the key GUID (string form) the server derived from the identity value. */
  createSymmetricKey(trx: Knex.Transaction, spec: SymmetricKeySpec): Promise<string>;
  openSymmetricKey(trx: Knex.Transaction, name: string, certificate: string): Promise<void>;
  dropSymmetricKey(trx: Knex.Transaction, name: string): Promise<void>;
  /**
   * Closes every key this transaction opened (`capabilities.keysOutliveTransactions`: SQL
   * Server's belong to the session and would stay open on a pooled connection; PostgreSQL's
   * vanish at commit, and its close does nothing).
   */
  closeAll(trx: Knex.Transaction): Promise<void>;
  /**
   * Whether the master key opens by itself for the applications that read cells
   * (`capabilities.masterKeyOpensByItself`; SQL Server: the service master key's copy, false
   * after a restore on another server, error 15581). Engines without that notion say true.
   */
  opensByItself(db: Db, keyName: string, certificate: string): Promise<boolean>;
  /** Removes a certificate that protects no key any more (rewrap, after moving the keys off it). */
  dropCertificate(trx: Knex.Transaction, name: string): Promise<void>;
  /**
   * Puts an open symmetric key under another certificate and takes it off the old one (SQL
   * Server: ALTER SYMMETRIC KEY ADD ENCRYPTION BY CERTIFICATE, then DROP ENCRYPTION BY
   * CERTIFICATE). The key bytes, its GUID and every cell stay as they are; the key must be open.
   */
  moveSymmetricKey(trx: Knex.Transaction, name: string, from: string, to: string): Promise<void>;
  /**
   * Protects the master key with a new password and removes the old one (SQL Server: ALTER MASTER
   * KEY ADD / DROP ENCRYPTION BY PASSWORD). The master key itself, and what it protects, is kept.
   */
  changeMasterKeyPassword(trx: Knex.Transaction, from: Secret, to: Secret): Promise<void>;
  /** DECRYPTBYKEY of one blob (no authenticator) with the keys open in `trx`; null when none decrypts it. */
  decrypt(trx: Knex.Transaction, cell: Buffer): Promise<Buffer | null>;
  /** Removes master key, certificates and symmetric keys: activate rebuilds them from the saved key. */
  reset(trx: Knex.Transaction): Promise<void>;
  /**
   * What `reset` would break or be stopped by: objects not cellcrypt's that depend on the master
   * key or on our certificates (SQL Server: another application's certificates and keys, module
   * signatures, users mapped to our certificate), each named `<kind> <name>`; [] when none.
   * activate refuses on any, before its first change.
   */
  foreignDependents(db: Db): Promise<string[]>;
  /** Encrypts and decrypts a probe with an open key (Dynamics' encryption/decryption test). */
  roundTrip(trx: Knex.Transaction, keyGuid: string, probe: Secret): Promise<boolean>;
}

export interface ColumnOps {
  describe(db: Db, ref: ColumnRef): Promise<ColumnShape>;
  /** Non-null values whose UTF-16 form is longer than `maxBytes`: count and a few primary keys. */
  findTooLong(db: Db, ref: ColumnRef, maxBytes: number): Promise<{ count: number; examples: string[] }>;
  countNonNull(db: Db, ref: ColumnRef, which: 'plaintext' | 'shadow'): Promise<number>;
  /**
   * Objects that would stop the swap or could not be kept through it, named for the refusal
   * before any change (PostgreSQL: materialized views over the column; views are kept).
   */
  findBlockers(db: Db, ref: ColumnRef): Promise<string[]>;
  addShadow(trx: Knex.Transaction, ref: ColumnRef, sizeBytes: number): Promise<void>;
  /**
   * Encrypts up to `limit` rows not yet in the shadow column; `lost` counts non-null plaintext
   * that came out NULL. An engine may return `last`, a cursor (the last primary key it wrote)
   * that the caller passes back as `after` so the next batch starts there instead of
   * re-reading the rows already done; it is only an optimisation (the final reconcile step
   * catches any row a cursor skipped).
   */
  encryptBatch(
    trx: Knex.Transaction,
    ref: ColumnRef,
    keyGuid: string,
    limit: number,
    after?: string,
  ): Promise<{ written: number; lost: number; last?: string }>;
  /**
   * After the swap committed (outside any transaction): rewrites the table so the dropped
   * plaintext column's bytes leave its data files (SQL Server: ALTER TABLE … REBUILD;
   * PostgreSQL: VACUUM FULL). Returns what it did, for the log. Older backups and the
   * transaction log (WAL) still hold the plaintext.
   */
  reclaimSpace(db: Db, ref: ColumnRef): Promise<string>;
  /** Re-encrypts rows whose shadow cell does not decrypt to the current plaintext; returns how many. */
  reconcile(trx: Knex.Transaction, ref: ColumnRef, keyGuid: string): Promise<number>;
  /** Rows whose shadow does not round-trip to the plaintext (must be 0 before the swap). */
  countShadowMismatches(trx: Knex.Transaction, ref: ColumnRef): Promise<number>;
  /** Largest cell in the shadow column, in bytes. */
  maxShadowBytes(trx: Knex.Transaction, ref: ColumnRef): Promise<number>;
  lockTable(trx: Knex.Transaction, ref: ColumnRef): Promise<void>;
  /** Drops the plaintext column and gives the shadow its name. */
  swap(trx: Knex.Transaction, ref: ColumnRef): Promise<void>;
  census(db: Db, ref: ColumnRef, options: { decrypt: boolean }): Promise<CellCensus>;
  /**
   * The cells a decrypting census counts as undecryptable (no open key decrypts them with the
   * row's authenticator: damaged, truncated, moved from another row or on a key not here), in
   * one statement: how many, and the primary keys (string form) of the first `limit` in this
   * engine's primary-key order, so a DBA can restore those rows. The keys must be open on `db`;
   * `limit` is at least 1 (the count comes with the rows: none, none counted).
   */
  findUndecryptable(db: Db, ref: ColumnRef, limit: number): Promise<{ count: number; ids: string[] }>;
  /**
   * One batch of a batched key change, inside the database (both keys open): walks the column
   * in primary-key order from after `after` (the start when undefined) and re-encrypts the
   * cells on `fromGuid` to `toGuid`, at most `limit` rows per batch. Cells that do not decrypt
   * are left as they are and counted. `last` is the cursor to pass as `after` next, undefined
   * once the walk has reached the end of the column (cells written behind it meanwhile are the
   * caller's final full count to find).
   */
  reencryptBatch(
    trx: Knex.Transaction,
    ref: ColumnRef,
    fromGuid: string,
    toGuid: string,
    limit: number,
    after?: string,
  ): Promise<{ written: number; undecryptable: number; last?: string }>;
  /**
   * The one-transaction key change. The table is locked by the caller. Moves every cell on
   * `fromGuid` to `toGuid`, reporting progress through `onStep` (SQL Server: once, after its one
   * set-based UPDATE; PostgreSQL: per chunk of pages), and returns how many it moved and how
   * many it found that do not decrypt (never overwritten; 0 where the engine does not check:
   * PostgreSQL's pass keeps each cell's plaintext block, so a damaged cell stays damaged, and the
   * caller's proof before commit rolls the change back).
   */
  reencryptColumn(
    trx: Knex.Transaction,
    ref: ColumnRef,
    fromGuid: string,
    toGuid: string,
    onStep: (moved: number) => void,
  ): Promise<{ moved: number; undecryptable: number }>;
  /**
   * The client-side path of a key change (`capabilities.clientSideReencrypt`): reads the next
   * `limit` rows whose primary key sorts after `afterId`, in primary-key order, locked for
   * update, and returns those whose cell is on `keyGuid`, with `last`, the primary key to pass
   * as `afterId` next (undefined once the column is done), so a caller walks a column once.
   */
  readCellsOnKey(
    trx: Knex.Transaction,
    ref: ColumnRef,
    keyGuid: string,
    afterId: string | undefined,
    limit: number,
  ): Promise<{ cells: Array<{ id: string; cell: Buffer }>; last?: string }>;
  /** Writes cells back by primary key in one statement; returns how many rows it wrote. */
  writeCells(
    trx: Knex.Transaction,
    ref: ColumnRef,
    cells: ReadonlyArray<{ id: string; cell: Buffer }>,
  ): Promise<number>;
  /** Total bytes of the non-null cells (the dry-run estimate of what a key change rewrites). */
  cellBytes(db: Db, ref: ColumnRef): Promise<number>;
  /** Up to `limit` random non-null cells with their row's primary key (string form). */
  sampleCells(db: Db, ref: ColumnRef, limit: number): Promise<Array<{ id: string; cell: Buffer }>>;
}

/** A column of a dry run with the size of its encrypted cells. */
export interface DryRunColumn extends ColumnRef {
  readonly sizeBytes: number;
}

export interface InstallDryRun {
  readonly certificate: string;
  readonly keyName: string;
  /** What exists already: an installed org's second install creates nothing. */
  readonly existing: { readonly masterKey: boolean; readonly certificate: boolean; readonly key: boolean };
  /** The registered columns still holding plaintext. */
  readonly columns: readonly DryRunColumn[];
  /** Rows per conversion batch, as install runs them (core's DEFAULT_CONVERSION_BATCH). */
  readonly batchSize: number;
}

export interface KeyChangeDryRun {
  readonly certificate: string;
  readonly from: { readonly name: string; readonly keyGuid: string };
  /**
   * `exists`: a resumed change, whose key the first batch committed. No `keyGuid`: a generated
   * key, whose GUID is known only when the real run generates it (the statements name the key).
   */
  readonly to: { readonly name: string; readonly keyGuid?: string; readonly exists: boolean };
  readonly columns: readonly ColumnRef[];
  /** Cells per transaction; undefined: one transaction. */
  readonly batchSize?: number;
}

export interface ActivateDryRun {
  readonly certificate: string;
  readonly keyName: string;
  readonly columns: readonly ColumnRef[];
}

/** What a rewrap does: every key moves from one certificate to the next; the master key gets a new password. */
export interface RewrapDryRun {
  readonly from: string;
  readonly to: string;
  /** Every cellcrypt symmetric key (more than one only while a key change is in flight). */
  readonly keys: readonly string[];
}

/**
 * The statements an operation would send, in this engine's own SQL, for `--dry-run`. No
 * renderer is ever given a secret: every secret's slot prints as this engine's `'***'` literal,
 * so what a DBA reads is SQL that parses and has nothing to leak.
 */
export interface DryRunRenderer {
  install(plan: InstallDryRun): string[];
  changeKey(plan: KeyChangeDryRun): string[];
  activate(plan: ActivateDryRun): string[];
  rewrap(plan: RewrapDryRun): string[];
}

/** A knex schema-builder definition of one of cellcrypt's own tables. */
export type TableDefinition = (table: Knex.CreateTableBuilder, knex: Knex) => void;

/** A registered column as a script converts it. */
export interface ScriptColumn extends DryRunColumn {
  /** The most UTF-16 bytes a value may have (its nvarchar(n), and one 8000-byte cell): longer is refused. */
  readonly plaintextBytes: number;
}

/**
 * A known-answer test of the key a script creates: Node encrypted `plaintext` under the key the
 * key file derives (`derivation`), so the server decrypting `cell` with the key it made from
 * KEY_SOURCE proves both are the same key before any cell is written. Not a secret: AES with a
 * known plaintext reveals nothing the key GUID in every cell does not.
 */
export interface ScriptProbe {
  readonly keyGuid: string;
  readonly plaintext: Buffer;
  readonly cell: Buffer;
  readonly derivation: Derivation;
}

/** What `cellcrypt script` prints, decided by core; the engine writes it in its own SQL. */
export interface ScriptPlan {
  readonly operation: 'install' | 'change-key' | 'activate';
  readonly certificate: string;
  /** The generation the script creates (install, activate) or moves to (change-key). */
  readonly keyName: string;
  /** change-key: the generation the cells are on now. */
  readonly fromKeyName?: string;
  readonly columns: readonly ScriptColumn[];
  /** install: cellcrypt's own tables, by schema and name. */
  readonly tables: { readonly schema: string; readonly definitions: ReadonlyArray<readonly [string, TableDefinition]> };
  /** The org lock's name (core's ORG_KEY_LOCK): the script holds the lock the engine's operations take. */
  readonly lockName: string;
  /** For `keyName`: install and activate create it from the key file, change-key moves the cells to it. */
  readonly probe: ScriptProbe;
}

export interface ScriptRenderer {
  render(plan: ScriptPlan): string;
}

export interface EngineDiagnosis {
  readonly check: string;
  readonly outcome: 'ok' | 'warn' | 'fail';
  readonly detail: string;
  readonly hint?: string;
}

export type KeyPermission = 'read-key' | 'change-key' | 'activate';

export interface PermissionCheck {
  readonly granted: boolean;
  readonly user: string;
  /** What grants it on this engine, for the refusal message. */
  readonly grantedBy: string;
}

/**
 * What an engine can do, as flags core reads (kysely's adapter flags are the model): every
 * method of the interface exists on every engine, and a capability says whether core may use it.
 */
export interface EngineCapabilities {
  /** DDL rolls back with the transaction (PostgreSQL yes; SQL Server mostly). */
  readonly transactionalDdl: boolean;
  /** Only one connection exists (PGlite): never query outside the open transaction. */
  readonly singleConnection: boolean;
  /** Opened keys belong to the session, not the transaction (SQL Server): close them before it ends. */
  readonly keysOutliveTransactions: boolean;
  /** Applications rely on the master key opening by itself (SQL Server), which a restore can break. */
  readonly masterKeyOpensByItself: boolean;
  /** Cells can stream through the TypeScript codec (`readCellsOnKey` / `writeCells`). */
  readonly clientSideReencrypt: boolean;
  /**
   * The server may write statements with their bound parameters to its log (PostgreSQL's
   * log_statement / log_min_duration_statement), so core checks before a key operation that
   * its secrets stay out (`diagnose`, check `server log`). SQL Server's error log carries none.
   */
  readonly mayLogParameters: boolean;
}

export interface Engine {
  readonly kind: EngineKind;
  readonly knex: Knex;
  readonly capabilities: EngineCapabilities;
  /** The one identifier-quoting helper of this engine. */
  quoteIdentifier(name: string): string;
  /** Creates or upgrades the engine's own objects (schema `cellcrypt`, functions). Idempotent. */
  prepare(): Promise<void>;
  readonly keys: KeyHierarchyOps;
  readonly columns: ColumnOps;
  /** Dynamics-shaped demo tables (`cellcrypt demo seed`). */
  readonly demo: DemoOps;
  /** Renders what an operation would send (`--dry-run`); pure, needs no connection. */
  readonly dryRun: DryRunRenderer;
  /**
   * A per-org lock that lives as long as the caller holds it (a session lock of the engine:
   * pg_advisory_lock, sp_getapplock); undefined when another holder has it. Never waits.
   */
  tryLock(name: string): Promise<(() => Promise<void>) | undefined>;
  /** Engine-specific health checks for `doctor` (server version, settings that could leak secrets). */
  diagnose(): Promise<EngineDiagnosis[]>;
  /** Whether the connected user holds a key permission (database roles on PostgreSQL). */
  checkPermission(permission: KeyPermission): Promise<PermissionCheck>;
  /** The engine's half of `cellcrypt selftest`; absent on an engine without one. */
  readonly selftest?: SelftestOps;
  close(): Promise<void>;
}

export interface DemoTableSpec {
  readonly table: string;
  readonly primaryKey: string;
  readonly secrets: ReadonlyArray<{ column: string; maxLength: number }>;
}

export interface DemoOps {
  readonly tables: readonly DemoTableSpec[];
  createTable(db: Db, spec: DemoTableSpec): Promise<void>;
  insertRows(db: Db, spec: DemoTableSpec, rows: number): Promise<number>;
}

/** One line of a `cellcrypt selftest` report: what was checked and what was seen. */
export interface SelftestFinding {
  readonly check: string;
  readonly outcome: 'ok' | 'fail' | 'skipped';
  /** What was seen; never a secret (key bytes are described by length and offset, never shown). */
  readonly detail: string;
  readonly hint?: string;
}

/** A value for ENCRYPTBYKEY: text as the engine's nvarchar (UTF-16LE), bytes as they are. */
export type SelftestPlaintext = { readonly text: string } | { readonly bytes: Buffer };

/**
 * The engine's half of `cellcrypt selftest` (core/selftest/): its throw-away database, the facts
 * only it can judge, and the SQL primitives of the checks that core writes once for every engine.
 */
export interface SelftestOps {
  /** CREATE DATABASE `name` (empty) on the server this engine is connected to. */
  createDatabase(name: string): Promise<void>;
  /** Drops it, ending any session still in it. */
  dropDatabase(name: string): Promise<void>;
  /** The user objects of the connected database: a `--database` the DBA made must have none. */
  userObjects(): Promise<string[]>;
  /** The server's facts this engine relies on, each judged (SQL Server: version, trace flag 4631, ...). */
  serverFacts(): Promise<SelftestFinding[]>;
  /** What the server holds for an open key (SQL Server: DECRYPTBYCERT of sys.key_encryptions, framed). */
  keyMaterial(trx: Knex.Transaction, keyName: string, certificate: string): Promise<Buffer | null>;
  /** ENCRYPTBYKEY under the open key `keyGuid`, with the authenticator when one is given. */
  encrypt(
    trx: Knex.Transaction,
    keyGuid: string,
    plaintext: SelftestPlaintext,
    authenticator?: Buffer,
  ): Promise<Buffer | null>;
  /** DECRYPTBYKEY with the open keys and the authenticator when given; null when none decrypts it. */
  decrypt(trx: Knex.Transaction, cell: Buffer, authenticator?: Buffer): Promise<Buffer | null>;
  /** The locks this transaction holds on `table`, and whether one excludes every other session. */
  tableLocks(trx: Knex.Transaction, table: string): Promise<{ modes: string[]; exclusive: boolean }>;
  /**
   * From `second`, another session: reads `table`, which the caller holds, with a short lock
   * timeout. `got` is the error code the server gave, undefined when the read went through.
   */
  lockTimeoutError(second: Db, table: string): Promise<{ expected: string; got?: string }>;
  /**
   * Holds `tables` exclusively from `second` until another session's statement waits on them,
   * then ends that session (SQL Server KILL, PostgreSQL pg_terminate_backend) and lets go: a
   * connection lost in the middle of a batch. `done` says whom it ended.
   */
  interruptNextStatement(second: Db, tables: readonly string[]): Promise<{ done: Promise<string> }>;
  /**
   * Runs a printed script (`cellcrypt script`) on the connected database with the engine's
   * command-line client, its secrets in the client's environment, never on its command line;
   * undefined when that client is not on the PATH. Absent: the engine prints no scripts.
   */
  runScript?(script: string, secrets: ScriptSecrets): Promise<{ exitCode: number; output: string } | undefined>;
}

/** The secrets a printed script takes, by what they are (the engine knows its variables' names). */
export type ScriptSecrets = Readonly<Record<'masterKeyPassword' | 'passphrase' | 'identityValue', Secret>>;
