import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inProcessCli } from '../../support/in-process-cli';
import { tempDir } from '../../support/temp';

const BIN = resolve(__dirname, '../../../src/cli/bin.js');

/**
 * The dotenv option was `--env-file`, which Node 20 reads itself wherever it appears
 * (nodejs/node#54232): a missing file printed `node: … not found`, exit 9, and cellcrypt never
 * ran. It is `--settings-file` now, run here through the real executable on this machine's Node.
 */
describe('--settings-file (issue 16: --env-file was taken by Node)', function () {
  this.timeout(30_000);

  it('a missing settings file is our refusal, exit 2, from the real executable', () => {
    const missing = join(tempDir('settings-file'), 'absent.env');
    const run = spawnSync(process.execPath, [BIN, '--settings-file', missing, 'status', '--json'], {
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).to.equal(2);
    expect(run.stderr).to.contain(`--settings-file: ${missing} does not exist`);
    expect(JSON.parse(run.stdout).error.code).to.equal('CellcryptConfigInvalid');
  });

  it('the settings file is read (the environment wins)', async () => {
    const file = join(tempDir('settings-file'), 'cellcrypt.env');
    writeFileSync(file, 'CELLCRYPT_CHANGE_QUOTA=lots\n');
    const saved = process.env.CELLCRYPT_CHANGE_QUOTA;
    delete process.env.CELLCRYPT_CHANGE_QUOTA;
    try {
      const run = await inProcessCli('--settings-file', file, 'status', '--json');
      expect(run.code).to.equal(2);
      expect(run.json.error.message).to.contain('CELLCRYPT_CHANGE_QUOTA: "lots"');
    } finally {
      if (saved !== undefined) process.env.CELLCRYPT_CHANGE_QUOTA = saved;
    }
  });

  it('--env-file, where Node passes it on, is refused with the new name', async () => {
    const run = await inProcessCli('--env-file', 'x.env', 'status', '--json');
    expect(run.code).to.equal(2);
    expect(run.json.error.message).to.contain('--settings-file');
  });
});
