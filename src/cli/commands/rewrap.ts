import { rewrap, type RewrapResult } from '../../core/rewrap';
import { defineCommand } from '../command';
import type { CliIo } from '../io';
import { withToolkit } from '../session';

export { rewrap };

export default defineCommand<{ dryRun: boolean }>({
  command: 'rewrap',
  describe:
    'A new certificate and a new master-key password, in one transaction: the keys, ' +
    'their GUIDs and every cell stay as they are (to replace the key itself: change-key)',
  builder: (y) =>
    y.option('dry-run', {
      type: 'boolean',
      default: false,
      describe: 'print the statements (secrets as ***); change nothing',
    }) as never,
  run: (args, io) =>
    withToolkit(args, io, async (tk) => {
      const result = await rewrap(tk, { dryRun: args.dryRun });
      io.result(result);
      printResult(io, result);
      return 0;
    }),
});

function printResult(io: CliIo, result: RewrapResult): void {
  const keys = result.keys.map((k) => `${k.name} (${k.guid})`).join(', ');
  const move = `certificate ${result.certificate.from} -> ${result.certificate.to} for ${keys}`;
  if (result.dryRun) {
    io.print(`dry run: ${move}, and a new master-key password\nstatements:`);
    for (const statement of result.statements ?? []) io.print(`  ${statement.replace(/\n/g, '\n  ')}`);
    io.print('nothing was changed');
    return;
  }
  io.print(`rewrapped: ${move}; new master-key password in the key store; no cell rewritten (${result.durationMs} ms)`);
  io.print('the encryption key is unchanged: a key file saved with show-key still opens every cell');
}
