import { expect } from 'chai';
import { guidStringToBytes } from '../../src/cellcrypt';
import type { ChildProcess } from 'node:child_process';
import { Client } from 'pg';
import { seedDemo } from '../../src/core/demo-seed';
import { install } from '../../src/core/install';
import { readStatus, statusExitCode } from '../../src/core/status';
import type { Toolkit } from '../../src/core/toolkit';
import { verify } from '../../src/core/verify';
import { cellcryptProcess, type ProcessRun } from '../support/cli-process';
import { waitForLockWait } from '../support/lock-waits';
import { decryptedValues, q } from '../support/org-data';
import { createTestOrg, type TargetName, type TestOrg } from '../support/targets';

const BATCH = 100;
/** Each statement of a transaction waits this long in the child: a batch takes a few of them. */
const SLOW = { CELLCRYPT_TEST_STATEMENT_DELAY_MS: '40' };

/** The first progress line of the batched change: batches have been committing for two seconds. */
const PROGRESS = /re-encrypting \d+ cell\(s\) under cellcrypt_key_2 in batches of 100: \d+\/\d+\n/;

/**
 * Sends SIGINT (`times` of them, `gapMs` apart) once the child's stderr shows `when`; `sent`
 * holds when each went.
 */
function interruptWhen(when: RegExp, times = 1, gapMs = 0) {
  const sent: number[] = [];
  const onStart = (child: ChildProcess, stderr: () => string) => {
    const timer = setInterval(() => {
      if (!when.test(stderr())) return;
      clearInterval(timer);
      for (let i = 0; i < times; i++)
        setTimeout(() => {
          sent.push(Date.now());
          child.kill('SIGINT');
        }, i * gapMs);
    }, 20);
    child.on('exit', () => clearInterval(timer));
  };
  return { onStart, sent };
}

/** Ctrl-C in the middle of a long command, sent to a real cellcrypt process (issue 15, part 4). */
export function scenarios(target: TargetName): void {
  describe(`Ctrl-C during a long command on ${target}`, function () {
    let org: TestOrg;
    let tk: Toolkit | undefined;

    beforeEach(async () => {
      org = await createTestOrg(target);
      tk = await org.open();
      await seedDemo(tk, 1000);
      await install(tk);
    });

    afterEach(async () => {
      await tk?.close();
      await org.cleanup();
    });

    async function values(): Promise<Record<string, Map<string, string | null>>> {
      const out: Record<string, Map<string, string | null>> = {};
      for (const column of tk!.registry) out[`${column.table}.${column.column}`] = await decryptedValues(tk!, column);
      return out;
    }

    /**
     * Batches walk each column in primary-key order and commit whole: so the cells on the new key
     * come before every cell left on the old one. A batch half written, or one after a batch
     * that was rolled back, breaks that.
     */
    async function expectWholeBatches(oldGuid: string, newGuid: string): Promise<void> {
      for (const column of tk!.registry) {
        const [t, c, pk] = [q(column.table), q(column.column), q(column.primaryKey)];
        const head = `substring(${c} from 1 for 16)`;
        const result = await tk!.engine.knex.raw(
          `select count(*)::int as n from ${t} where ${head} = ? and ${pk} > ` +
            `(select ${pk} from ${t} where ${head} = ? order by ${pk} limit 1)`,
          [guidStringToBytes(newGuid), guidStringToBytes(oldGuid)],
        );
        expect(result.rows[0].n, `${column.table}.${column.column}: new-key cells after old ones`).to.equal(0);
      }
    }

    /** The child needs the embedded database to itself: this process lets go of it meanwhile. */
    async function inChild<T>(work: () => Promise<T>): Promise<T> {
      await tk!.close();
      tk = undefined;
      try {
        return await work();
      } finally {
        tk = await org.open();
      }
    }

    it('mid batched change-key: the batch in progress rolls back, it says how to resume, exit 130', async () => {
      const before = await values();
      const run: ProcessRun = await inChild(() =>
        cellcryptProcess(
          { ...org.env, ...SLOW },
          ['change-key', '--generate', '--batch-size', String(BATCH), '--json'],
          {
            onStart: interruptWhen(PROGRESS).onStart,
          },
        ),
      );
      expect(run.code, run.stderr).to.equal(130);
      expect(run.stderr).to.contain('Ctrl-C: stopping after the statement in progress');
      expect(run.stderr).to.contain('the batch in progress was rolled back');
      expect(run.stderr).to.contain('change-key --resume --batch-size N');
      expect(run.json.error.code).to.equal('CellcryptInterrupted');

      const status = await readStatus(tk!);
      expect(status.keyChange?.state, 'a change to resume').to.equal('interrupted');
      const newGuid = status.keyChange!.to;
      let moved = 0;
      for (const column of status.columns) {
        expect(column.undecryptable + column.unchecked).to.equal(0);
        moved += column.byKey[newGuid] ?? 0;
      }
      await expectWholeBatches(status.keyChange!.from, newGuid);
      expect(moved, 'some batches committed before the Ctrl-C').to.be.greaterThan(0);
      expect(moved).to.be.lessThan(status.columns.reduce((sum, c) => sum + c.cells, 0));
      expect(await values()).to.deep.equal(before);
      const audit = await tk!.engine.knex.raw(
        `select outcome from cellcrypt.audit where operation = 'change-key' order by id desc limit 1`,
      );
      expect(audit.rows[0].outcome).to.equal('failed');

      const resumed = await inChild(() =>
        cellcryptProcess(org.env, ['change-key', '--resume', '--batch-size', String(BATCH), '--json']),
      );
      expect(resumed.code, resumed.stderr).to.equal(0);
      const report = await verify(tk!);
      expect(statusExitCode(report.status, report.ok)).to.equal(0);
      expect(Object.keys(report.status.columns[0].byKey)).to.deep.equal([newGuid]);
      expect(await values()).to.deep.equal(before);
    });

    it('mid one-transaction change-key: all of it rolls back, every cell on the old key, exit 130', async () => {
      const before = await values();
      const oldGuid = (await readStatus(tk!)).keys[0].guid;
      const run = await inChild(() =>
        // Slower statements than the batches': the one transaction has only a few of them.
        cellcryptProcess(
          { ...org.env, CELLCRYPT_TEST_STATEMENT_DELAY_MS: '300' },
          ['change-key', '--generate', '--json'],
          {
            // A progress line (not the last, "done"): the transaction has been running for two seconds.
            onStart: interruptWhen(/re-encrypting \d+ cell\(s\) under cellcrypt_key_2: \d+\/\d+\n/).onStart,
          },
        ),
      );
      expect(run.code, run.stderr).to.equal(130);
      expect(run.json.error.code).to.equal('CellcryptInterrupted');
      expect(run.stderr).to.contain('its one transaction was rolled back, every cell is on the old key');
      const status = await readStatus(tk!);
      expect(status.keys.map((k) => k.guid)).to.deep.equal([oldGuid]);
      expect(status.columns.every((c) => Object.keys(c.byKey).join() === oldGuid && c.undecryptable === 0)).to.equal(
        true,
      );
      expect(await (await tk!.keystore()).get('passphrase.pending'), 'the pending key was cleared').to.equal(undefined);
      expect(await values()).to.deep.equal(before);
    });

    it('a second Ctrl-C exits at once; the database rolls back the batch in progress', async () => {
      const before = await values();
      const signals = interruptWhen(PROGRESS, 2, 100);
      // A second per statement: both signals come while one statement of a batch waits.
      const run = await inChild(() =>
        cellcryptProcess(
          { ...org.env, CELLCRYPT_TEST_STATEMENT_DELAY_MS: '1000' },
          ['change-key', '--generate', '--batch-size', String(BATCH)],
          {
            onStart: signals.onStart,
          },
        ),
      );
      const exitedAfter = Date.now() - signals.sent[1];
      expect(run.code, run.stderr).to.equal(130);
      expect(run.stderr).to.contain('second Ctrl-C: exiting now');
      expect(run.stderr, 'no orderly stop: it exited at once').not.to.contain('error [CellcryptInterrupted]');
      expect(exitedAfter).to.be.lessThan(5_000);
      const status = await readStatus(tk!);
      expect(status.keyChange?.state).to.equal('interrupted');
      for (const column of status.columns) expect(column.undecryptable + column.unchecked).to.equal(0);
      await expectWholeBatches(status.keyChange!.from, status.keyChange!.to);
      expect(await values()).to.deep.equal(before);
    });

    if (target === 'postgres') {
      it('a statement that waits (here on a lock) is cancelled by the first Ctrl-C: rolled back at once', async () => {
        const holder = new Client({ connectionString: org.env.DATABASE_URL });
        await holder.connect();
        try {
          await inChild(async () => {
            // The change's lock of MailboxBase waits for this row lock: a statement in its
            // transaction that would wait as long as the holder likes (the clean-up after the
            // rollback needs nothing the holder has).
            await holder.query('begin');
            await holder.query('select 1 from "MailboxBase" limit 1 for update');
            let sentAt = 0;
            const run = cellcryptProcess(org.env, ['change-key', '--generate', '--json'], {
              onStart: (child) =>
                void waitForLockWait(holder).then(() => {
                  sentAt = Date.now();
                  child.kill('SIGINT');
                }),
            });
            const done = await run;
            expect(done.code, done.stderr).to.equal(130);
            expect(Date.now() - sentAt, 'cancelled, not waiting for the lock').to.be.lessThan(10_000);
            expect(done.json.error.detail).to.match(/cancel/i);
          });
        } finally {
          await holder.query('rollback').catch(() => undefined);
          await holder.end();
        }
        const status = await readStatus(tk!);
        expect(status.keys.map((k) => k.name)).to.deep.equal(['cellcrypt_key_1']);
        expect(status.columns.every((c) => c.undecryptable === 0 && Object.keys(c.byKey).length === 1)).to.equal(true);
      });
    }
  });
}
