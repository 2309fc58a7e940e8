import { CellcryptError, isCellcryptError, refuse } from '../../common/errors';
import type { Secret } from '../../common/secret';
import { identityValueFor } from '../../cellcrypt/key-identity';
import { readKeyFile } from '../../core/key-file';
import { validatePassphrase } from '../../core/passphrase';
import { renderScript, type ScriptOperation } from '../../core/script-plan';
import type { SensitiveColumn } from '../../core/registry';
import { SCRIPT_RENDERERS } from '../../engines';
import { SQLCMD_VARIABLES } from '../../engines/mssql/key-statements';
import { sqlcmdVariablesFile } from '../../engines/mssql/script-variables';
import { loadRegistry } from '../../core/registry';
import { loadSettings } from '../../config/settings';
import { defineCommand, wholeNumberOption } from '../command';
import { writeNewPrivateFile } from '../../core/private-file';
import { gitWorkTreeOf } from './show-key';

/** The T-SQL script of an operation (the programmatic function this command wraps). */
export function renderMssqlScript(
  operation: ScriptOperation,
  registry: readonly SensitiveColumn[],
  generation: number,
  passphrase: Secret,
): string {
  return renderScript(SCRIPT_RENDERERS.mssql, operation, registry, generation, passphrase);
}

/** The :setvar file of the three secrets a script uses (the programmatic function `script variables` wraps). */
export function scriptVariablesFile(passphrase: Secret, masterKeyPassword: Secret): Buffer {
  return sqlcmdVariablesFile({ passphrase, identityValue: identityValueFor(passphrase), masterKeyPassword });
}

type Operation = ScriptOperation | 'variables' | 'identity-value';

interface ScriptArgs {
  operation: Operation;
  engine: 'mssql';
  generation: number;
  keyFile?: string;
  masterKeyPasswordFile?: string;
  out?: string;
}

const VARIABLES_COMMAND = 'cellcrypt script variables --key-file F --master-key-password-file M --out V';

/** The master-key password file is read as a key file is (one line, UTF-8 or UTF-16 with a BOM); errors name it. */
async function readMasterKeyPassword(file: string): Promise<Secret> {
  try {
    return (await readKeyFile(file)).passphrase;
  } catch (error) {
    if (!isCellcryptError(error)) throw error;
    throw new CellcryptError(
      error.code,
      `--master-key-password-file: ${error.message.replace(/\bkey file\b/g, 'file')}`,
      {
        exitCode: 2,
        hint: 'write the master-key password alone on the first line of a UTF-8 file, or pass it on stdin with -',
        cause: error,
      },
    );
  }
}

/** O_EXCL and mode 0600, as `show-key --out`: the file holds the key, and an existing file may be a key's only copy. */
function writeVariablesFile(path: string, bytes: Buffer): void {
  const workTree = gitWorkTreeOf(path);
  if (workTree)
    throw refuse(
      'CellcryptUsage',
      `${path} is inside the git work tree ${workTree}, where \`git add -A\` would commit the key`,
      'write it outside the checkout (e.g. `--out ~/cellcrypt-vars.sql`), and delete it after the script ran',
    );
  writeNewPrivateFile(path, bytes, ': it is not overwritten');
}

export default defineCommand<ScriptArgs>({
  command: 'script <operation>',
  describe:
    'Print the complete T-SQL of install, change-key or activate for a DBA to review and run with sqlcmd ' +
    '(batches separated by GO, secrets as sqlcmd variables; --key-file F: the key the script creates or moves ' +
    'to, which it proves on the server); variables writes the UTF-16 :setvar file of the secrets the scripts need',
  builder: (y) =>
    y
      .positional('operation', {
        choices: ['install', 'change-key', 'activate', 'variables', 'identity-value'] as const,
        describe: 'what the script does (identity-value: replaced by variables)',
      })
      .option('engine', {
        choices: ['mssql'] as const,
        // Scripts exist for SQL Server only (PostgreSQL runs every operation itself): demanding
        // the one choice made the README's script commands fail.
        default: 'mssql' as const,
        describe: 'the database the script is for (SQL Server 2017+, the only one)',
      })
      .option('generation', {
        type: 'string',
        default: '1',
        coerce: wholeNumberOption('--generation'),
        describe:
          'change-key: the key generation the cells are on now (cellcrypt_key_N; ' +
          '`status` shows it); activate: the generation to re-create',
      })
      .option('key-file', {
        type: 'string',
        describe:
          'the key file (- for stdin): the key install and activate create, the new key of change-key; ' +
          'each script proves on the server that KEY_SOURCE is this key',
      })
      .option('master-key-password-file', {
        type: 'string',
        describe:
          'variables: a file holding the master-key password (- for stdin); install and activate create ' +
          'the master key with it, change-key opens it',
      })
      .option('out', { type: 'string', describe: 'variables: the new file to write (UTF-16 with a BOM, mode 0600)' })
      .check((a) => {
        const operation = String(a.operation);
        if (operation === 'identity-value') return true; // refused in run, with the way out
        // A script without the key cannot prove KEY_SOURCE (issue 14, DL3): the key file is required.
        if (a.keyFile === undefined)
          throw new Error(
            `\`script ${operation}\` needs --key-file F (the key file, - for stdin): the script proves ` +
              'on the server that KEY_SOURCE is this key before it writes a cell',
          );
        if (operation !== 'variables' && (a.masterKeyPasswordFile !== undefined || a.out !== undefined))
          throw new Error(
            `--master-key-password-file and --out are read only by \`script variables\`; \`script ${operation}\` ` +
              'prints the script on stdout: drop them',
          );
        if (operation === 'variables' && (a.masterKeyPasswordFile === undefined || a.out === undefined))
          throw new Error(
            `\`script variables\` needs --master-key-password-file M and --out V (it writes a UTF-16 file, ` +
              `never binary to a terminal): ${VARIABLES_COMMAND}`,
          );
        if (a.keyFile === '-' && a.masterKeyPasswordFile === '-')
          throw new Error('--key-file and --master-key-password-file cannot both read stdin (-): name one file');
        return true;
      }) as never,
  run: async (args, io) => {
    if (args.operation === 'identity-value')
      throw refuse(
        'CellcryptUsage',
        '`script identity-value` is replaced by `script variables`, which writes all three sqlcmd variables ' +
          '(CellcryptPassphrase, CellcryptIdentityValue, CellcryptMasterKeyPassword) to a UTF-16 file',
        `run \`${VARIABLES_COMMAND}\``,
      );
    const keyFile = await readKeyFile(args.keyFile!);
    if (keyFile.edgeWhitespace) io.log(`note: the key ${keyFile.edgeWhitespace}; it is taken as part of the key`);
    if (args.operation === 'variables') {
      const masterKeyPassword = await readMasterKeyPassword(args.masterKeyPasswordFile!);
      writeVariablesFile(args.out!, scriptVariablesFile(keyFile.passphrase, masterKeyPassword));
      io.result({ file: args.out, encoding: 'utf16le', variables: Object.values(SQLCMD_VARIABLES) });
      io.print(
        `wrote the sqlcmd variables to ${args.out} (UTF-16, mode 0600): run \`sqlcmd -S host -d OrgDb -f 65001 ` +
          `-i ${args.out},install.sql\` (or change-key.sql, activate.sql), then delete ${args.out}`,
      );
      return 0;
    }
    // A new key (install, change-key) must pass the key rule, as `change-key --key-file F` checks it.
    if (args.operation !== 'activate') validatePassphrase(keyFile.passphrase);
    const settings = loadSettings({ settingsFile: args.settingsFile, env: process.env });
    const registry = loadRegistry(settings.registryFile);
    const script = renderMssqlScript(args.operation, registry, args.generation, keyFile.passphrase);
    io.result({ operation: args.operation, engine: args.engine, script });
    io.print(script.trimEnd());
    return 0;
  },
});
