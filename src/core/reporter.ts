/**
 * How long work tells the user where it is. Core code reports through this interface only;
 * the CLI decides between a progress bar (interactive stderr) and plain log lines.
 */
export interface Progress {
  tick(count: number): void;
  done(): void;
}

export interface Reporter {
  log(text: string): void;
  progress(label: string, total: number): Progress;
}

export const silentReporter: Reporter = {
  log: () => undefined,
  progress: () => ({ tick: () => undefined, done: () => undefined }),
};

/** Plain lines, at most one every `intervalMs` per task plus the last: for logs, CI and --json runs. */
export function lineReporter(write: (text: string) => void, intervalMs = 2000): Reporter {
  return {
    log: write,
    progress(label, total) {
      let done = 0;
      let last = 0;
      return {
        tick(count) {
          done += count;
          const now = Date.now();
          if (now - last >= intervalMs) {
            last = now;
            write(`${label}: ${done}/${total}`);
          }
        },
        done() {
          write(`${label}: ${done}/${total} done`);
        },
      };
    },
  };
}
