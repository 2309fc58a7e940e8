import { guidStringToBytes } from '../../cellcrypt';
import type {
  ActivateDryRun,
  ColumnRef,
  DryRunRenderer,
  InstallDryRun,
  KeyChangeDryRun,
  RewrapDryRun,
} from '../engine';
import { columnStatements as S, CHUNK_PAGES } from './column-statements';
import { keyStatements as K } from './key-statements';
import { quotePgIdentifier as q, quotePgLiteral } from './quote';

/**
 * `--dry-run` on PostgreSQL/PGlite: the statements the engine runs, with their values written in
 * as PostgreSQL literals (GUIDs as the `bytea` the cells hold) and every secret as `'***'`.
 */
const SECRET = Symbol('secret');
/** SQL written in place of a value (a key GUID the install has not derived yet is looked up by name). */
class Raw {
  constructor(readonly sql: string) {}
}
type Value = string | number | null | Buffer | Raw | typeof SECRET;

/** Writes each value in place of its `?`; a `?` inside a quoted name or a string literal is text. */
function render(sql: string, values: readonly Value[]): string {
  let index = 0;
  const text = sql.replace(/"(?:[^"]|"")*"|'(?:[^']|'')*'|\?/g, (token) => {
    if (token !== '?') return token;
    if (index >= values.length) throw new Error(`dry run: more placeholders than values in ${sql.slice(0, 60)}`);
    return literal(values[index++]);
  });
  if (index !== values.length) throw new Error(`dry run: ${values.length - index} value(s) left over`);
  return text;
}

function literal(value: Value): string {
  if (value === SECRET) return `'***'`;
  if (value === null) return 'null';
  if (value instanceof Raw) return value.sql;
  if (typeof value === 'number') return String(value);
  if (Buffer.isBuffer(value)) return quotePgLiteral(`\\x${value.toString('hex')}`);
  return quotePgLiteral(value);
}

/** A column's name for a comment line: quoted, and no line break can end the comment early. */
const label = (column: ColumnRef) =>
  `${q(column.table)}.${q(column.column)}`.replace(/[\u0000-\u001f\u2028\u2029]/g, ' ');

const guid = (keyGuid: string) => guidStringToBytes(keyGuid);
const keyGuidByName = (name: string) =>
  new Raw(`(select key_guid from cellcrypt.symmetric_keys where name = ${quotePgLiteral(name)})`);

function openKeys(certificate: string, names: readonly string[]): string[] {
  return [render(K.openMasterKey, [SECRET]), ...names.map((name) => render(K.openSymmetricKey, [name, certificate]))];
}

const createKey = (name: string, certificate: string) =>
  render(K.createSymmetricKey, [name, SECRET, SECRET, certificate, 'sql2017']);

function install(plan: InstallDryRun): string[] {
  const { certificate, keyName } = plan;
  const keys = [
    'begin',
    ...(plan.existing.masterKey ? [] : [render(K.createMasterKey, [SECRET])]),
    render(K.openMasterKey, [SECRET]),
    ...(plan.existing.certificate ? [] : [render(K.createCertificate, [certificate, `cellcrypt ${certificate}`])]),
    ...(plan.existing.key ? [] : [createKey(keyName, certificate)]),
    'commit',
  ];
  const columns = plan.columns.flatMap((column) => [
    `-- ${label(column)}: shadow column, batches of encryption, then the proof and the swap`,
    ...S.addShadow(column, column.sizeBytes),
    ...openKeys(certificate, [keyName]),
    render(S.encryptBatch(column), [null, null, plan.batchSize, keyGuidByName(keyName)]),
    S.lockTable(column),
    S.countShadowMismatches(column),
    ...S.swap(column),
  ]);
  return [...keys, ...columns];
}

function changeKey(plan: KeyChangeDryRun): string[] {
  const { certificate, from, to } = plan;
  const create = to.exists ? [] : [createKey(to.name, certificate)];
  // A generated key's GUID is known only when the real run generates it: name the key instead.
  const toGuid = to.keyGuid ? guid(to.keyGuid) : keyGuidByName(to.name);
  const toLabel = to.keyGuid ?? `${to.name} (its GUID is known when the real run generates it)`;
  const prove = [
    `-- verify: 0 cells on ${from.keyGuid}, cell count unchanged, every cell decrypts under ${toLabel}`,
    ...plan.columns.map((column) => S.census(column, true)),
    render(K.dropSymmetricKey, [from.name]),
  ];
  if (plan.batchSize === undefined) {
    const [a, b] = [guid(from.keyGuid), toGuid];
    return [
      'begin',
      ...openKeys(certificate, [from.name]),
      ...create,
      render(K.openSymmetricKey, [to.name, certificate]),
      ...plan.columns.map((column) => S.lockTable(column)),
      ...plan.columns.flatMap((column) => [
        `-- ${label(column)}: once per range of ${CHUNK_PAGES} pages (the table is locked)`,
        render(S.reencryptChunk(column), [a, b, b, '(0,0)', `(${CHUNK_PAGES},0)`, a]),
      ]),
      ...prove,
      'commit',
    ];
  }
  return [
    ...(create.length ? ['begin', ...openKeys(certificate, [from.name]), ...create, 'commit'] : []),
    '-- one transaction per batch, until no cell is left on the old key:',
    'begin',
    ...openKeys(certificate, [from.name, to.name]),
    ...plan.columns.flatMap((column) => [
      `-- ${label(column)}: one batch of ${plan.batchSize} cell(s)`,
      render(S.reencryptBatch(column), [toGuid, guid(from.keyGuid), plan.batchSize!]),
    ]),
    'commit',
    'begin',
    ...openKeys(certificate, [from.name, to.name]),
    ...plan.columns.map((column) => S.lockTable(column)),
    ...prove,
    'commit',
  ];
}

function activate(plan: ActivateDryRun): string[] {
  const { certificate, keyName } = plan;
  return [
    'begin',
    ...K.reset,
    render(K.createMasterKey, [SECRET]),
    render(K.openMasterKey, [SECRET]),
    render(K.createCertificate, [certificate, `cellcrypt ${certificate}`]),
    createKey(keyName, certificate),
    render(K.openSymmetricKey, [keyName, certificate]),
    `-- verify: every cell decrypts under ${keyName}`,
    ...plan.columns.map((column) => S.census(column, true)),
    'commit',
  ];
}

function rewrap(plan: RewrapDryRun): string[] {
  const { from, to, keys } = plan;
  return [
    'begin',
    ...openKeys(from, keys),
    render(K.createCertificate, [to, `cellcrypt ${to}`]),
    ...keys.map((name) => render(K.moveSymmetricKey, [name, from, to])),
    render(K.dropCertificate, [from]),
    render(K.changeMasterKeyPassword, [SECRET, SECRET]),
    `-- verify: the new password and ${to} open every key, and each key decrypts a probe ` +
      'encrypted in Node under the key its passphrase derives (cellcrypt.decrypt_by_key)',
    ...openKeys(to, keys),
    'commit',
  ];
}

export const postgresDryRun: DryRunRenderer = { install, changeKey, activate, rewrap };
