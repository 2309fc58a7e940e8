import { KEY_PREFIX } from '../../common/key-names';
import type {
  ActivateDryRun,
  ColumnRef,
  DryRunRenderer,
  InstallDryRun,
  KeyChangeDryRun,
  RewrapDryRun,
} from '../engine';
import { columnStatements as S, guidLiteral, keyGuidOf } from './column-statements';
import { DEFAULT_TIMEOUTS } from './connect';
import { keyStatements as K, type SecretText } from './key-statements';
import { quoteTsqlIdentifier as q } from './quote';

/**
 * `--dry-run` on SQL Server: the T-SQL the engine sends, from the same statement builders, with
 * every secret as `N'***'` and every key GUID as the literal the engine inlines. Each entry is
 * one statement (or one commented step), so a reviewer can parse each on its own.
 */
const masked: SecretText = () => `N'***'`;

/** The default lockTimeout (connect.ts): a dry run shows the SET the engine sends with the default URL. */
const LOCK_TIMEOUT = DEFAULT_TIMEOUTS.lockTimeoutMs;

/** A column's name for a comment line: quoted, and no line break can end the comment early. */
const label = (column: ColumnRef) =>
  `${q(column.table)}.${q(column.column)}`.replace(/[\u0000-\u001f\u2028\u2029]/g, ' ');

function openKeys(certificate: string, names: readonly string[]): string[] {
  return [K.openMasterKey(masked), ...names.map((name) => K.openSymmetricKey(name, certificate))];
}

function install(plan: InstallDryRun): string[] {
  const { certificate, keyName } = plan;
  const keys = [
    'BEGIN TRANSACTION',
    ...(plan.existing.masterKey ? [] : [K.createMasterKey(masked)]),
    K.openMasterKey(masked),
    ...(plan.existing.certificate ? [] : [K.createCertificate(certificate)]),
    ...(plan.existing.key ? [] : [K.createSymmetricKey(keyName, certificate, masked)]),
    K.openSymmetricKey(keyName, certificate),
    K.closeAll(),
    'COMMIT TRANSACTION',
  ];
  const key = keyGuidOf(keyName);
  // The engine rebuilds a table once, after the last of its columns.
  const lastOfTable = (i: number) => !plan.columns.slice(i + 1).some((c) => c.table === plan.columns[i].table);
  const columns = plan.columns.flatMap((column, i) => [
    `-- ${label(column)}: shadow column, batches of encryption, then the proof and the swap`,
    S.addShadow(column, column.sizeBytes),
    ...openKeys(certificate, [keyName]),
    `-- the first batch; each next one starts after the last key the one before wrote ([pk] > last)`,
    S.encryptBatch(column, key, plan.batchSize),
    S.lockTable(column, LOCK_TIMEOUT),
    // Repeated under the lock: core's plaintextByteLimit, nvarchar(n)'s 2n bytes (the registry keeps
    // n small enough for every such value to fit one cell).
    S.findTooLong(column, 2 * column.maxLength),
    S.countShadowMismatches(column),
    S.swap(column, LOCK_TIMEOUT),
    ...(lastOfTable(i)
      ? [
          `-- after the commit, outside the transaction: the dropped plaintext's pages`,
          S.reclaimSpace(column, LOCK_TIMEOUT),
        ]
      : []),
  ]);
  return [...keys, ...columns];
}

function changeKey(plan: KeyChangeDryRun): string[] {
  const { certificate, from, to } = plan;
  const fromGuid = guidLiteral(from.keyGuid);
  const toGuid = to.keyGuid ? guidLiteral(to.keyGuid) : keyGuidOf(to.name);
  const toLabel = to.keyGuid ?? `${to.name} (its GUID is known when the real run generates it)`;
  const create = to.exists ? [] : [K.createSymmetricKey(to.name, certificate, masked)];
  const move = (limit: number, repeat: string) =>
    plan.columns.flatMap((column) => [
      `-- ${label(column)}: ${repeat}`,
      S.reencryptBatch(column, fromGuid, toGuid, limit),
    ]);
  const moveAll = plan.columns.flatMap((column) => [
    `-- ${label(column)}: one UPDATE of every cell on ${from.keyGuid} (the table is locked)`,
    S.reencryptColumn(column, fromGuid, toGuid),
  ]);
  const prove = [
    `-- verify: 0 cells on ${from.keyGuid}, cell count unchanged, every cell decrypts under ${toLabel}`,
    ...plan.columns.map((column) => S.census(column, true)),
    K.dropSymmetricKey(from.name),
  ];
  if (plan.batchSize === undefined) {
    return [
      'BEGIN TRANSACTION',
      ...openKeys(certificate, [from.name]),
      ...create,
      K.openSymmetricKey(to.name, certificate),
      ...plan.columns.map((column) => S.lockTable(column, LOCK_TIMEOUT)),
      ...moveAll,
      ...prove,
      K.closeAll(),
      'COMMIT TRANSACTION',
    ];
  }
  return [
    ...(create.length
      ? ['BEGIN TRANSACTION', ...openKeys(certificate, [from.name]), ...create, 'COMMIT TRANSACTION']
      : []),
    '-- one transaction per batch, until no cell is left on the old key:',
    'BEGIN TRANSACTION',
    ...openKeys(certificate, [from.name, to.name]),
    ...move(
      plan.batchSize,
      `one batch of ${plan.batchSize} cell(s); each next one starts after the last key the one before moved`,
    ),
    K.closeAll(),
    'COMMIT TRANSACTION',
    'BEGIN TRANSACTION',
    ...openKeys(certificate, [from.name, to.name]),
    ...plan.columns.map((column) => S.lockTable(column, LOCK_TIMEOUT)),
    ...prove,
    K.closeAll(),
    'COMMIT TRANSACTION',
  ];
}

function activate(plan: ActivateDryRun): string[] {
  const { certificate, keyName } = plan;
  return [
    'BEGIN TRANSACTION',
    ...K.reset(certificate, KEY_PREFIX),
    K.createMasterKey(masked),
    K.openMasterKey(masked),
    K.createCertificate(certificate),
    K.createSymmetricKey(keyName, certificate, masked),
    K.openSymmetricKey(keyName, certificate),
    `-- verify: every cell decrypts under ${keyName}`,
    ...plan.columns.map((column) => S.census(column, true)),
    K.closeAll(),
    'COMMIT TRANSACTION',
  ];
}

function rewrap(plan: RewrapDryRun): string[] {
  const { from, to, keys } = plan;
  return [
    'BEGIN TRANSACTION',
    ...openKeys(from, keys),
    K.createCertificate(to),
    ...keys.flatMap((name) => [K.addKeyEncryption(name, to), K.dropKeyEncryption(name, from)]),
    K.dropCertificate(from),
    K.changeMasterKeyPassword(masked),
    `-- verify: the new password and ${to} open every key, and each key decrypts a probe ` +
      'encrypted in Node under the key its passphrase derives (DECRYPTBYKEY)',
    K.closeAll(),
    ...openKeys(to, keys),
    K.closeAll(),
    'COMMIT TRANSACTION',
  ];
}

export const mssqlDryRun: DryRunRenderer = { install, changeKey, activate, rewrap };
