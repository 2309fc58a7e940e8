import { seedDemo } from '../../core/demo-seed';
import { defineCommand } from '../command';
import { withToolkit } from '../session';

export { seedDemo };

export default defineCommand<{ action: string; rows: number }>({
  command: 'demo <action>',
  describe: 'Demo org: `demo seed [--rows N]` creates Dynamics-shaped tables with plaintext rows (N per table)',
  builder: (y) =>
    y
      .positional('action', { choices: ['seed'] as const, describe: 'what to do', demandOption: true })
      .option('rows', { type: 'number', default: 100, describe: 'rows per table' })
      .check((a) => {
        if (!Number.isInteger(a.rows) || a.rows < 0 || a.rows > 10_000_000)
          throw new Error('--rows must be a whole number from 0 to 10000000');
        return true;
      }) as never,
  run: async (args, io) =>
    withToolkit(args, io, async (tk) => {
      const result = await seedDemo(tk, args.rows);
      io.result(result);
      for (const t of result.tables) io.print(`${t.table}: ${t.inserted} plaintext row(s) added`);
      return 0;
    }),
});
