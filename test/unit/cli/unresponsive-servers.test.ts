import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inProcessCli } from '../../support/in-process-cli';
import { pgServerUrl } from '../../support/pg-server';

const BIN = resolve(__dirname, '../../../src/cli/bin.js');

/** A local TCP server that does to every connection what `behave` says. */
async function fakeServer(behave: (socket: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    behave(socket);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () =>
      new Promise<void>((closed) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => closed());
      }),
  };
}

const BEHAVIOURS: Record<string, (socket: Socket) => void> = {
  'accepts TCP and never answers': () => undefined,
  'speaks HTTP': (socket) =>
    socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')),
  'drops the connection': (socket) => socket.destroy(),
};

/**
 * Servers that are there but not a database (issue 15, part 4): each is the operator's to fix,
 * CellcryptDatabaseUnavailable with the way out, no stack, and the process exits. A server that
 * never answered gave a knex stack trace after 33 s and a process that never exited.
 */
describe('CLI: a server that is not a working database', function () {
  this.timeout(120_000);

  for (const [behaviour, behave] of Object.entries(BEHAVIOURS)) {
    for (const scheme of ['postgres', 'mssql']) {
      it(`${scheme}, a server that ${behaviour}: exit 1, CellcryptDatabaseUnavailable, no stack`, async () => {
        const server = await fakeServer(behave);
        try {
          const url = `${scheme}://cellcrypt:pa55word@127.0.0.1:${server.port}/Org`;
          const run = await inProcessCli('--database-url', url, '--json', 'status');
          expect(run.json?.error?.code, run.stderr).to.equal('CellcryptDatabaseUnavailable');
          expect(run.code).to.equal(1);
          expect(run.json.error.hint).to.contain('--database-url');
          expect(run.stderr).not.to.match(/\n\s+at /);
          expect(run.stderr + run.stdout).not.to.contain('pa55word');
        } finally {
          await server.close();
        }
      });
    }
  }

  const server = pgServerUrl();
  if (server) {
    it('sslmode=require against a server without TLS: CellcryptDatabaseUnavailable naming TLS', async () => {
      const url = new URL(server);
      url.searchParams.set('sslmode', 'require');
      const run = await inProcessCli('--database-url', url.toString(), '--json', 'status');
      if (run.code === 0) return; // this server has TLS: nothing to refuse
      expect(run.json?.error?.code, run.stderr).to.equal('CellcryptDatabaseUnavailable');
      expect(run.json.error.message).to.match(/SSL|TLS/);
    });
  }

  it('the real process exits on its own, within 30 s, when the server never answers', async () => {
    const silent = await fakeServer(() => undefined);
    try {
      const started = Date.now();
      const child = spawn(
        process.execPath,
        [BIN, '--database-url', `postgres://u:pw@127.0.0.1:${silent.port}/Org`, 'status'],
        { env: { ...process.env, CELLCRYPT_HOME: mkdtempSync(join(tmpdir(), 'cellcrypt-silent-')) } },
      );
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const code = await new Promise<number | null>((done) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('close', (exit) => {
          clearTimeout(kill);
          done(exit);
        });
      });
      expect(code, stderr).to.equal(1);
      expect(Date.now() - started).to.be.below(30_000);
      expect(stderr).to.contain('error [CellcryptDatabaseUnavailable]');
    } finally {
      await silent.close();
    }
  });
});
