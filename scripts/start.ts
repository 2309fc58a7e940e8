// `npm start`: the main job on the embedded default. On first run it seeds a small demo org
// (plaintext rows, like an org before upgrade), then installs (key hierarchy + encryption of
// the five Dynamics columns) and prints the status. Running it again changes nothing.
import { existsSync } from 'node:fs';
import { loadSettings } from '../src/config/settings';
import { runCli } from '../src/cli/main';

async function main(): Promise<number> {
  const settings = loadSettings();
  const firstRun = settings.database.kind === 'pglite' && !existsSync(`${settings.database.path}/PG_VERSION`);
  if (firstRun) {
    process.stderr.write(`first run: creating a demo organization in ${settings.database.display}\n`);
    const seeded = await runCli(['demo', 'seed', '--rows', '200']);
    if (seeded !== 0) return seeded;
  }
  const installed = await runCli(['install']);
  if (installed !== 0) return installed;
  process.stdout.write(
    [
      '',
      'Keep a copy of the encryption key outside this deployment (without it a restored org cannot be read):',
      // Outside the checkout: show-key refuses a file inside a git work tree, where it could be committed.
      '  npm run cli -- show-key --out ~/cellcrypt-key.txt',
      'Check every cell:  npm run cli -- verify',
      '',
    ].join('\n'),
  );
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`${String(error)}\n`);
    process.exitCode = 1;
  },
);
