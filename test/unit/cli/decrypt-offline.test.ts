import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import yargs from 'yargs';
import {
  deriveKey,
  encryptByKey,
  guidStringToBytes,
  keyGuidFromIdentity,
  nvarcharBytes,
  type AesAlgorithm,
  type Derivation,
} from '../../../src/cellcrypt';
import { Secret } from '../../../src/common/secret';
import { CellcryptError } from '../../../src/common/errors';
import { formatKeyFile } from '../../../src/core/key-file';
import command, { decryptOffline } from '../../../src/cli/commands/decrypt-offline';
import type { GlobalArgs } from '../../../src/cli/command';
import { memoryIo } from '../../../src/cli/io';
import { inProcessCli } from '../../support/in-process-cli';

const PASSPHRASE = 'Réserve-𝐊𝐞𝐲-2024!';
const ROW_ID = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const dir = mkdtempSync(join(tmpdir(), 'cellcrypt-decrypt-offline-'));
const keyFile = join(dir, 'key.txt');
writeFileSync(keyFile, formatKeyFile(new Secret(PASSPHRASE), 'utf8'));

function blob(
  text: string | Buffer,
  options: { derivation?: Derivation; algorithm?: AesAlgorithm; passphrase?: string; rowId?: string } = {},
): string {
  const key = {
    keyGuid: keyGuidFromIdentity('an identity value nobody kept'),
    key: deriveKey(options.passphrase ?? PASSPHRASE, options.derivation ?? 'sql2017', options.algorithm ?? 'AES_256'),
  };
  const plaintext = typeof text === 'string' ? nvarcharBytes(text) : text;
  const authenticator = options.rowId === undefined ? undefined : guidStringToBytes(options.rowId);
  return encryptByKey(key, plaintext, { authenticator }).toString('hex');
}

async function run(
  hex: string[],
  options: Partial<{
    json: boolean;
    derivation: 'auto' | Derivation;
    as: 'nvarchar' | 'varchar' | 'hex';
    authenticatorUuid: string;
    keyFile: string;
  }> = {},
) {
  const io = memoryIo(options.json ?? false);
  const args = { json: false, keyFile, derivation: 'auto', as: 'nvarchar', ...options, hex } as GlobalArgs &
    Record<string, unknown>;
  const exitCode = await command.run(args, io);
  return { exitCode, io };
}

describe('cellcrypt decrypt-offline', () => {
  it('prints each plaintext on its own line, in input order, under either derivation and any AES size', async () => {
    const { exitCode, io } = await run([
      blob('from 2017+', { derivation: 'sql2017' }),
      `0x${blob('from 2016', { derivation: 'sql2016' }).toUpperCase()}`,
      blob('aes 128 𝒳', { algorithm: 'AES_128', derivation: 'sql2016' }),
      blob('', { algorithm: 'AES_192' }),
    ]);
    expect(exitCode).to.equal(0);
    expect(io.stdout).to.deep.equal(['from 2017+', 'from 2016', 'aes 128 𝒳', '']);
    expect(io.stderr.join('\n')).not.to.contain(PASSPHRASE);
  });

  it('reports derivation, GUID and integrity per blob in one JSON document', async () => {
    const hex = [blob('checked', { rowId: ROW_ID, derivation: 'sql2016' })];
    const checked = await run(hex, { json: true, authenticatorUuid: ROW_ID.toLowerCase() });
    expect(checked.exitCode).to.equal(0);
    expect(checked.io.stdout).to.deep.equal([]);
    expect(checked.io.documents).to.deep.equal([
      {
        results: [
          {
            input: 1,
            ok: true,
            plaintext: 'checked',
            derivation: 'sql2016',
            algorithm: 'AES_256',
            keyGuid: guidOf(hex[0]),
            integrityChecked: true,
          },
        ],
      },
    ]);
    const unchecked = await run(hex, { json: true });
    expect(unchecked.exitCode).to.equal(0);
    expect(unchecked.io.documents[0]).to.have.nested.property('results[0].integrityChecked', false);
  });

  it('exits 3 and names the reason on stderr for a blob that does not decrypt', async () => {
    const { exitCode, io } = await run(
      [blob('fine'), blob('someone else', { passphrase: 'Another-Key-99!' }), blob('row bound', { rowId: ROW_ID })],
      { authenticatorUuid: '00000000-0000-0000-0000-000000000001' },
    );
    expect(exitCode).to.equal(3);
    expect(io.stdout).to.deep.equal(['', '', '']); // the first was written without an authenticator
    expect(io.stderr.find((line) => line.startsWith('blob 1: '))).to.match(/^blob 1: unexpected-authenticator: /);
    expect(io.stderr.find((line) => line.startsWith('blob 2: '))).to.match(/^blob 2: (bad-padding|bad-magic): /);
    expect(io.stderr.find((line) => line.startsWith('blob 3: '))).to.match(
      /^blob 3: integrity-mismatch: .*key matched: sql2017\/AES_256/,
    );
  });

  it('keeps going after a failure and marks it in JSON', async () => {
    const { exitCode, io } = await run([blob('a'), blob('b', { derivation: 'sql2016' }), blob('c')], {
      json: true,
      derivation: 'sql2017',
    });
    expect(exitCode).to.equal(3);
    const results = (io.documents[0] as { results: Array<Record<string, unknown>> }).results;
    expect(results.map((result) => result.ok)).to.deep.equal([true, false, true]);
    expect(results[1]).to.include({ input: 2, ok: false }).and.to.have.property('reason');
    expect(results[1]).not.to.have.property('plaintext');
  });

  it('decodes varchar bytes as code page 1252, prints hex, and refuses bytes that are not nvarchar', async () => {
    const varchar = blob(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x80, 0x9f])); // 'café€Ÿ' in code page 1252
    expect((await run([varchar], { as: 'varchar' })).io.stdout).to.deep.equal(['café€Ÿ']);
    expect((await run([varchar], { as: 'hex' })).io.stdout).to.deep.equal(['0x636166E9809F']);
    const asText = await run([blob(Buffer.from('cafés', 'latin1'))], { as: 'nvarchar' }); // 5 bytes: not UTF-16
    expect(asText.exitCode).to.equal(3);
    expect(asText.io.stderr.join('\n')).to.match(/blob 1: not-nvarchar: .*--as varchar/);
  });

  it('refuses bad input with exit 2 before decrypting anything', async () => {
    for (const [hex, options] of [
      [['zz00'], {}],
      [['abc'], {}],
      [['0x'], {}],
      [[blob('x')], { authenticatorUuid: 'not-a-uuid' }],
      [[blob('x')], { keyFile: join(dir, 'missing.txt') }],
    ] as const) {
      let caught: unknown;
      await run([...hex], options).catch((error: unknown) => (caught = error));
      expect(caught, JSON.stringify({ hex, options })).to.be.instanceOf(CellcryptError).and.to.include({ exitCode: 2 });
    }
  });

  it('is parsed by yargs with HEX kept as strings', async () => {
    let parsed: Record<string, unknown> = {};
    await yargs(['decrypt-offline', '--key-file', keyFile, '--derivation', 'sql2016', '0011', '0x22'])
      .option('json', { type: 'boolean', default: false })
      .command({ ...command, handler: (args) => void (parsed = args as Record<string, unknown>) })
      .strict()
      .parseAsync();
    expect(parsed).to.include({ keyFile, derivation: 'sql2016', as: 'nvarchar' });
    expect(parsed.hex).to.deep.equal(['0011', '0x22']);
  });

  describe('--help (issue 16)', function () {
    this.timeout(60_000);
    // yargs ends the process after --help, so the help is rendered by a child process.
    const helpOf = (...args: string[]): string => {
      const child = spawnSync(process.execPath, ['--require', 'tsx/cjs', 'src/cli/main.ts', ...args, '--help'], {
        encoding: 'utf8',
        cwd: join(__dirname, '../../..'),
      });
      expect(child.status, child.stderr).to.equal(0);
      return child.stdout;
    };
    let help: string;
    before(() => (help = helpOf('decrypt-offline')));

    it('does not offer the database and settings options, which it never uses', () => {
      expect(help).to.contain('--key-file');
      for (const unused of ['--database-url', '--config-url', '--settings-file']) expect(help).not.to.contain(unused);
      // Hidden from this command only: the root and the commands that open a database still offer them.
      expect(helpOf()).to.contain('--database-url').and.to.contain('--config-url').and.to.contain('--settings-file');
      expect(helpOf('status')).to.contain('--database-url');
    });

    it('describes every option and positional, and shows no default for the required HEX', () => {
      const entries = help.split('\n').filter((line) => /^ {2}(--[a-z-]+|hex)\s/.test(line));
      expect(entries.map((line) => line.trim().split(/\s/)[0])).to.include.members([
        'hex',
        '--key-file',
        '--derivation',
        '--as',
        '--authenticator-uuid',
      ]);
      for (const line of entries) {
        // Without a description yargs puts the [type]/[choices] column straight after the name.
        const rest = line.trim().replace(/^\S+\s+/, '');
        expect(rest, line).to.match(/^[^[\s]/);
      }
      expect(help).not.to.contain('[default: []]');
      expect(entries.find((line) => line.startsWith('  hex'))).to.contain('[required]');
    });

    it('still accepts the hidden root options (a shell alias may always pass them)', async () => {
      const run = await inProcessCli(
        '--database-url',
        'pglite:/nonexistent',
        'decrypt-offline',
        '--key-file',
        keyFile,
        blob('x'),
      );
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.equal('x');
    });
  });

  it('works programmatically from a passphrase', () => {
    const [result] = decryptOffline({
      passphrase: new Secret(PASSPHRASE),
      derivation: 'auto',
      as: 'nvarchar',
      blobs: [blob('direct')],
    });
    expect(result).to.include({ ok: true, plaintext: 'direct', derivation: 'sql2017' });
  });
});

/** The key GUID of a blob as SQL Server prints it, computed here without the codec. */
function guidOf(hex: string): string {
  const bytes = Buffer.from(hex.slice(0, 32), 'hex');
  const part = (from: number, to: number, reverse: boolean) => {
    const slice = Buffer.from(bytes.subarray(from, to));
    return (reverse ? slice.reverse() : slice).toString('hex');
  };
  return [part(0, 4, true), part(4, 6, true), part(6, 8, true), part(8, 10, false), part(10, 16, false)]
    .join('-')
    .toUpperCase();
}
