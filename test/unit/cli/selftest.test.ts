import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatResult } from '../../../src/cli/commands/selftest';
import { SELFTEST_PREFIX } from '../../../src/cli/commands/selftest-database';
import { inProcessCli } from '../../support/in-process-cli';

/**
 * `cellcrypt selftest` before any check runs: a server it cannot reach is the operator's to fix
 * (exit 1, CellcryptDatabaseUnavailable and the way out, within 30 s, no password shown), a
 * wrong option is refused (exit 2), and nothing is left behind in either case.
 */
const leftovers = () => readdirSync(tmpdir()).filter((name) => name.startsWith(SELFTEST_PREFIX));

/** `work` with a temporary directory of its own (os.tmpdir() reads TMPDIR): other tests' selftests stay out of it. */
async function inOwnTmpdir<T>(work: () => Promise<T>): Promise<T> {
  const saved = process.env.TMPDIR;
  const own = mkdtempSync(join(tmpdir(), 'cellcrypt-selftest-tmp-'));
  process.env.TMPDIR = own;
  try {
    return await work();
  } finally {
    // Assigning undefined to process.env would set the string "undefined".
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    rmSync(own, { recursive: true, force: true });
  }
}

async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((closed) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => closed());
      }),
  };
}

describe('cellcrypt selftest: refusals and unreachable servers', function () {
  this.timeout(120_000);

  for (const [label, url] of [
    ['nothing listening on 127.0.0.1:1', 'mssql://sa:pa55word@127.0.0.1:1/master'],
    ['a PostgreSQL port with nothing listening', 'postgres://u:pa55word@127.0.0.1:1/postgres'],
  ]) {
    it(`${label}: exit 1, CellcryptDatabaseUnavailable with the way out, within 30 s`, async () => {
      const started = Date.now();
      const [run, left] = await inOwnTmpdir(async () => [
        await inProcessCli('--database-url', url, '--json', 'selftest'),
        leftovers(),
      ]);
      expect(Date.now() - started).to.be.below(30_000);
      expect(run.code, run.stderr).to.equal(1);
      expect(run.json.error.code).to.equal('CellcryptDatabaseUnavailable');
      expect(run.json.error.hint).to.contain('--database-url');
      expect(run.stderr + run.stdout).not.to.contain('pa55word');
      expect(run.stderr).not.to.match(/\n\s+at /);
      expect(left, 'the key store directory was left behind').to.deep.equal([]);
    });
  }

  it('a SQL Server that accepts TCP and never answers: CellcryptDatabaseUnavailable within 30 s', async () => {
    const server = await silentServer();
    try {
      const started = Date.now();
      const run = await inProcessCli(
        '--database-url',
        `mssql://sa:pa55word@127.0.0.1:${server.port}/master`,
        '--json',
        'selftest',
      );
      expect(Date.now() - started).to.be.below(30_000);
      expect(run.code).to.equal(1);
      expect(run.json.error.code).to.equal('CellcryptDatabaseUnavailable');
      expect(run.stderr + run.stdout).not.to.contain('pa55word');
    } finally {
      await server.close();
    }
  });

  it('--database on PGlite is refused (exit 2) and leaves no directory behind', async () => {
    const [run, left] = await inOwnTmpdir(async () => [
      await inProcessCli('--database-url', 'pglite:memory://', '--json', 'selftest', '--database', 'x'),
      leftovers(),
    ]);
    expect(run.code).to.equal(2);
    expect(run.json.error.code).to.equal('CellcryptUsage');
    expect(run.json.error.hint).to.contain('leave it out');
    expect(left).to.deep.equal([]);
  });

  it('--help names what it needs and what it changes', () => {
    // yargs prints help and exits the process: a child process of its own.
    const run = spawnSync(process.execPath, ['--require', 'tsx/cjs', 'src/cli/main.ts', 'selftest', '--help'], {
      encoding: 'utf8',
      cwd: join(__dirname, '../../..'),
    });
    expect(run.status, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('CREATE DATABASE').and.to.contain('--database').and.to.contain('--keep');
  });

  it('one line per check: ok and FAIL with detail (FAIL with its way out), skipped with why', () => {
    expect(formatResult({ check: 'install', outcome: 'ok', detail: '270 cells' })).to.equal(
      'ok       install: 270 cells',
    );
    expect(formatResult({ check: 'trace flag 4631', outcome: 'fail', detail: 'on', hint: 'DBCC TRACEOFF' })).to.equal(
      'FAIL     trace flag 4631: on\n          -> DBCC TRACEOFF',
    );
    expect(formatResult({ check: 'lock wait', outcome: 'skipped', detail: 'one connection' })).to.equal(
      'skipped  lock wait (one connection)',
    );
  });
});
