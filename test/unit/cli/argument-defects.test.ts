import { expect } from 'chai';
import { Readable } from 'node:stream';
import { deriveKey, encryptByKey, keyGuidFromIdentity, nvarcharBytes } from '../../../src/cellcrypt';
import { joinStdinValues } from '../../../src/cli/main';
import { inProcessCli } from '../../support/in-process-cli';

/**
 * Command-line defects found by following the README literally (issue 16), each refused before
 * anything is opened, with exit 2 and a message that names the option; and `--key-file -`,
 * which the help recommends, reads the key from stdin.
 */
async function withStdin<T>(bytes: Buffer, work: () => Promise<T>): Promise<T> {
  const original = Object.getOwnPropertyDescriptor(process, 'stdin')!;
  Object.defineProperty(process, 'stdin', { value: Readable.from([bytes]), configurable: true });
  try {
    return await work();
  } finally {
    Object.defineProperty(process, 'stdin', original);
  }
}

describe('command-line arguments (issue 16)', () => {
  it('--key-file - reads the key from stdin (was: "cannot read key file \'\'" or "Unknown argument: -")', async () => {
    const passphrase = 'stdin key Ω 2024!';
    const cell = encryptByKey(
      { keyGuid: keyGuidFromIdentity('any identity'), key: deriveKey(passphrase, 'sql2017') },
      nvarcharBytes('secret from a cell'),
    ).toString('hex');
    const run = await withStdin(Buffer.from(`${passphrase}\n`, 'utf8'), () =>
      inProcessCli('decrypt-offline', '--key-file', '-', cell),
    );
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.equal('secret from a cell');
    expect(joinStdinValues(['activate', '--key-file', '-', '--json'])).to.deep.equal([
      'activate',
      '--key-file=-',
      '--json',
    ]);
    expect(joinStdinValues(['decrypt-offline', '--', '--key-file', '-'])).to.deep.equal([
      'decrypt-offline',
      '--',
      '--key-file',
      '-',
    ]);
  });

  const refusals: Array<[string, string[], RegExp]> = [
    ['--batch-size with no value', ['change-key', '--generate', '--batch-size'], /batch-size/],
    ['--batch-size in hexadecimal', ['change-key', '--generate', '--batch-size', '0x10'], /decimal digits.*0x10/],
    ['--batch-size 0', ['change-key', '--generate', '--batch-size', '0'], /whole number of 1 or more/],
    ['--batch-size twice', ['change-key', '--generate', '--batch-size', '5', '--batch-size', '6'], /more than once/],
    ['show-key --out with no file name', ['show-key', '--out'], /out/],
    ['show-key --encoding without --out', ['show-key', '--encoding', 'base64'], /--encoding applies to --out/],
    ['an empty --database-url', ['--database-url', '', 'status'], /--database-url \/ DATABASE_URL: is empty/],
    [
      'script --generation abc (it said NaN)',
      ['script', 'change-key', '--engine', 'mssql', '--generation', 'abc'],
      /--generation must be a whole number.*"abc"/,
    ],
  ];
  for (const [what, args, message] of refusals) {
    it(`${what}: refused, exit 2, nothing opened`, async () => {
      const run = await inProcessCli(...args, '--json');
      expect(run.code, run.stderr).to.equal(2);
      expect(run.stderr).to.match(message);
    });
  }

  it('an empty DATABASE_URL is refused (it silently meant the embedded default)', async () => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = '';
    try {
      const run = await inProcessCli('status', '--json');
      expect(run.code).to.equal(2);
      expect(run.json.error.code).to.equal('CellcryptConfigInvalid');
      expect(run.json.error.message).to.match(/DATABASE_URL: is empty/);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  });
});
