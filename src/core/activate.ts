import { keyTransaction } from './key-transaction';
import { DERIVATIONS, deriveKey, diagnoseCell, guidStringToBytes, type Derivation } from '../cellcrypt';
import { randomUUID } from 'node:crypto';
import { Secret } from '../common/secret';
import type { KeyStore } from '../keystore/keystore';
import { CellcryptError } from '../common/errors';
import { assessActivity } from './key-access';
import { CERTIFICATE_NAME, generationOf, keyName } from '../common/key-names';
import { generateMasterKeyPassword, identityValueFor, keyGuidFor } from '../cellcrypt/key-identity';
import { withOrgLock } from './org-lock';
import { requirePermission } from './permissions';
import { columnLabel, type SensitiveColumn } from './registry';
import { encryptedColumns } from './encrypted-columns';
import type { Toolkit } from './toolkit';
import { writeAudit, writeOrganizationId } from './toolkit-tables';
import { copyConflict, requireOwnKeyStore } from './key-store-check';
import { requireSecretsStayOutOfServerLog } from './secret-logging';
import { readHistory, recordGeneration, type KeyGeneration } from './key-history';

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
  /** Set when no key was given and the key store's key history had the cells' key. */
  fromHistory?: { generation: number };
}

export const ACTIVATE_SAMPLE = 50;

export interface ActivateOptions {
  /**
   * Write this org's key-store values afresh: the key store has none for it (a new or rebuilt
   * key store) or the key-store secret that sealed them is lost. Without it such a key store is
   * refused, since a forgotten CELLCRYPT_CONFIG_URL looks exactly like it.
   */
  newKeyStore?: boolean;
  /** The key store's values were written for another database and this one replaces it. */
  moved?: boolean;
  /** This database is a copy of that one (a backup restored for testing): it gets its own org id. */
  copy?: boolean;
}

export async function activate(
  tk: Toolkit,
  passphrase: Secret | undefined,
  options: ActivateOptions = {},
): Promise<ActivateResult> {
  await requirePermission(tk, 'activate');
  if (options.moved && options.copy)
    throw new CellcryptError('CellcryptUsage', 'give --moved or --copy, not both', { exitCode: 2 });
  return withOrgLock(tk, 'activate', () => activateLocked(tk, passphrase, options));
}

async function activateLocked(
  tk: Toolkit,
  given: Secret | undefined,
  options: ActivateOptions,
): Promise<ActivateResult> {
  const started = Date.now();
  const activity = await assessActivity(tk);
  // --moved and --copy settle whose keys these are, which an active copy needs as well.
  if (activity.active && !options.moved && !options.copy) {
    // An active copy elsewhere shares the live org's keys: say that, not only "active".
    await requireOwnKeyStore(tk);
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
  await requireNothingElseOnTheHierarchy(tk);

  const columns = await encryptedColumns(tk);
  const cellGuids = new Set<string>();
  for (const column of columns)
    for (const guid of Object.keys((await tk.engine.columns.census(tk.engine.knex, column, { decrypt: false })).byKey))
      cellGuids.add(guid);
  const historic = given ? undefined : await keyFromHistory(tk, cellGuids);
  const passphrase = given ?? historic!.passphrase;
  const keyGuid = keyGuidFor(passphrase);
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
  await requireSecretsStayOutOfServerLog(tk);
  const current = await tk.keystore();
  const copyId = await keyStoreAllows(tk, current, cellGuids.size > 0, options);
  const keystore = copyId ? await tk.keystoreFor(copyId) : current;
  const masterPassword = generateMasterKeyPassword();
  let cells = 0;
  await keyTransaction(tk.engine, async (trx) => {
    const { keys } = tk.engine;
    // A copy becomes an organization of its own: its key-store values never touch the original's.
    if (copyId) await writeOrganizationId(trx, copyId);
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
  await keystore.put('location', new Secret(tk.settings.database.location));
  await keystore.remove('passphrase.pending');
  await recordGeneration(keystore, generationOf(name)!, passphrase);
  return {
    keyName: name,
    keyGuid,
    derivation,
    sampled: columns.length ? ACTIVATE_SAMPLE : 0,
    cells,
    ...(historic && { fromHistory: { generation: historic.generation } }),
  };
}

/**
 * Refuses, before any change, a key store this activation could not write or should not: one
 * the secret does not open, one with nothing for this org while its cells exist (the wrong
 * CELLCRYPT_CONFIG_URL, or none, looks the same), one whose values belong to another database
 * (a restored copy would take over the live org's values). Returns the new org id of a copy.
 */
async function keyStoreAllows(
  tk: Toolkit,
  keystore: KeyStore,
  cellsExist: boolean,
  options: ActivateOptions,
): Promise<string | undefined> {
  const check = await keystore.check();
  const here = tk.settings.database.location;
  if (check.own === 'unreadable' && !options.newKeyStore) {
    const problem = check.problem!;
    throw new CellcryptError(problem.code, `${problem.message} (key store ${keystore.display}); nothing was changed`, {
      exitCode: 2,
      hint: problem.hint,
    });
  }
  if (check.own === 'none' && cellsExist && !options.newKeyStore) {
    throw new CellcryptError(
      'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB',
      `the key store ${keystore.display} has nothing for organization ${keystore.orgId}, whose cells exist; ` +
        'nothing was changed',
      {
        exitCode: 2,
        hint:
          "is --config-url / CELLCRYPT_CONFIG_URL this deployment's key store? If it is a new or rebuilt key " +
          'store, run again with --new-key-store',
      },
    );
  }
  if (check.own === 'readable' && check.location !== undefined && check.location !== here) {
    if (options.copy) return randomUUID();
    if (!options.moved) throw copyConflict(tk, keystore, check.location);
  }
  return undefined;
}

/**
 * With no key given: the key history's generation whose GUID the cells carry (an org restored
 * from any older backup comes back in one command). Refused, naming the GUIDs, when it has none.
 */
async function keyFromHistory(tk: Toolkit, cellGuids: Set<string>): Promise<KeyGeneration> {
  const history = await readHistory(await tk.keystore());
  const found = history.filter((entry) => cellGuids.has(entry.keyGuid));
  if (found.length === 1 && cellGuids.size === 1) return found[0];
  const guids = [...cellGuids].join(', ') || 'none (no encrypted cells)';
  throw new CellcryptError(
    'SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB',
    `no key was given and the key history has no single key for the cells (cells under ${guids}; the history ` +
      `has generations ${history.map((h) => `${h.generation} (${h.keyGuid})`).join(', ') || 'none'}); ` +
      'nothing was changed',
    { exitCode: 2, hint: 'give the saved key: `cellcrypt activate --key-file F`' },
  );
}

/**
 * activate drops the master key and our certificates and makes new ones. Whatever else hangs off
 * them (another application's certificates or keys protected by the master key, keys under our
 * certificate, module signatures) would stop that drop half-way (it rolls back) or lose its
 * protection, so it is refused first, naming each object.
 */
async function requireNothingElseOnTheHierarchy(tk: Toolkit): Promise<void> {
  const dependents = await tk.engine.keys.foreignDependents(tk.engine.knex);
  if (!dependents.length) return;
  throw new CellcryptError(
    'CellcryptKeyHierarchyInUse',
    `activate rebuilds the database master key and certificate ${CERTIFICATE_NAME}, and objects that are not ` +
      `cellcrypt's depend on them: ${dependents.join(', ')}; nothing was changed`,
    {
      exitCode: 2,
      hint:
        'move those objects off first (protect those keys with another certificate or password, re-sign those ' +
        'modules with another certificate), or keep the master key: if it only does not open by itself and its ' +
        'password is known, run the last batch of `cellcrypt script activate --engine mssql` instead',
    },
  );
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

/** The derivation under which every sampled cell decrypts with its row's authenticator. */
async function matchingDerivation(
  tk: Toolkit,
  columns: readonly SensitiveColumn[],
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
