import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { refuse } from '../../common/errors';
import type { KeyFileEncoding } from '../../core/key-file';
import { readCurrentKey, writeKeyFile } from '../../core/show-key';
import { defineCommand } from '../command';
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

export default defineCommand<{ out?: string; encoding?: KeyFileEncoding; force?: boolean }>({
  command: 'show-key',
  describe:
    'Print the encryption key, or save it (--out F: mode 0600, ' +
    'with a checksum) to keep it safe outside this deployment',
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
      .option('force', {
        type: 'boolean',
        describe: 'with --out: write the file even inside a git work tree',
      })
      .check((a) => {
        // The encoding is a file's: without --out the key would go to the terminal instead, silently.
        if (a.encoding !== undefined && !a.out) throw new Error('--encoding applies to --out F: name the file');
        if (a.force !== undefined && !a.out) throw new Error('--force applies to --out F: name the file');
        return true;
      }) as never,
  run: async (args, io) => {
    // The Quick start used to save the key into the checkout, where one `git add -A` commits it
    // for good (.gitignore covers one file name, not the names people choose). Refused before the
    // database is opened, since nothing is read or written.
    const workTree = args.out && !args.force ? gitWorkTreeOf(args.out) : undefined;
    if (workTree)
      throw refuse(
        'CellcryptUsage',
        `${args.out} is inside the git work tree ${workTree}, where \`git add -A\` would commit the key`,
        'save it outside the checkout (e.g. `--out ~/cellcrypt-key.txt`), or add --force to write it there anyway',
      );
    return withToolkit(args, io, async (tk) => {
      const passphrase = await readCurrentKey(tk);
      if (args.out) {
        const encoding = args.encoding ?? 'utf8';
        writeKeyFile(args.out, passphrase, encoding);
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
