import { activate } from '../activate';
import { changeKey } from '../change-key';
import { seedDemo } from '../demo-seed';
import { install } from '../install';
import { keyTransaction } from '../key-transaction';
import { readStatus, type StatusReport } from '../status';
import type { Toolkit } from '../toolkit';
import { verify } from '../verify';
import { cellBytes, cellValues, cellsByKey, describeByKey, differences } from './org-data';
import { fail, ok, type Verdict } from './types';

/**
 * The life of an org, as cellcrypt's users live it: seed, install, install again, change the
 * key in one transaction, activate after the key hierarchy is gone, verify. Each step is the
 * real operation; what is compared afterwards is read back independently (org-data.ts). The
 * interrupted batched change is in batched.ts.
 */
export async function demoOrg(tk: Toolkit, rows: number): Promise<Verdict> {
  const seeded = await seedDemo(tk, rows);
  const tables = seeded.tables.map((t) => `${t.table} (${t.inserted})`).join(', ');
  return ok(`Dynamics-shaped tables with plaintext rows, as \`cellcrypt demo seed\` makes them: ${tables}`);
}

/** Every registered column encrypted, no plaintext left, every cell decrypting in the database. */
function unhealthy(status: StatusReport): string | undefined {
  if (!status.active) return `encryption is not active: ${status.reason ?? ''}`;
  const bad = status.columns.filter(
    (c) => c.state !== 'encrypted' || c.plaintext > 0 || c.undecryptable > 0 || c.unchecked > 0,
  );
  if (!bad.length) return undefined;
  return bad
    .map((c) => `${c.table}.${c.column}: ${c.state}, ${c.plaintext} plaintext, ${c.undecryptable} undecryptable`)
    .join('; ');
}

const cellCount = (status: StatusReport) => status.columns.reduce((sum, c) => sum + c.cells, 0);

export async function installOrg(tk: Toolkit): Promise<Verdict> {
  const result = await install(tk);
  const status = await readStatus(tk);
  const problem = unhealthy(status);
  if (problem) return fail(`after install: ${problem}`);
  const { values, failed } = await cellValues(tk);
  if (failed.length) return fail(`${failed.length} cell(s) do not decrypt in Node: ${failed.slice(0, 3).join('; ')}`);
  const key = status.keys.map((k) => `${k.name} (${k.guid})`).join(', ');
  return ok(
    `${status.columns.length} columns converted, ${cellCount(status)} cells under ${key}, ` +
      `${values.size} decrypt in Node with the key store's key (${result.durationMs} ms)`,
  );
}

export async function installAgain(tk: Toolkit): Promise<Verdict> {
  const cells = await cellBytes(tk);
  const keys = JSON.stringify(await tk.engine.keys.read(tk.engine.knex));
  const result = await install(tk);
  const changed = differences(cells, await cellBytes(tk), 'cells');
  if (result.migrations.length || result.conversions.length)
    return fail(`the second install did work again: migrations ${result.migrations.join(', ') || 'none'}`);
  if (changed) return fail(`the second install changed cells: ${changed}`);
  if (JSON.stringify(await tk.engine.keys.read(tk.engine.knex)) !== keys)
    return fail('the second install changed the key hierarchy');
  return ok(`nothing to do: ${cells.size} cells byte-identical, key hierarchy unchanged`);
}

export async function changeKeyOneTransaction(tk: Toolkit): Promise<Verdict> {
  const before = await cellValues(tk);
  const result = await changeKey(tk, { generate: true });
  const after = await cellValues(tk);
  const byKey = await cellsByKey(tk);
  const lost = differences(before.values, after.values, 'plaintexts');
  if (lost || after.failed.length) return fail(`values changed: ${lost || after.failed.slice(0, 3).join('; ')}`);
  if (byKey.size !== 1 || !byKey.has(result.newKey.guid!))
    return fail(`cells are not all on the new key ${result.newKey.guid}: ${describeByKey(byKey)}`);
  const keys = (await tk.engine.keys.read(tk.engine.knex)).symmetricKeys.map((k) => k.name);
  if (keys.includes(result.oldKey.name)) return fail(`the old key ${result.oldKey.name} was not dropped`);
  return ok(
    `${result.cells} cells ${result.oldKey.name} -> ${result.newKey.name} in ${result.durationMs} ms, ` +
      'every plaintext unchanged, old key dropped',
  );
}

/** A restore without the keys: the hierarchy dropped, the org inactive, activate with the saved key. */
export async function activateAfterDrop(tk: Toolkit): Promise<Verdict> {
  const saved = (await (await tk.keystore()).get('passphrase'))!;
  const before = await cellValues(tk);
  await keyTransaction(tk.engine, (trx) => tk.engine.keys.reset(trx));
  const dropped = await readStatus(tk);
  if (dropped.active) return fail('the org still reads as active after its key hierarchy was dropped');
  const result = await activate(tk, saved);
  const status = await readStatus(tk);
  const problem = unhealthy(status);
  if (problem) return fail(`after activate: ${problem}`);
  const lost = differences(before.values, (await cellValues(tk)).values, 'plaintexts');
  if (lost) return fail(`values changed: ${lost}`);
  return ok(
    `inactive without its keys (${dropped.reason}); activate rebuilt ${result.keyName} (${result.keyGuid}, ` +
      `derivation ${result.derivation}) and ${result.cells} cells decrypt`,
  );
}

export async function verifyOrg(tk: Toolkit): Promise<Verdict> {
  const report = await verify(tk);
  const sampled = report.offline.reduce((sum, o) => sum + o.sampled, 0);
  const failed = report.offline.reduce((sum, o) => sum + o.failed, 0);
  if (!report.ok) {
    const problem = unhealthy(report.status) ?? `${failed} sampled cell(s) do not decrypt offline`;
    return fail(`verify is not ok: ${problem}`);
  }
  return ok(`every cell decrypts in the database; ${sampled} sampled cells decrypt offline from the key alone`);
}
