import { asRunHere } from './invocation';

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
  const stdout = survivingClosedPipe(streams.stdout);
  const stderr = survivingClosedPipe(streams.stderr);
  const line = (text: string) => asRunHere(text.endsWith('\n') ? text : `${text}\n`);
  return {
    json,
    interactive: Boolean(streams.stderr.isTTY) && !json,
    print(text) {
      if (!json) stdout.write(line(text));
    },
    log(text) {
      stderr.write(line(text));
    },
    result(document) {
      if (json) stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    },
  };
}

const guarded = new WeakMap<OutputStream, OutputStream>();

/**
 * A reader that went away (`| head`, a dropped ssh session) makes the next write fail with
 * EPIPE, which Node raises as an unhandled 'error' event: the process died in the middle of a
 * batched key change. Output is a report, never a reason to stop: once the pipe is closed,
 * writes are dropped and the operation goes on (its audit row and exit code still tell).
 */
export function survivingClosedPipe(stream: OutputStream): OutputStream {
  const known = guarded.get(stream);
  if (known) return known;
  let closed = false;
  const events = stream as OutputStream & { on?: (event: 'error', listener: (error: unknown) => void) => void };
  // EPIPE, or any other failure of the stream: nothing more can be shown there, and that is all.
  events.on?.('error', () => {
    closed = true;
  });
  const safe: OutputStream = {
    isTTY: stream.isTTY,
    write(text: string) {
      if (closed) return false;
      try {
        return stream.write(text);
      } catch (error) {
        if ((error as NodeJS.ErrnoException)?.code !== 'EPIPE') throw error;
        closed = true;
        return false;
      }
    },
  };
  guarded.set(stream, safe);
  return safe;
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
