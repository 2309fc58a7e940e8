import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * The executable a DBA runs: the compiled CLI when dist/ is up to date (a fresh `npm ci`), else
 * the TypeScript through tsx (scripts/launch.cjs). A compiled start takes about half a second
 * less, which tests that start many processes feel.
 */
const BIN = resolve(__dirname, '../../src/cli/bin.js');

export interface ProcessRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The --json document, if stdout held one. */
  json: any;
  ms: number;
}

/**
 * The real CLI in a process of its own, as a DBA starts it; `onStart` gets the child (to send it
 * signals). A run that takes longer than `timeoutMs` is killed and reported with its output.
 */
export function cellcryptProcess(
  env: NodeJS.ProcessEnv,
  args: string[],
  options: { timeoutMs?: number; onStart?: (child: ChildProcess, stderr: () => string) => void } = {},
): Promise<ProcessRun> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    options.onStart?.(child, () => stderr);
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      let json: any;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      done({ code, signal, stdout, stderr, json, ms: Date.now() - started });
    });
  });
}
