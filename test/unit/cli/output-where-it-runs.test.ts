import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { deriveKey, encryptByKey, keyGuidFromIdentity, nvarcharBytes } from '../../../src/cellcrypt';
import { Secret } from '../../../src/common/secret';
import { formatKeyFile } from '../../../src/core/key-file';
import { asRunHere, commandPrefix } from '../../../src/cli/invocation';
import { processIo } from '../../../src/cli/io';
import { tempDir } from '../../support/temp';

const BIN = resolve(__dirname, '../../../src/cli/bin.js');

describe('output where the command runs (issues 15 and 16)', function () {
  this.timeout(60_000);

  it("messages name the command as it runs here: `npm run cli --` under the checkout's npm scripts", () => {
    const npm = { npm_lifecycle_event: 'cli', npm_package_name: 'cellcrypt' };
    const text = 'run `cellcrypt activate --key-file F`; cellcrypt_key_1 and cellcrypt.audit stay; cellcrypt show-key';
    expect(asRunHere(text, npm)).to.equal(
      'run `npm run cli -- activate --key-file F`; cellcrypt_key_1 and cellcrypt.audit stay; npm run cli -- show-key',
    );
    expect(asRunHere(text, {}), 'the installed executable').to.equal(text);
    expect(commandPrefix({ ...npm, npm_package_name: 'another-app' })).to.equal('cellcrypt');
    const lines: string[] = [];
    const saved = { ...process.env };
    Object.assign(process.env, npm);
    try {
      processIo(false, {
        stdout: { write: (t: string) => lines.push(t) },
        stderr: { write: (t: string) => lines.push(t) },
      }).log('hint: run `cellcrypt install`');
    } finally {
      for (const key of Object.keys(npm)) if (saved[key] === undefined) delete process.env[key];
    }
    expect(lines).to.deep.equal(['hint: run `npm run cli -- install`\n']);
  });

  it('a closed output pipe stops nothing: writes after EPIPE are dropped', () => {
    const stream = Object.assign(new EventEmitter(), {
      written: [] as string[],
      write(t: string) {
        this.written.push(t);
        return true;
      },
    });
    const io = processIo(false, { stdout: stream, stderr: stream });
    io.print('one');
    stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    io.print('two');
    io.log('three');
    expect(stream.written).to.deep.equal(['one\n']);
  });

  it('the real executable, its stdout closed by the reader early, finishes with its exit code', async () => {
    const dir = tempDir('closed-pipe');
    const passphrase = 'Closed-Pipe-Key-1!';
    const keyFile = join(dir, 'key.txt');
    writeFileSync(keyFile, formatKeyFile(new Secret(passphrase), 'utf8'));
    const key = { keyGuid: keyGuidFromIdentity('any identity'), key: deriveKey(passphrase, 'sql2017') };
    const blobs = Array.from({ length: 3000 }, (_, i) =>
      encryptByKey(key, nvarcharBytes(`value ${i}`)).toString('hex'),
    );
    const child = spawn(process.execPath, [BIN, 'decrypt-offline', '--key-file', keyFile, ...blobs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.once('data', () => child.stdout.destroy()); // `| head -c 1`
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(stderr).not.to.contain('EPIPE');
    expect(code, stderr).to.equal(0);
  });
});
