import type { Argv } from 'yargs';
import {
  DERIVATIONS,
  guidBytesToString,
  guidStringToBytes,
  nvarcharText,
  trialDecrypt,
  trialKeys,
  varcharText,
  type AesAlgorithm,
  type Derivation,
} from '../../cellcrypt';
import type { Secret } from '../../common/secret';
import { CellcryptError } from '../../common/errors';
import { readKeyFile } from '../../core/key-file';
import { defineCommand, type GlobalArgs } from '../command';

/**
 * Disaster recovery: the plaintext of blobs from the passphrase alone, with no server keys and
 * no database (the key GUID and SQL Server version are unknown: see cellcrypt/trial.ts).
 */

export type DecryptOfflineAs = 'nvarchar' | 'varchar' | 'hex';

export interface DecryptOfflineInput {
  passphrase: Secret;
  derivation: 'auto' | Derivation;
  as: DecryptOfflineAs;
  /** The row's uniqueidentifier primary key; without it integrity hashes cannot be checked. */
  authenticatorUuid?: string;
  blobs: string[];
}

export interface DecryptOfflineResult {
  /** 1-based position of the blob among the HEX arguments (the N of "blob N" on stderr). */
  input: number;
  ok: boolean;
  plaintext?: string;
  derivation?: Derivation;
  algorithm?: AesAlgorithm;
  keyGuid?: string;
  integrityChecked?: boolean;
  reason?: string;
  detail?: string;
}

const HEX = /^(?:0x)?((?:[0-9a-f]{2})+)$/i;

function parseBlob(text: string, position: number): Buffer {
  const match = HEX.exec(text.trim());
  if (!match) {
    const message = `blob ${position} is not hexadecimal: expected an even number of hex digits, optionally after 0x`;
    throw new CellcryptError('CellcryptUsage', message, { exitCode: 2 });
  }
  return Buffer.from(match[1], 'hex');
}

function render(plaintext: Buffer, as: DecryptOfflineAs): string | null {
  if (as === 'hex') return `0x${plaintext.toString('hex').toUpperCase()}`;
  return as === 'varchar' ? varcharText(plaintext) : nvarcharText(plaintext);
}

export function decryptOffline(request: DecryptOfflineInput): DecryptOfflineResult[] {
  const blobs = request.blobs.map((text, index) => parseBlob(text, index + 1));
  const authenticator =
    request.authenticatorUuid === undefined ? undefined : guidStringToBytes(request.authenticatorUuid);
  const keys = trialKeys(
    request.passphrase.reveal(),
    request.derivation === 'auto' ? DERIVATIONS : [request.derivation],
  );
  return blobs.map((blob, index): DecryptOfflineResult => {
    const input = index + 1;
    const keyGuid = blob.length >= 16 ? guidBytesToString(blob.subarray(0, 16)) : undefined;
    // Without a row id the hash cannot be checked, but the plaintext is still worth having.
    const trial = trialDecrypt(blob, keys, authenticator, { allowUncheckedIntegrity: true });
    if (!trial.ok) {
      const { reason, matched } = trial;
      if (!matched) return { input, ok: false, keyGuid, reason, detail: trial.detail };
      const detail = `${trial.detail} (the key matched: ${matched.derivation}/${matched.algorithm})`;
      return {
        input,
        ok: false,
        keyGuid,
        derivation: matched.derivation,
        algorithm: matched.algorithm,
        reason,
        detail,
      };
    }
    const { derivation, algorithm, integrityChecked } = trial;
    const plaintext = render(trial.plaintext, request.as);
    if (plaintext !== null) return { input, ok: true, plaintext, derivation, algorithm, keyGuid, integrityChecked };
    const detail =
      `decrypted with ${derivation}/${algorithm} but the ` + `bytes are not UTF-16 text: try --as varchar or --as hex`;
    return { input, ok: false, derivation, algorithm, keyGuid, reason: 'not-nvarchar', detail };
  });
}

interface DecryptOfflineArgs {
  keyFile: string;
  derivation: 'auto' | Derivation;
  as: DecryptOfflineAs;
  authenticatorUuid: string | undefined;
  hex: string[];
}

export default defineCommand<DecryptOfflineArgs>({
  command: 'decrypt-offline <hex..>',
  describe: 'print the plaintext of ENCRYPTBYKEY blobs from the key file alone (no database needed)',
  // yargs types the kebab-case names it was given; run reads the camelCase aliases it also sets.
  builder: (yargs) =>
    yargs
      .positional('hex', {
        type: 'string',
        array: true,
        // yargs gives a variadic positional a default of [] (shown as `[default: []]` in the help,
        // beside [required]); an explicit undefined keeps it from adding one.
        default: undefined,
        describe: 'blobs in hexadecimal (0x optional), one plaintext line printed per blob',
      })
      .option('key-file', { type: 'string', demandOption: true, describe: 'file holding the key (- = stdin)' })
      .option('derivation', {
        choices: ['auto', 'sql2016', 'sql2017'] as const,
        default: 'auto' as const,
        describe: 'how the key was derived from the passphrase: SQL Server 2016 (SHA-1), 2017+ (SHA-512), or try both',
      })
      .option('as', {
        choices: ['nvarchar', 'varchar', 'hex'] as const,
        default: 'nvarchar' as const,
        describe: 'how to print the plaintext bytes: UTF-16LE text (nvarchar), Windows-1252 text (varchar) or hex',
      })
      .option('authenticator-uuid', {
        type: 'string',
        describe: "the row's uniqueidentifier primary key; with it the integrity hash is checked",
      })
      // The root's database and settings options mean nothing here (no database is opened): still
      // accepted, so a shell alias that always passes them keeps working, but not offered.
      .hide('database-url')
      .hide('config-url')
      .hide('settings-file') as unknown as Argv<DecryptOfflineArgs & GlobalArgs>,
  run: async (args, io) => {
    if (!args.hex?.length) {
      throw new CellcryptError('CellcryptUsage', 'give at least one blob (HEX) to decrypt', { exitCode: 2 });
    }
    const keyFile = await readKeyFile(args.keyFile);
    if (keyFile.checksum === 'absent')
      io.log('note: the key file has no sha256: line, so the key itself is not checked');
    if (keyFile.edgeWhitespace) io.log(`note: the key ${keyFile.edgeWhitespace}; it is taken as part of the key`);
    const results = decryptOffline({
      passphrase: keyFile.passphrase,
      derivation: args.derivation,
      as: args.as,
      authenticatorUuid: args.authenticatorUuid,
      blobs: args.hex.map(String),
    });
    for (const result of results) {
      // A failed blob prints an empty line so line N still belongs to blob N.
      io.print(result.ok ? (result.plaintext ?? '') : '');
      if (!result.ok) io.log(`blob ${result.input}: ${result.reason}: ${result.detail}`);
      else if (/[\r\n]/.test(result.plaintext ?? '')) {
        io.log(
          `blob ${result.input}: the plaintext contains line breaks; use --json or --as hex to read it unambiguously`,
        );
      }
    }
    io.result({ results });
    return results.every((result) => result.ok) ? 0 : 3;
  },
});
