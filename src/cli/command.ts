import type { Argv, CommandModule } from 'yargs';
import type { CliIo } from './io';

/** Options every command receives (DESIGN.md CLI contract). */
export interface GlobalArgs {
  envFile?: string;
  databaseUrl?: string;
  configUrl?: string;
  json: boolean;
}

/**
 * One CLI command: a yargs module whose handler is `run`. `run` returns the exit code; errors
 * are thrown as CellcryptError and turned into exit codes by the root (src/cli/main.ts).
 * Each command file also exports the programmatic function it wraps (graphile-migrate style).
 */
export interface CommandSpec<A> {
  command: string;
  describe: string;
  builder?: (yargs: Argv<GlobalArgs>) => Argv<A & GlobalArgs>;
  run: (args: A & GlobalArgs, io: CliIo) => Promise<number>;
}

export type CellcryptCommand = CommandModule<GlobalArgs, GlobalArgs> & {
  run: (args: GlobalArgs & Record<string, unknown>, io: CliIo) => Promise<number>;
};

export function defineCommand<A>(spec: CommandSpec<A>): CellcryptCommand {
  return {
    command: spec.command,
    describe: spec.describe,
    builder: (spec.builder ?? ((y: Argv<GlobalArgs>) => y)) as CommandModule<GlobalArgs, GlobalArgs>['builder'],
    // The root installs the real handler (it owns io and exit codes); see src/cli/main.ts.
    handler: () => undefined,
    run: spec.run as CellcryptCommand['run'],
  };
}
