import { loadSettings, type Settings } from '../config/settings';
import { openToolkit } from '../open-toolkit';
import { type Toolkit } from '../core/toolkit';
import type { GlobalArgs } from './command';
import type { CliIo } from './io';
import { reporterFor } from './progress-reporter';

export function settingsFrom(args: GlobalArgs): Settings {
  return loadSettings({ settingsFile: args.settingsFile, databaseUrl: args.databaseUrl, configUrl: args.configUrl });
}

/**
 * Opens the toolkit for one command and always closes it (PGlite must be closed to flush).
 * `readOnly`: the command changes nothing, so it creates no embedded database either.
 */
export async function withToolkit<T>(
  args: GlobalArgs,
  io: CliIo,
  work: (tk: Toolkit) => Promise<T>,
  options: { readOnly?: boolean } = {},
): Promise<T> {
  const tk = await openToolkit(settingsFrom(args), { reporter: reporterFor(io), readOnly: options.readOnly });
  try {
    return await work(tk);
  } finally {
    await tk.close();
  }
}

/** withToolkit for a command that changes nothing (status, verify, doctor, migrate status, keys). */
export async function withReadOnlyToolkit<T>(
  args: GlobalArgs,
  io: CliIo,
  work: (tk: Toolkit) => Promise<T>,
): Promise<T> {
  return withToolkit(args, io, work, { readOnly: true });
}
