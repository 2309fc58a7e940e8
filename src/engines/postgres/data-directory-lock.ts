import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { CellcryptError } from '../../common/errors';

/**
 * PGlite is single-process: two processes (or two instances in one process) on one data
 * directory corrupt it. So an embedded data directory is opened only under `<dir>.lock`,
 * created with O_EXCL and holding the owner's pid. A lock whose process is gone (killed) is
 * stale and taken over; a live one is refused with the pid and command that hold it.
 */
const held = new Map<string, string>(); // data directory -> lock file

export function lockDataDirectory(directory: string): () => void {
  const lockFile = `${directory}.lock`;
  const owner = {
    pid: process.pid,
    host: hostname(),
    command: process.argv.slice(1).join(' ').slice(0, 300),
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx', 0o600);
      writeSync(fd, `${JSON.stringify(owner)}\n`);
      closeSync(fd);
      held.set(directory, lockFile);
      return () => release(directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readHolder(lockFile);
      if (holder && isAlive(holder)) {
        const who =
          holder.pid === process.pid
            ? 'this process already has it open'
            : `process ${holder.pid} (${holder.command || 'unknown command'}, since ${holder.since})`;
        throw new CellcryptError('CellcryptDataDirectoryBusy', `the embedded database ${directory} is in use: ${who}`, {
          exitCode: 2,
          hint:
            'wait for that command to finish (an embedded database admits one process ' +
            'at a time); if that process no longer exists, delete the lock file ' +
            lockFile,
        });
      }
      try {
        unlinkSync(lockFile); // stale: its process is gone
      } catch {
        // someone else removed it first; try again
      }
    }
  }
  throw new CellcryptError('CellcryptDataDirectoryBusy', `could not take the lock ${lockFile}`, {
    exitCode: 2,
    hint: 'run the command again',
  });
}

function release(directory: string): void {
  const lockFile = held.get(directory);
  if (!lockFile) return;
  held.delete(directory);
  try {
    if (readHolder(lockFile)?.pid === process.pid) unlinkSync(lockFile);
  } catch {
    // already gone
  }
}

function readHolder(lockFile: string): { pid: number; host: string; command: string; since: string } | undefined {
  try {
    return JSON.parse(readFileSync(lockFile, 'utf8'));
  } catch {
    return undefined; // unreadable or half-written: treated as stale
  }
}

function isAlive(holder: { pid: number; host: string }): boolean {
  if (holder.host !== hostname()) return true; // another machine: cannot tell, assume alive
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// A process that exits without closing (error, Ctrl-C) leaves no lock behind.
process.on('exit', () => {
  for (const directory of [...held.keys()]) release(directory);
});
