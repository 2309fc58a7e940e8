import type { KeyFileEncoding } from '../../core/key-file';
import { readCurrentKey, writeKeyFile } from '../../core/show-key';
import { defineCommand } from '../command';
import { withToolkit } from '../session';

export { readCurrentKey, writeKeyFile };

export default defineCommand<{ out?: string; encoding?: KeyFileEncoding }>({
  command: 'show-key',
  describe:
    'Print the encryption key, or save it (--out F: mode 0600, ' +
    'with a checksum) to keep it safe outside this deployment',
  builder: (y) =>
    y
      .option('out', {
        type: 'string',
        requiresArg: true,
        describe: 'write the key to this new file instead of stdout',
      })
      .option('encoding', {
        choices: ['utf8', 'utf16le', 'base64'] as const,
        describe: 'file encoding with --out (default utf8; utf8 and utf16le carry a BOM)',
      })
      .check((a) => {
        // The encoding is a file's: without --out the key would go to the terminal instead, silently.
        if (a.encoding !== undefined && !a.out) throw new Error('--encoding applies to --out F: name the file');
        return true;
      }) as never,
  run: async (args, io) =>
    withToolkit(args, io, async (tk) => {
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
    }),
});
