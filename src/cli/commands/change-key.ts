import { changeKey, type ChangeKeyResult } from '../../core/change-key';
import { readKeyFile } from '../../core/key-file';
import { defineCommand, wholeNumberOption } from '../command';
import type { CliIo } from '../io';
import { withToolkit } from '../session';

export { changeKey };

interface ChangeKeyArgs {
  keyFile?: string;
  generate?: boolean;
  resume?: boolean;
  batchSize?: number;
  dryRun: boolean;
}

export default defineCommand<ChangeKeyArgs>({
  command: 'change-key',
  describe:
    'Re-encrypt every cell under a new key (--key-file F, - for ' +
    'stdin, or --generate), in one transaction unless --batch-size N',
  builder: (y) =>
    y
      .option('key-file', {
        type: 'string',
        describe: 'the new key: a file written by show-key or any UTF-8/UTF-16 text file; - reads stdin',
      })
      .option('generate', {
        type: 'boolean',
        describe: 'generate a random key (save it afterwards with show-key --out F)',
      })
      .option('resume', {
        type: 'boolean',
        describe: 'finish a batched change that was interrupted (uses the key it started with)',
      })
      .option('batch-size', {
        type: 'string',
        requiresArg: true,
        coerce: wholeNumberOption('--batch-size'),
        describe: 'cells per transaction, for tables too large for one transaction; a re-run with --resume continues',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'print the plan, its statements (secrets as ***) and the estimate; change nothing',
      })
      .conflicts('key-file', ['generate', 'resume'])
      .conflicts('generate', 'resume')
      .check((a) => {
        if (!a['key-file'] && !a.generate && !a.resume)
          throw new Error('name the new key: --key-file F, --generate, or --resume');
        return true;
      }) as never,
  run: async (args, io) => {
    const newKey = args.keyFile ? (await readKeyFile(args.keyFile)).passphrase : undefined;
    return withToolkit(args, io, async (tk) => {
      const result = await changeKey(tk, {
        newKey,
        generate: args.generate,
        resume: args.resume,
        batchSize: args.batchSize,
        dryRun: args.dryRun,
      });
      io.result(result);
      printResult(io, result);
      return 0;
    });
  },
});

function printResult(io: CliIo, result: ChangeKeyResult): void {
  const newGuid = result.newKey.guid ?? 'a generated key: its GUID is known when the real run generates it';
  const move = `${result.oldKey.name} (${result.oldKey.guid}) -> ${result.newKey.name} (${newGuid})`;
  if (result.dryRun) {
    io.print(`dry run (${result.mode}): ${move}`);
    for (const c of result.columns) io.print(`  ${c.table}.${c.column}: ${c.cells} cell(s), ${c.bytes} bytes`);
    io.print(`estimate: ${result.cells} cell(s), ${result.bytes} bytes rewritten\nstatements:`);
    for (const statement of result.statements ?? []) io.print(`  ${statement.replace(/\n/g, '\n  ')}`);
    io.print('nothing was changed');
    return;
  }
  io.print(`key changed: ${move}; ${result.cells} cell(s) re-encrypted in ${result.durationMs} ms (${result.mode})`);
  io.print('save the new key outside this deployment now: cellcrypt show-key --out F');
}
