import type { Argv } from 'yargs';
import { listKeys, parsePruneDate, pruneKeys, type KeyHistoryRow } from '../../core/keys';
import type { CliIo } from '../io';
import { defineCommand, type GlobalArgs } from '../command';
import { withToolkit } from '../session';

export { listKeys, pruneKeys };

interface KeysArgs {
  action?: 'prune';
  before?: string;
  yes: boolean;
}

export default defineCommand<KeysArgs>({
  command: 'keys [action]',
  describe:
    'List every key generation the key store keeps (never a secret): GUID, created, retired, ' +
    'cells here that use it, last saved; `keys prune --before DATE --yes` forgets old unused ones',
  builder: (y) =>
    y
      .positional('action', { choices: ['prune'] as const, describe: 'prune: forget old generations' })
      .option('before', { type: 'string', requiresArg: true, describe: 'prune: generations created before this date' })
      .option('yes', { type: 'boolean', default: false, describe: 'prune: really forget them (else only list)' })
      .check((a) => {
        if (a.action === 'prune' && !a.before) throw new Error('keys prune needs --before DATE');
        if (a.action !== 'prune' && (a.before || a.yes)) throw new Error('--before and --yes apply to keys prune');
        return true;
      }) as unknown as Argv<KeysArgs & GlobalArgs>,
  run: async (args, io) => {
    const before = args.action === 'prune' ? parsePruneDate(args.before!) : undefined;
    return withToolkit(
      args,
      io,
      async (tk) => {
        if (!before) {
          const rows = await listKeys(tk);
          io.result({ keys: rows });
          printKeys(io, rows);
          return 0;
        }
        const result = await pruneKeys(tk, before, args.yes);
        io.result(result);
        const list = result.pruned.join(', ') || 'none';
        if (!result.confirmed) {
          io.print(`would forget generation(s): ${list}; run again with --yes to forget them`);
          io.print('an older backup of this org still needs its generation: save it first (show-key --generation N)');
          return result.pruned.length ? 2 : 0;
        }
        io.print(`forgot generation(s): ${list}; kept: ${result.kept.join(', ') || 'none'}`);
        return 0;
      },
      { readOnly: !before },
    );
  },
});

function printKeys(io: CliIo, rows: KeyHistoryRow[]): void {
  if (!rows.length) {
    io.print('the key store keeps no key history for this organization yet (it starts with the next install)');
    return;
  }
  io.print(
    ['generation ', 'key GUID'.padEnd(37), 'created'.padEnd(25), 'retired'.padEnd(25), 'cells', ' saved'].join(' '),
  );
  for (const row of rows) {
    const mark = row.current ? ' *' : '';
    io.print(
      `${`${row.generation}${mark}`.padEnd(11)} ${row.keyGuid.padEnd(37)} ${row.createdAt.padEnd(25)} ` +
        `${(row.retiredAt ?? '-').padEnd(25)} ${String(row.cells).padStart(5)}  ${row.lastSavedAt ?? 'never'}`,
    );
  }
  io.print('* the current generation');
}
