import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { Client } from 'pg';
import { interruptAfterConnecting, type Child } from '../../../scripts/crash/faults';
import { createThrowAwayDatabase, pgServerUrl, type ThrowAwayDatabase } from '../../support/pg-server';
import { targetRuns } from '../../support/targets';

/**
 * The crash harness's Ctrl-C waits for the operation's own session before it fires: CI's short
 * run once saw a SIGINT land during the child's start-up ("ended by SIGINT: no orderly stop,
 * nothing said") because another session in the org database (an autovacuum worker, the judge's
 * last session still exiting) was taken for the child's.
 */
if (targetRuns('postgres')) {
  describe('crash harness: Ctrl-C after the operation connected', function () {
    let database: ThrowAwayDatabase;
    const sessions: Client[] = [];

    beforeEach(async () => {
      database = await createThrowAwayDatabase(pgServerUrl()!, 'cellcrypt_crash_faults');
    });

    afterEach(async () => {
      await Promise.all(sessions.splice(0).map((session) => session.end().catch(() => undefined)));
      await database.drop();
    });

    async function openSession(applicationName: string): Promise<void> {
      const session = new Client({ connectionString: database.url, application_name: applicationName });
      await session.connect();
      sessions.push(session);
    }

    /** A child process running `script` with the database's URL in U; exits as `exit`. */
    function startChild(script: string) {
      const child = spawn(process.execPath, ['-e', script], {
        env: { ...process.env, U: database.url },
        stdio: 'ignore',
      });
      let ended = false;
      const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (code, signal) => {
          ended = true;
          resolve({ code, signal });
        }),
      );
      const handle: Child = { process: child, exited: () => ended };
      return { handle, exit };
    }

    it('does not take a session that was there before, or one of another program, for the child', async () => {
      await openSession('cellcrypt'); // the judge's last session, say, still open when the child starts
      const { handle, exit } = startChild('setTimeout(() => undefined, 1500)'); // never connects
      const injected = interruptAfterConnecting(database.url, 0)(handle);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await openSession('autovacuum-like'); // another program's session arriving meanwhile
      expect(await injected, 'the Ctrl-C was sent').to.equal(false);
      expect(await exit).to.deep.equal({ code: 0, signal: null });
    });

    it("fires once the child's own cellcrypt session is there", async () => {
      const { handle, exit } = startChild(
        "const { Client } = require('pg');" +
          "const c = new Client({ connectionString: process.env.U, application_name: 'cellcrypt' });" +
          'setTimeout(() => c.connect(), 300); setTimeout(() => c.end(), 20000);',
      );
      expect(await interruptAfterConnecting(database.url, 0)(handle)).to.equal(true);
      expect((await exit).signal).to.equal('SIGINT');
    });
  });
}
