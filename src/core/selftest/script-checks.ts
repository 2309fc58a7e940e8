import { generateMasterKeyPassword, identityValueFor, keyGuidFor } from '../../cellcrypt/key-identity';
import type { Secret } from '../../common/secret';
import type { ScriptSecrets } from '../../engines/engine';
import { seedDemo } from '../demo-seed';
import { generatePassphrase } from '../passphrase';
import { renderScript } from '../script-plan';
import type { Toolkit } from '../toolkit';
import { cellBytes, cellKeys, cellsByKey, describeByKey, differences } from './org-data';
import { fail, ok, skipped, type SelftestEnvironment, type Verdict } from './types';
import { diagnoseCell, guidStringToBytes } from '../../cellcrypt';

/**
 * The scripts `cellcrypt script` prints, run as a DBA runs them (the engine's client, sqlcmd),
 * on a second throw-away database: install converts the demo tables under the key file's key
 * (Node decrypts the cells with it: review DL3), install run again changes nothing (DL1), and
 * a change-key whose KEY_SOURCE is not the key file's is refused by the script's known-answer
 * probe before any cell changes.
 */
const tail = (output: string) => output.trim().split('\n').slice(-3).join(' | ').slice(0, 300);

const secretsFor = (masterKeyPassword: Secret, passphrase: Secret, identityOf: Secret): ScriptSecrets => ({
  masterKeyPassword,
  passphrase,
  identityValue: identityValueFor(identityOf),
});

export async function printedScripts(env: SelftestEnvironment, rows: number): Promise<Verdict> {
  const run = env.tk.engine.selftest?.runScript;
  if (!run || !env.scripts) return skipped('this engine has no printed scripts');
  const { renderer } = env.scripts;
  const scratch = await env.scripts.open();
  try {
    const { tk } = scratch;
    const runScript = tk.engine.selftest!.runScript!;
    await seedDemo(tk, rows);
    const key = generatePassphrase();
    const master = generateMasterKeyPassword();
    const install = renderScript(renderer, 'install', tk.registry, 1, key);
    const first = await runScript(install, secretsFor(master, key, key));
    if (!first) return skipped('sqlcmd is not on the PATH');
    if (first.exitCode !== 0) return fail(`the install script failed (exit ${first.exitCode}): ${tail(first.output)}`);
    const wrong = await undecryptableInNode(tk, key);
    if (wrong) return fail(`after the install script: ${wrong}`);
    const cells = await cellBytes(tk);

    const again = await runScript(install, secretsFor(master, key, key));
    const changed = differences(cells, await cellBytes(tk), 'cells');
    if (changed) return fail(`running the install script again changed cells: ${changed}`);

    const next = generatePassphrase();
    const changeKey = renderScript(renderer, 'change-key', tk.registry, 2, next);
    const refused = await runScript(changeKey, secretsFor(master, generatePassphrase(), next));
    const changedByWrongKey = differences(cells, await cellBytes(tk), 'cells');
    if (refused!.exitCode === 0 || changedByWrongKey) {
      const damage = changedByWrongKey ? ` and changed cells (${changedByWrongKey})` : '';
      return fail(
        `the change-key script ran with a KEY_SOURCE that is not its key file${damage}: ` +
          'its known-answer probe did not stop it',
      );
    }
    return ok(
      `install script: ${cells.size} cells under ${keyGuidFor(key)}, each decrypts in Node with the key file; ` +
        `run again: exit ${again!.exitCode}, every cell byte-identical; change-key with a wrong KEY_SOURCE: ` +
        `refused (exit ${refused!.exitCode}), nothing changed`,
    );
  } finally {
    await scratch.close();
  }
}

/** Why the cells of a freshly scripted org do not all decrypt in Node under `key`, or undefined. */
async function undecryptableInNode(tk: Toolkit, key: Secret): Promise<string | undefined> {
  const byKey = await cellsByKey(tk);
  if (byKey.size !== 1 || !byKey.has(keyGuidFor(key))) return `cells are on ${describeByKey(byKey)}`;
  const keys = cellKeys(key);
  for (const column of tk.registry)
    for (const { id, cell } of await tk.engine.columns.sampleCells(tk.engine.knex, column, 20)) {
      const diagnosis = diagnoseCell(Buffer.from(cell), keys, guidStringToBytes(id));
      if (!diagnosis.ok) return `${column.table}.${column.column} ${id} does not decrypt in Node: ${diagnosis.reason}`;
    }
  return undefined;
}
