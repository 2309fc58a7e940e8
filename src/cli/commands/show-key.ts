import type { KeyFileEncoding } from '../../core/key-file';
import { readCurrentKey, writeKeyFile } from '../../core/show-key';
import { defineCommand } from '../command';
import { withToolkit } from '../session';

export { readCurrentKey, writeKeyFile };

export default defineCommand<{ out?: string; encoding: KeyFileEncoding }>({
  command: 'show-key',
  describe:
    'Print the encryption key, or save it (--out F: mode 0600, ' +
    'with a checksum) to keep it safe outside this deployment',
  builder: (y) =>
    y
      .option('out', { type: 'string', describe: 'write the key to this new file instead of stdout' })
      .option('encoding', {
        choices: ['utf8', 'utf16le', 'base64'] as const,
        default: 'utf8' as const,
        describe: 'file encoding (utf8 and utf16le carry a BOM)',
      }) as never,
  run: async (args, io) =>
    withToolkit(args, io, async (tk) => {
      const passphrase = await readCurrentKey(tk);
      if (args.out) {
        writeKeyFile(args.out, passphrase, args.encoding);
        io.result({ file: args.out, encoding: args.encoding });
        io.print(
          `key written to ${args.out} (${args.encoding}, mode 0600, with ` +
            `SHA-256 checksum); keep it somewhere safe outside this deployment`,
        );
      } else {
        io.result({ key: passphrase.reveal() });
        io.print(passphrase.reveal());
      }
      return 0;
    }),
});
