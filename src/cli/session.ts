import { loadSettings, type Settings } from '../config/settings';
import { openToolkit } from '../open-toolkit';
import { type Toolkit } from '../core/toolkit';
import type { GlobalArgs } from './command';
import type { CliIo } from './io';
import { reporterFor } from './progress-reporter';

export function settingsFrom(args: GlobalArgs): Settings {
  return loadSettings({ settingsFile: args.settingsFile, databaseUrl: args.databaseUrl, configUrl: args.configUrl });
}

/** Opens the toolkit for one command and always closes it (PGlite must be closed to flush). */
export async function withToolkit<T>(args: GlobalArgs, io: CliIo, work: (tk: Toolkit) => Promise<T>): Promise<T> {
  const tk = await openToolkit(settingsFrom(args), { reporter: reporterFor(io) });
  try {
    return await work(tk);
  } finally {
    await tk.close();
  }
}
