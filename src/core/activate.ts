import { keyTransaction } from './key-transaction';
import { DERIVATIONS, deriveKey, diagnoseCell, guidStringToBytes, type Derivation } from '../cellcrypt';
import type { Secret } from '../common/secret';
import { CellcryptError } from '../common/errors';
import { assessActivity } from './key-access';
import { CERTIFICATE_NAME, generationOf, keyName } from '../common/key-names';
import { generateMasterKeyPassword, identityValueFor, keyGuidFor } from '../cellcrypt/key-identity';
import { withOrgLock } from './org-lock';
import { requirePermission } from './permissions';
import { columnLabel } from './registry';
import { classifyColumn } from './column-state';
import type { Toolkit } from './toolkit';
import { writeAudit } from './toolkit-tables';

/**
 * `activate --key-file F`: an org whose cells exist but whose key does not (imported into a new
 * deployment, key store rebuilt, restored from an older backup). Everything is proven before
 * anything changes: the key's GUID must be the one in the cells, and a sample of every column
 * must decrypt in Node with its row authenticator under one of the two derivations. Then the
 * database's key hierarchy is rebuilt in one transaction (KEY_SOURCE and IDENTITY_VALUE
 * recreate the same key bytes and GUID), where every cell is decrypted once more before
 * commit, and only after that commit does the key store get the key and the new master-key
 * password.
 */
export interface ActivateResult {
  keyName: string;
  keyGuid: string;
  derivation: Derivation;
  sampled: number;
  cells: number;
}

export const ACTIVATE_SAMPLE = 50;

export async function activate(tk: Toolkit, passphrase: Secret): Promise<ActivateResult> {
  await requirePermission(tk, 'activate');
  return withOrgLock(tk, 'activate', () => activateLocked(tk, passphrase));
}

async function activateLocked(tk: Toolkit, passphrase: Secret): Promise<ActivateResult> {
  const started = Date.now();
  const activity = await assessActivity(tk);
  if (activity.active) {
    throw new CellcryptError(
      'SqlEncryptionIsActiveCannotRestoreEncryptionKey',
      `encryption is active with key ${activity.access.current.name} ` +
        `(${activity.access.current.keyGuid}); activate is for an org whose key is missing`,
      {
        exitCode: 2,
        hint: 'to use another key run `cellcrypt change-key --key-file F`',
      },
    );
  }
  if (!(await tk.organizationId()))
    throw new CellcryptError('CellcryptUsage', 'this organization has not been installed', {
      exitCode: 2,
      hint: 'run `cellcrypt install`',
    });

  const keyGuid = keyGuidFor(passphrase);
  const columns = await encryptedColumns(tk);
  const cellGuids = new Set<string>();
  for (const column of columns)
    for (const guid of Object.keys((await tk.engine.columns.census(tk.engine.knex, column, { decrypt: false })).byKey))
      cellGuids.add(guid);
  const knownKeys = activity.hierarchy.symmetricKeys;
  const foreign = [...cellGuids].filter((guid) => guid !== keyGuid);
  if (
    foreign.length ||
    (cellGuids.size === 0 && knownKeys.length > 0 && !knownKeys.some((k) => k.keyGuid === keyGuid))
  ) {
    const found = cellGuids.size ? [...cellGuids] : knownKeys.map((k) => k.keyGuid);
    throw mismatch(
      `this key has GUID ${keyGuid}, the organization's ` +
        `${cellGuids.size ? 'cells are' : 'keys are'} under ${found.join(', ')}`,
    );
  }

  const derivation = await matchingDerivation(tk, columns, passphrase, keyGuid);
  const existing = knownKeys.find((k) => k.keyGuid === keyGuid);
  const name = existing?.name ?? keyName(Math.max(0, ...knownKeys.map((k) => generationOf(k.name) ?? 0)) + 1);

  // Database first, key store after its commit. A refusal from the full check below (a damaged
  // cell the sample missed) must change nothing, and the key store may hold the only copy of
  // another key (the newer one of an org restored from an older backup). If the process dies
  // between the commit and the key store write, status reports the org inactive and running
  // activate again with the same file rebuilds the hierarchy and finishes.
  const keystore = await tk.keystore();
  const masterPassword = generateMasterKeyPassword();
  let cells = 0;
  await keyTransaction(tk.engine, async (trx) => {
    const { keys } = tk.engine;
    await keys.reset(trx);
    await keys.createMasterKey(trx, masterPassword);
    await keys.openMasterKey(trx, masterPassword);
    await keys.createCertificate(trx, CERTIFICATE_NAME);
    await keys.createSymmetricKey(trx, {
      name,
      certificate: CERTIFICATE_NAME,
      keySource: passphrase,
      identityValue: identityValueFor(passphrase),
      derivation,
    });
    await keys.openSymmetricKey(trx, name, CERTIFICATE_NAME);
    for (const column of columns) {
      const census = await tk.engine.columns.census(trx, column, { decrypt: true });
      if (census.undecryptable)
        throw mismatch(
          `${columnLabel(column)}: ${census.undecryptable} of ${census.cells} cell(s) do not decrypt under this key`,
        );
      cells += census.cells;
    }
    await writeAudit(trx, {
      createdBy: tk.actor,
      operation: 'activate',
      outcome: 'succeeded',
      newKeyGuid: keyGuid,
      cells,
      durationMs: Date.now() - started,
      detail: `derivation ${derivation}`,
    });
  });
  const replaced = await keystore.get('passphrase');
  if (replaced && keyGuidFor(replaced) !== keyGuid) {
    tk.reporter.log(
      `the key store's previous key (${keyGuidFor(replaced)}) does not open ` +
        `this organization's data and is replaced; if you need it for another ` +
        `copy of this org, it is in the file you saved with show-key before`,
    );
  }
  await keystore.put('passphrase', passphrase);
  await keystore.put('master-key-password', masterPassword);
  await keystore.remove('passphrase.pending');
  return { keyName: name, keyGuid, derivation, sampled: columns.length ? ACTIVATE_SAMPLE : 0, cells };
}

function mismatch(message: string): CellcryptError {
  return new CellcryptError(
    'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData',
    `the key cannot decrypt this organization's data: ${message}; nothing was changed`,
    {
      exitCode: 2,
      hint: 'use the key saved from this organization (`show-key --out F` on the deployment it came from)',
    },
  );
}

async function encryptedColumns(tk: Toolkit) {
  const result = [];
  for (const column of tk.registry) {
    const verdict = classifyColumn(column, await tk.engine.columns.describe(tk.engine.knex, column));
    if ('state' in verdict && verdict.state === 'encrypted') result.push(column);
  }
  return result;
}

/** The derivation under which every sampled cell decrypts with its row's authenticator. */
async function matchingDerivation(
  tk: Toolkit,
  columns: Awaited<ReturnType<typeof encryptedColumns>>,
  passphrase: Secret,
  keyGuid: string,
): Promise<Derivation> {
  const samples = [];
  for (const column of columns)
    samples.push({ column, cells: await tk.engine.columns.sampleCells(tk.engine.knex, column, ACTIVATE_SAMPLE) });
  if (samples.every((s) => s.cells.length === 0)) return 'sql2017';
  const failures: string[] = [];
  for (const derivation of [...DERIVATIONS].reverse()) {
    const key = { keyGuid: guidStringToBytes(keyGuid), key: deriveKey(passphrase.reveal(), derivation) };
    const bad = samples.flatMap((s) =>
      s.cells
        .filter(({ id, cell }) => !diagnoseCell(cell, key, guidStringToBytes(id)).ok)
        .map(({ id }) => `${columnLabel(s.column)} ${id}`),
    );
    if (bad.length === 0) return derivation;
    failures.push(`${derivation}: ${bad.length} sampled cell(s) fail, e.g. ${bad[0]}`);
  }
  throw mismatch(`no derivation decrypts the sampled cells (${failures.join('; ')})`);
}
