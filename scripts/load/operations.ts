// The key operations of the load test, each in its own cellcrypt process, as a DBA runs them.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const MAIN = resolve(__dirname, '../../src/cli/main.ts');

export interface OperationRun {
  readonly name: string;
  /** Milliseconds since the load test started. */
  readonly from: number;
  readonly to: number;
  readonly code: number | null;
  readonly killed: boolean;
  readonly stderr: string;
  readonly stdout: string;
}

/**
 * Runs `cellcrypt <args>`; with `killOn`, SIGKILLs it (a crash mid-operation) at the first stderr
 * output that matches, unless it already finished: a progress line is written only after a
 * batch committed, so a kill there lands between two batches' work.
 */
export function runCellcrypt(
  name: string,
  env: NodeJS.ProcessEnv,
  args: readonly string[],
  started: number,
  killOn?: RegExp,
): Promise<OperationRun> {
  const from = Date.now() - started;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', MAIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    let killed = false;
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (killOn && !killed && killOn.test(stderr)) killed = child.kill('SIGKILL');
    });
    child.on('error', fail);
    child.on('exit', (code) => {
      done({ name, from, to: Date.now() - started, code, killed: killed && code === null, stderr, stdout });
    });
  });
}
