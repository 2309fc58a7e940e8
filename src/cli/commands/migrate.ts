import { install } from '../../core/install';
import { MIGRATIONS_CONFIG, ORG_MIGRATIONS } from '../../core/install-run';
import type { Toolkit } from '../../core/toolkit';
import { withOrgLock } from '../../core/org-lock';
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
      // knex's list creates its table: on a database never migrated, report without it.
      if (!(await tk.engine.knex.schema.hasTable(MIGRATIONS_CONFIG.tableName!)))
        return { completed: [], pending: ORG_MIGRATIONS.names() };
      const [completed, pending] = (await migrator.list(MIGRATIONS_CONFIG)) as [
        Array<{ name: string }>,
        Array<{ file: string }>,
      ];
      return { completed: completed.map((m) => m.name), pending: pending.map((m) => m.file) };
    }
    case 'unlock':
      return unlockMigrations(tk);
  }
}

/**
 * Releases knex's migration lock only when no install can be holding it: under the org lock,
 * which every install holds for its whole run. Says whether there was a lock to release.
 */
async function unlockMigrations(tk: Toolkit): Promise<{ wasLocked: boolean; unlocked: boolean }> {
  return withOrgLock(tk, 'migrate unlock', async () => {
    const table = `${MIGRATIONS_CONFIG.tableName}_lock`;
    if (!(await tk.engine.knex.schema.hasTable(table))) return { wasLocked: false, unlocked: false };
    const rows: Array<{ is_locked: number | boolean }> = await tk.engine.knex(table).select('is_locked');
    const wasLocked = rows.some((row) => Number(row.is_locked) === 1);
    if (wasLocked) await tk.engine.knex.migrate.forceFreeMigrationsLock(MIGRATIONS_CONFIG);
    return { wasLocked, unlocked: wasLocked };
  });
}

export default defineCommand<{ action: 'latest' | 'status' | 'unlock' }>({
  command: 'migrate <action>',
  describe: 'Run the migrations (latest), list them (status), or release a lock left by a killed run (unlock)',
  builder: (y) =>
    y.positional('action', { choices: ['latest', 'status', 'unlock'] as const, demandOption: true }) as never,
  run: async (args, io) =>
    withToolkit(
      args,
      io,
      async (tk) => {
        const result = await migrate(tk, args.action);
        io.result(result);
        io.print(describe(result));
        return 0;
      },
      { readOnly: args.action === 'status' },
    ),
});

/** The result for a person (`--json` prints the document itself). */
function describe(result: {
  applied?: string[];
  completed?: string[];
  pending?: string[];
  wasLocked?: boolean;
}): string {
  if (result.applied)
    return result.applied.length ? `applied: ${result.applied.join(', ')}` : 'nothing to apply: up to date';
  if (result.completed)
    return [
      ...result.completed.map((name) => `done     ${name}`),
      ...(result.pending ?? []).map((name) => `pending  ${name}`),
    ].join('\n');
  return result.wasLocked
    ? 'released the migration lock a killed run had left (no install holds the organization)'
    : 'there was no migration lock to release';
}
