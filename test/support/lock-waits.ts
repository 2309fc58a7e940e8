import type { Client } from 'pg';

/** Waits until another session of the holder's database waits on a lock. */
export async function waitForLockWait(holder: Client): Promise<number[]> {
  for (let i = 0; i < 1500; i++) {
    // pg_stat_activity is read once per transaction, and the holder is in one.
    await holder.query('select pg_stat_clear_snapshot()');
    const waiting = await holder.query(
      `select pid from pg_stat_activity where datname = current_database() ` +
        `and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
    );
    if (waiting.rows.length) return waiting.rows.map((row: { pid: number }) => row.pid);
    await new Promise((tick) => setTimeout(tick, 20));
  }
  throw new Error('nothing ever waited on the lock');
}

/** Kills the waiting process, and ends its waiting backend so its statement never runs. */
export async function killWhenWaiting(holder: Client, kill: () => void): Promise<void> {
  const pids = await waitForLockWait(holder);
  kill();
  for (const pid of pids) await holder.query('select pg_terminate_backend($1)', [pid]);
}
