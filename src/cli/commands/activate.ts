import { CellcryptError, isCellcryptError } from '../../common/errors';
import { activate } from '../../core/activate';
import { readKeyFile } from '../../core/key-file';
import { defineCommand } from '../command';
import { withToolkit } from '../session';

export { activate };

/** A key that does not fit the cells and has spaces at its edge: the spaces are the likely cause. */
function namesWhitespace(error: unknown, edgeWhitespace: string | undefined): unknown {
  if (!edgeWhitespace || !isCellcryptError(error)) return error;
  if (error.code !== 'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData') return error;
  return new CellcryptError(error.code, `${error.message} (the key in the file ${edgeWhitespace})`, {
    exitCode: error.exitCode,
    hint: `if the whitespace is not part of the key, remove it from the key file and run activate again; else ${error.hint}`,
    cause: error,
  });
}

export default defineCommand<{ keyFile: string }>({
  command: 'activate',
  describe:
    'Re-activate encryption with a saved key after a restore or import ' +
    '(--key-file F, - for stdin); proves the key on the cells before changing anything',
  builder: (y) =>
    y.option('key-file', {
      type: 'string',
      demandOption: true,
      describe: 'the saved key (show-key --out F): utf8, utf16le or base64, checksum checked when present',
    }) as never,
  run: async (args, io) => {
    const keyFile = await readKeyFile(args.keyFile);
    if (keyFile.edgeWhitespace) io.log(`note: the key ${keyFile.edgeWhitespace}; it is taken as part of the key`);
    return withToolkit(args, io, async (tk) => {
      const result = await activate(tk, keyFile.passphrase).catch((error: unknown) => {
        throw namesWhitespace(error, keyFile.edgeWhitespace);
      });
      io.result({ ...result, keyFile: { encoding: keyFile.encoding, checksum: keyFile.checksum } });
      io.print(
        `encryption active again: key ${result.keyName} (${result.keyGuid}), ` +
          `derivation ${result.derivation}; ${result.cells} cell(s) decrypt under it`,
      );
      if (keyFile.checksum === 'absent')
        io.log('note: the key file had no checksum line; it was proven on the cells instead');
      return 0;
    });
  },
});
