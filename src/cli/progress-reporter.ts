import { SingleBar, Presets } from 'cli-progress';
import { lineReporter, type Reporter } from '../core/reporter';
import type { CliIo } from './io';

/** A progress bar on an interactive stderr; plain periodic lines otherwise (logs, CI, --json). */
export function reporterFor(io: CliIo): Reporter {
  const lines = lineReporter((text) => io.log(text));
  if (!io.interactive) return lines;
  return {
    log: lines.log,
    progress(label, total) {
      const bar = new SingleBar(
        {
          format: `${label} [{bar}] {percentage}% {value}/{total} {eta_formatted}`,
          stream: process.stderr,
          hideCursor: true,
        },
        Presets.shades_classic,
      );
      bar.start(Math.max(total, 1), 0);
      return {
        tick: (count) => bar.increment(count),
        done: () => bar.stop(),
      };
    },
  };
}
