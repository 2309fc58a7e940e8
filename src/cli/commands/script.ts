import { CellcryptError } from '../../common/errors';
import { identityValueFor } from '../../cellcrypt/key-identity';
import { readKeyFile } from '../../core/key-file';
import { renderScript, type ScriptOperation } from '../../core/script-plan';
import type { SensitiveColumn } from '../../core/registry';
import { SCRIPT_RENDERERS } from '../../engines';
import { loadRegistry } from '../../core/registry';
import { loadSettings } from '../../config/settings';
import { defineCommand, wholeNumberOption } from '../command';

/** The T-SQL script of an operation (the programmatic function this command wraps). */
export function renderMssqlScript(
  operation: ScriptOperation,
  registry: readonly SensitiveColumn[],
  generation: number,
): string {
  return renderScript(SCRIPT_RENDERERS.mssql, operation, registry, generation);
}

type Operation = ScriptOperation | 'identity-value';

export default defineCommand<{ operation: Operation; engine: 'mssql'; generation: number; keyFile?: string }>({
  command: 'script <operation>',
  describe:
    'Print the complete T-SQL of install, change-key or activate for a DBA to ' +
    'review and run with sqlcmd (batches separated by GO, secrets as sqlcmd ' +
    'variables); identity-value prints the :setvar line the scripts need for a key file',
  builder: (y) =>
    y
      .positional('operation', {
        choices: ['install', 'change-key', 'activate', 'identity-value'] as const,
        describe: 'what the script does',
      })
      .option('engine', {
        choices: ['mssql'] as const,
        // Scripts exist for SQL Server only (PostgreSQL runs every operation itself): demanding
        // the one choice made the README's `script identity-value --key-file F` fail.
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
      .option('key-file', { type: 'string', describe: 'identity-value: the key file (- for stdin)' })
      .check((a) => {
        // The other scripts take the key as the sqlcmd variable CellcryptPassphrase: a key file
        // given to them was silently ignored, and the DBA believed the script used it.
        if (a.keyFile !== undefined && a.operation !== 'identity-value')
          throw new Error(
            `--key-file is read only by \`script identity-value\`; \`script ${String(a.operation)}\` ` +
              'takes the key as the sqlcmd variable CellcryptPassphrase (-v or :setvar): drop --key-file',
          );
        return true;
      }) as never,
  run: async (args, io) => {
    if (args.operation === 'identity-value') {
      if (!args.keyFile)
        throw new CellcryptError('CellcryptUsage', 'identity-value needs --key-file F', { exitCode: 2 });
      // A hash of the key, not the key: it identifies the key as the key GUID in every cell does.
      const { passphrase } = await readKeyFile(args.keyFile);
      const value = identityValueFor(passphrase).reveal();
      io.result({ variable: 'CellcryptIdentityValue', value });
      io.print(`:setvar CellcryptIdentityValue "${value}"`);
      return 0;
    }
    const settings = loadSettings({ settingsFile: args.settingsFile, env: process.env });
    const script = renderMssqlScript(args.operation, loadRegistry(settings.registryFile), args.generation);
    io.result({ operation: args.operation, engine: args.engine, script });
    io.print(script.trimEnd());
    return 0;
  },
});
