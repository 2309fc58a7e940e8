import type { Argv, CommandModule } from 'yargs';
import type { CliIo } from './io';

/** Options every command receives (the CLI contract: README "Commands", docs/architecture.md). */
export interface GlobalArgs {
  settingsFile?: string;
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

/**
 * A yargs `coerce` for options that take a whole number of 1 or more, written in decimal digits
 * only: yargs' own number type read `0x10` as 16 and a missing value as "use the default", and
 * a repeated option as an array.
 */
export function wholeNumberOption(name: string): (value: unknown) => number {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`${name} is given more than once`);
    const text = String(value).trim();
    if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(Number(text)))
      throw new Error(`${name} must be a whole number of 1 or more (decimal digits), got "${text}"`);
    return Number(text);
  };
}
