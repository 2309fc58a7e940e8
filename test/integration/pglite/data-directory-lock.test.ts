import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseConnectionTarget } from '../../../src/config/connection-target';
import { CellcryptError } from '../../../src/common/errors';
import { openEngine } from '../../../src/engines';
import { seedPgliteDirectory } from '../../support/pglite-template';

/** PGlite is single-process: a second opener of the same data directory must be refused, not corrupt it. */
describe('embedded data directory lock', function () {
  let dir: string;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cellcrypt-lock-'));
    await seedPgliteDirectory(join(dir, 'org'));
  });

  afterEach(() => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const target = () => {
    const parsed = parseConnectionTarget(`pglite:${dir}/org`, dir);
    if (typeof parsed === 'string') throw new Error(parsed);
    return parsed;
  };

  async function refusal(promise: Promise<unknown>): Promise<CellcryptError> {
    const error = await promise.then(
      () => undefined,
      (e) => e,
    );
    expect(error).to.be.instanceOf(CellcryptError);
    return error;
  }

  it('refuses a second opener in this process, and admits one after close', async () => {
    const first = await openEngine(target());
    await first.knex.raw('select 1');
    const error = await refusal(openEngine(target()));
    expect(error.code).to.equal('CellcryptDataDirectoryBusy');
    expect(error.exitCode).to.equal(2);
    expect(error.message).to.contain('this process already has it open');
    await first.close();
    expect(existsSync(`${dir}/org.lock`)).to.equal(false);
    const second = await openEngine(target());
    expect((await second.knex.raw('select 2 as n')).rows[0].n).to.equal(2);
    await second.close();
  });

  it(
    'refuses while another process holds it (naming the pid), ' + 'and takes over once that process was killed',
    async function () {
      const holder =
        `
      const { openEngine } = require(${JSON.stringify(resolve(__dirname, '../../../src/engines'))});
      const { parseConnectionTarget } = require(${JSON.stringify(
        resolve(__dirname, '../../../src/config/connection-target'),
      )});
      openEngine(parseConnectionTarget(${JSON.stringify(`pglite:${dir}/org`)}, ${JSON.stringify(dir)}))
        .then(async (engine) => { await engine.knex.raw('select 1'); process.stdout.write('ready\\n'); ` +
        `setInterval(() => {}, 1000); });`;
      child = spawn(process.execPath, ['--require', 'tsx/cjs', '-e', holder], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((ready, fail) => {
        child!.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && ready());
        child!.on('exit', (code) => fail(new Error(`holder exited with ${code}`)));
      });
      const error = await refusal(openEngine(target()));
      expect(error.code).to.equal('CellcryptDataDirectoryBusy');
      expect(error.message).to.contain(`process ${child.pid}`);

      child.kill('SIGKILL');
      await new Promise((done) => child!.once('exit', done));
      const engine = await openEngine(target()); // stale lock: its process is gone
      expect((await engine.knex.raw('select 3 as n')).rows[0].n).to.equal(3);
      await engine.close();
    },
  );
});
