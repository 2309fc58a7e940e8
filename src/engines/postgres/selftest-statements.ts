import { quotePgIdentifier as q } from './quote';

/**
 * The SQL of `cellcrypt selftest` on PostgreSQL and PGlite (see selftest.ts). Values are bound
 * (`?`); names go through the one quoting helper. No statement here carries a secret: the keys
 * are opened by the key hierarchy's own calls before any of these run.
 */
export const selftestStatements = {
  /** template0: empty and UTF8 whatever template1 holds (cellcrypt needs UTF8, engine.ts prepare). */
  createDatabase: (name: string) => `create database ${q(name)} encoding 'UTF8' template template0`,
  /** WITH (FORCE), PostgreSQL 13+: ends a session a failed run left behind. */
  dropDatabase: (name: string) => `drop database if exists ${q(name)} with (force)`,
  userObjects:
    `select n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace ` +
    `where c.relkind in ('r', 'v', 'm', 'p', 'f', 'S') and n.nspname not in ('pg_catalog', 'information_schema') ` +
    `and left(n.nspname, 8) <> 'pg_toast' ` +
    // An extension's own tables (a template with PostGIS) are not the DBA's objects.
    `and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e') order by 1`,
  serverFacts:
    `select version() as version, current_setting('server_version_num')::int as version_num, ` +
    `current_setting('server_encoding') as encoding, ` +
    `(select extversion from pg_extension where extname = 'pgcrypto') as pgcrypto`,
  /** The bytes of a key the transaction opened (the hierarchy keeps them in a transaction-local setting). */
  keyMaterial:
    `select cellcrypt.opened(cellcrypt.key_setting(key_guid)) as key_bytes ` +
    `from cellcrypt.symmetric_keys where name = ?::text and certificate = ?::text`,
  encryptBytes: `select cellcrypt.encrypt_by_key(?::bytea, ?::bytea, ?::bytea) as cell`,
  encryptText: `select cellcrypt.encrypt_by_key(?::bytea, cellcrypt.utf16le(?::text), ?::bytea) as cell`,
  decrypt: `select cellcrypt.decrypt_by_key(?::bytea, ?::bytea) as plain`,
  tableLocks:
    `select mode from pg_locks where pid = pg_backend_pid() and locktype = 'relation' ` +
    `and relation = to_regclass(?::text) and granted order by mode`,
  /** Local to the transaction it runs in: the second session's read waits half a second at most. */
  shortLockTimeout: `set local lock_timeout = '500ms'`,
  readTable: (table: string) => `select count(*)::int as n from ${q(table)}`,
  holdTable: (table: string) => `lock table ${q(table)} in access exclusive mode`,
  backendPid: 'select pg_backend_pid() as pid',
  waitingOn: 'select pid from pg_stat_activity where ?::int = any(pg_blocking_pids(pid))',
  terminate: 'select pg_terminate_backend(?::int) as ended',
} as const;

/** The lock mode lockTable takes (`lock table ... in access exclusive mode`): it excludes every other session. */
export const EXCLUSIVE_MODE = 'AccessExclusiveLock';

/** SQLSTATE lock_not_available: what a statement gets when lock_timeout runs out. */
export const LOCK_TIMEOUT_SQLSTATE = '55P03';
