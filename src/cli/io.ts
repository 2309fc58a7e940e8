/**
 * Where a command's output goes. The contract (README, "Commands"; docs/architecture.md): with
 * `--json`, stdout carries exactly one JSON document and everything else (logs, progress) goes to
 * stderr; without it, stdout is for the human-readable result. Commands never call console.*
 * directly, so tests can capture output and the JSON rule cannot be broken by a stray log line.
 */
export interface CliIo {
  readonly json: boolean;
  /** Human-readable result line(s); suppressed under --json. */
  print(text: string): void;
  /** Log / progress line on stderr (always). */
  log(text: string): void;
  /** The one JSON document of a --json run (ignored without --json). */
  result(document: unknown): void;
  /** True when stderr is an interactive terminal and progress bars make sense. */
  readonly interactive: boolean;
}

/** The part of a stream CliIo uses; tests pass their own (a non-TTY stderr, for one). */
export interface OutputStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export function processIo(json: boolean, streams: { stdout: OutputStream; stderr: OutputStream } = process): CliIo {
  const { stdout, stderr } = streams;
  return {
    json,
    interactive: Boolean(stderr.isTTY) && !json,
    print(text) {
      if (!json) stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    log(text) {
      stderr.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    result(document) {
      if (json) stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    },
  };
}

/** An in-memory CliIo for tests. */
export function memoryIo(json = false): CliIo & { stdout: string[]; stderr: string[]; documents: unknown[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const documents: unknown[] = [];
  return {
    json,
    interactive: false,
    stdout,
    stderr,
    documents,
    print(text) {
      if (!json) stdout.push(text);
    },
    log(text) {
      stderr.push(text);
    },
    result(document) {
      if (json) documents.push(document);
    },
  };
}
