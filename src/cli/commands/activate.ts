import { CellcryptError, isCellcryptError } from '../../common/errors';
import { activate } from '../../core/activate';
import { readKeyFile } from '../../core/key-file';
import { readShareFile, rebuildKey, type KeyShare } from '../../core/key-shares';
import { defineCommand } from '../command';
import { withToolkit } from '../session';

export { activate };

/** A key that does not fit the cells and has spaces at its edge: the spaces are the likely cause. */
function namesWhitespace(error: unknown, edgeWhitespace: string | undefined): unknown {
  if (!edgeWhitespace || !isCellcryptError(error)) return error;
  if (error.code !== 'SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData') return error;
  return new CellcryptError(error.code, `${error.message} (the key in the file ${edgeWhitespace})`, {
    exitCode: error.exitCode,
    hint:
      'if the whitespace is not part of the key, remove it from the key file and run activate again; ' +
      `else ${error.hint}`,
    cause: error,
  });
}

export default defineCommand<{
  keyFile?: string;
  keyShare?: string[];
  newKeyStore: boolean;
  moved?: boolean;
  copy?: boolean;
}>({
  command: 'activate',
  describe:
    'Re-activate encryption with a saved key after a restore or import (--key-file F, - for stdin; or ' +
    '--key-share F per share; or neither: the key history); proves the key on the cells before changing anything',
  builder: (y) =>
    y
      .option('key-file', {
        type: 'string',
        describe: 'the saved key (show-key --out F): utf8, utf16le or base64, checksum checked when present',
      })
      .option('key-share', {
        type: 'string',
        array: true,
        requiresArg: true,
        describe: 'instead of --key-file: one share file (show-key --shares); repeat it for each of K shares',
      })
      // At most one source: a key file and shares that disagree would leave it open which one
      // counts. Neither: the key store's key history has the cells' key (issue 18).
      .check((a) => {
        const shareFiles = a.keyShare as string[] | undefined;
        if (a.keyFile !== undefined && shareFiles !== undefined && shareFiles.length > 0)
          throw new Error('give one of --key-file F or --key-share F (once per share), not both');
        return true;
      })
      .option('new-key-store', {
        type: 'boolean',
        default: false,
        describe: 'the key store has nothing for this org (new or rebuilt), or its secret is lost: write it afresh',
      })
      // No defaults: yargs counts a defaulted option as given, and the two conflict.
      .option('moved', {
        type: 'boolean',
        describe: "the key store's values belong to another database that this one replaces",
      })
      .option('copy', {
        type: 'boolean',
        describe: 'this database is a copy of the one the key store serves: give it its own org id and values',
      })
      .conflicts('moved', 'copy') as never,
  run: async (args, io) => {
    // Every share is read and checked before the database opens; one by one, so a refusal names
    // the first bad file given.
    let shares: KeyShare[] | undefined;
    if (args.keyShare?.length) {
      shares = [];
      for (const file of args.keyShare) shares.push(await readShareFile(file));
    }
    const keyFile = shares || args.keyFile === undefined ? undefined : await readKeyFile(args.keyFile);
    if (keyFile?.edgeWhitespace) io.log(`note: the key ${keyFile.edgeWhitespace}; it is taken as part of the key`);
    return withToolkit(args, io, async (tk) => {
      // The shares name the org they were cut for: compared with this database's before anything else.
      const passphrase = shares ? await rebuildKey(shares, await tk.organizationId()) : keyFile?.passphrase;
      const { newKeyStore, moved, copy } = args;
      const result = await activate(tk, passphrase, { newKeyStore, moved, copy }).catch((error: unknown) => {
        throw namesWhitespace(error, keyFile?.edgeWhitespace);
      });
      const source = shares
        ? { keyShares: { given: shares.length, threshold: shares[0].threshold, shares: shares[0].total } }
        : keyFile
          ? { keyFile: { encoding: keyFile.encoding, checksum: keyFile.checksum } }
          : {};
      io.result({ ...result, ...source });
      io.print(
        `encryption active again: key ${result.keyName} (${result.keyGuid}), ` +
          `derivation ${result.derivation}; ${result.cells} cell(s) decrypt under it`,
      );
      if (result.fromHistory)
        io.print(`the key came from the key store's key history: generation ${result.fromHistory.generation}`);
      if (keyFile?.checksum === 'absent')
        io.log('note: the key file had no checksum line; it was proven on the cells instead');
      return 0;
    });
  },
});
