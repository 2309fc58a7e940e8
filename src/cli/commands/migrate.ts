import { install } from '../../core/install';
import { MIGRATIONS_CONFIG } from '../../core/install-run';
import type { Toolkit } from '../../core/toolkit';
import { defineCommand } from '../command';
import { withToolkit } from '../session';

/** The knex migrations by hand: what `install` runs, plus their status and a stuck-lock release. */
export async function migrate(tk: Toolkit, action: 'latest' | 'status' | 'unlock') {
  const migrator = tk.engine.knex.migrate;
  switch (action) {
    case 'latest': {
      // The same preflight, migrations and late conversions as `install`, so the two agree.
      const result = await install(tk);
      return { applied: result.migrations };
    }
    case 'status': {
      const [completed, pending] = (await migrator.list(MIGRATIONS_CONFIG)) as [
        Array<{ name: string }>,
        Array<{ file: string }>,
      ];
      return { completed: completed.map((m) => m.name), pending: pending.map((m) => m.file) };
    }
    case 'unlock':
      await migrator.forceFreeMigrationsLock(MIGRATIONS_CONFIG);
      return { unlocked: true };
  }
}

export default defineCommand<{ action: 'latest' | 'status' | 'unlock' }>({
  command: 'migrate <action>',
  describe: 'Run the migrations (latest), list them (status), or release a lock left by a killed run (unlock)',
  builder: (y) =>
    y.positional('action', { choices: ['latest', 'status', 'unlock'] as const, demandOption: true }) as never,
  run: async (args, io) =>
    withToolkit(args, io, async (tk) => {
      const result = await migrate(tk, args.action);
      io.result(result);
      io.print(JSON.stringify(result, null, 2));
      return 0;
    }),
});
