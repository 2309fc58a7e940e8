import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { refuse } from '../../common/errors';
import type { KeyFileEncoding } from '../../core/key-file';
import { parseShareSpec } from '../../core/key-shares';
import {
  readCurrentKey,
  readKeyGeneration,
  readMasterKeyPassword,
  recordKeySaved,
  writeKeyFile,
  writeKeyShares,
  writeSecretFile,
} from '../../core/show-key';
import { defineCommand, wholeNumberOption } from '../command';
import { withToolkit } from '../session';

export { readCurrentKey, writeKeyFile };

/**
 * The git work tree a file would be written into: the nearest directory, from the file's own up,
 * with a `.git` entry (a directory, or the file a linked work tree or submodule has instead).
 */
export function gitWorkTreeOf(file: string): string | undefined {
  let dir = resolve(dirname(file));
  try {
    dir = realpathSync(dir); // a symlink into a checkout is still the checkout
  } catch {
    // A directory that does not exist: walk up its path as given (writing will then say it is missing).
  }
  for (;;) {
    if (existsSync(join(dir, '.git'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

interface ShowKeyArgs {
  out?: string;
  encoding?: KeyFileEncoding;
  force?: boolean;
  shares?: string;
  outDir?: string;
  generation?: number;
  masterKeyPassword?: boolean;
}

export default defineCommand<ShowKeyArgs>({
  command: 'show-key',
  describe:
    'Print the encryption key, or save it (--out F: mode 0600, with a checksum; or split among ' +
    'custodians: --shares K-of-N --out-dir D) to keep it safe outside this deployment',
  builder: (y) =>
    y
      .option('out', {
        type: 'string',
        requiresArg: true,
        describe: 'write the key to this new file instead of stdout (not inside a git work tree, unless --force)',
      })
      .option('encoding', {
        choices: ['utf8', 'utf16le', 'base64'] as const,
        describe: 'file encoding with --out (default utf8; utf8 and utf16le carry a BOM)',
      })
      .option('shares', {
        type: 'string',
        requiresArg: true,
        describe: "split the key with Shamir's scheme into N share files, any K of which rebuild it (e.g. 2-of-3)",
      })
      .option('out-dir', {
        type: 'string',
        requiresArg: true,
        describe: 'with --shares: the directory for the share files (not inside a git work tree, unless --force)',
      })
      .option('force', {
        type: 'boolean',
        describe: 'with --out or --out-dir: write even inside a git work tree',
      })
      .option('generation', {
        type: 'string',
        requiresArg: true,
        coerce: wholeNumberOption('--generation'),
        describe: "an older key generation from the key store's key history (see `cellcrypt keys`)",
      })
      .option('master-key-password', {
        type: 'boolean',
        describe:
          'PostgreSQL: save the master-key password applications pass to cellcrypt.open_keys (--out F only; ' +
          'rewrap changes it)',
      })
      .conflicts('out', 'shares')
      .conflicts('master-key-password', ['shares', 'generation', 'encoding'])
      .check((a) => {
        // The encoding is a file's: without --out the key would go to the terminal instead, silently.
        if (a.encoding !== undefined && !a.out) throw new Error('--encoding applies to --out F: name the file');
        if (a.force !== undefined && !a.out && !a.outDir)
          throw new Error('--force applies to --out F or --out-dir D: name the file or directory');
        if (a.masterKeyPassword && !a.out)
          throw new Error(
            '--master-key-password is written only to a file: name it with --out F (it is never printed)',
          );
        if ((a.shares === undefined) !== (a.outDir === undefined))
          throw new Error('--shares K-of-N and --out-dir D go together: the shares are files in D');
        return true;
      }) as never,
  run: async (args, io) => {
    // Refused before the database is opened: nothing is read or written.
    const spec = args.shares !== undefined ? parseShareSpec(args.shares) : undefined;
    // The Quick start used to save the key into the checkout, where one `git add -A` commits it
    // for good (.gitignore covers one file name, not the names people choose). A share directory
    // there is the same mistake, K times over.
    const target = args.out ?? (args.outDir !== undefined ? join(args.outDir, 'share') : undefined);
    const workTree = target && !args.force ? gitWorkTreeOf(target) : undefined;
    if (workTree)
      throw refuse(
        'CellcryptUsage',
        `${args.out ?? args.outDir} is inside the git work tree ${workTree}, where \`git add -A\` would commit the key`,
        args.out
          ? 'save it outside the checkout (e.g. `--out ~/cellcrypt-key.txt`), or add --force to write it there anyway'
          : 'write the shares outside the checkout (e.g. `--out-dir ~/cellcrypt-shares`), or add --force',
      );
    // Not a read-only toolkit: a saved key is recorded in the audit table (doctor and status read it).
    return withToolkit(args, io, async (tk) => {
      if (args.masterKeyPassword && args.out) {
        writeSecretFile(args.out, await readMasterKeyPassword(tk));
        io.result({ file: args.out, secret: 'master-key-password' });
        io.print(
          `master-key password written to ${args.out} (mode 0600, the password alone); PostgreSQL ` +
            'applications pass it to `select cellcrypt.open_keys($1)`; `cellcrypt rewrap` changes it',
        );
        return 0;
      }
      const passphrase =
        args.generation === undefined ? await readCurrentKey(tk) : await readKeyGeneration(tk, args.generation);
      if (spec && args.outDir !== undefined) {
        const files = await writeKeyShares(tk, passphrase, args.outDir, spec);
        io.result({ directory: args.outDir, threshold: spec.threshold, shares: spec.total, files });
        io.print(
          `key split into ${spec.total} shares (any ${spec.threshold} rebuild it), each mode 0600 with a ` +
            `SHA-256 checksum:\n${files.map((file) => `  ${file}`).join('\n')}\n` +
            'give each share to its own custodian and delete it here; ' +
            '`cellcrypt activate --key-share F` (once per share) rebuilds the key',
        );
      } else if (args.out) {
        const encoding = args.encoding ?? 'utf8';
        writeKeyFile(args.out, passphrase, encoding);
        await recordKeySaved(tk, passphrase, encoding);
        io.result({ file: args.out, encoding });
        io.print(
          `key written to ${args.out} (${encoding}, mode 0600, with ` +
            `SHA-256 checksum); keep it somewhere safe outside this deployment`,
        );
      } else {
        io.result({ key: passphrase.reveal() });
        io.print(passphrase.reveal());
      }
      return 0;
    });
  },
});
