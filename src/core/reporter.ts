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

/**
 * Plain lines, at most one every `intervalMs` per task plus the last: for logs, CI and --json runs.
 * The clock starts with the task, a line is written only when the count has moved, and never for
 * the count `done` is about to print: before, the first tick always printed, so a task of one
 * batch showed `label: n/n` and then `label: n/n done`, and the empty batch that ends a
 * conversion repeated the last line.
 */
export function lineReporter(write: (text: string) => void, intervalMs = 2000): Reporter {
  return {
    log: write,
    progress(label, total) {
      let done = 0;
      let last = Date.now();
      let shown = 0;
      return {
        tick(count) {
          done += count;
          if (done === shown || done >= total) return;
          const now = Date.now();
          if (now - last >= intervalMs) {
            last = now;
            shown = done;
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
