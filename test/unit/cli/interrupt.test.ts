import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { handleInterrupts, interruptSummary, refusedAfterInterrupt } from '../../../src/cli/interrupt';
import { runCli } from '../../../src/cli/main';
import { memoryIo } from '../../../src/cli/io';

/** Ctrl-C (issue 15, part 4): the signal handling and what an interrupted command says. */
describe('Ctrl-C handling', () => {
  function handler() {
    const signals = new EventEmitter();
    const logged: string[] = [];
    const exits: number[] = [];
    const interruption = handleInterrupts({
      signals: signals as never,
      log: (text) => logged.push(text),
      exit: (code) => exits.push(code),
      guardKnex: false,
    });
    return { signals, logged, exits, interruption };
  }

  it('the first Ctrl-C asks for an orderly stop; the second exits at once with 130', () => {
    const { signals, logged, exits, interruption } = handler();
    expect(interruption.requested).to.equal(false);
    signals.emit('SIGINT');
    expect(interruption.requested).to.equal(true);
    expect(exits, 'no exit on the first').to.deep.equal([]);
    expect(logged[0]).to.contain('rolling back its transaction; press Ctrl-C again to exit at once');
    signals.emit('SIGINT');
    expect(exits).to.deep.equal([130]);
    expect(logged[1]).to.contain('second Ctrl-C: exiting now');
  });

  it('a command that changes nothing (status, verify, doctor) ends at the first Ctrl-C', () => {
    const { signals, logged, exits, interruption } = handler();
    interruption.running('status');
    signals.emit('SIGINT');
    expect(exits).to.deep.equal([130]);
    expect(logged[0]).to.equal('Ctrl-C: status changes nothing; stopped');
  });

  it('once interrupted, statements in a transaction are refused except the ones that end it', () => {
    const cases: Array<[string, boolean, boolean]> = [
      ['select cellcrypt.open_symmetric_key(?, ?)', true, true],
      ['BEGIN;', true, true],
      ['SAVEPOINT trx2;', true, true],
      ['COMMIT;', true, false],
      ['ROLLBACK', true, false],
      ['ROLLBACK TO SAVEPOINT trx2', true, false],
      ['RELEASE SAVEPOINT trx2;', true, false],
      // Outside a transaction each statement is atomic on its own: audit rows, key-store clean-up.
      ['insert into cellcrypt.audit ...', false, false],
      ['delete from cellcrypt_keystore where ...', false, false],
      // The rewrite that reclaims a dropped column's pages: optional, as long as the conversion.
      ['vacuum full "ContactBase"', false, true],
      ['SET LOCK_TIMEOUT 5000; ALTER TABLE [ContactBase] REBUILD WITH (ONLINE = OFF)', false, true],
      ['ALTER TABLE [ContactBase] REBUILD WITH (ONLINE = OFF)', false, true],
      ['vacuum "ContactBase"', false, false],
      ['ALTER TABLE [ContactBase] ADD [EMailAddress1__cellcrypt] varbinary(8000) NULL', false, false],
    ];
    for (const [sql, inTransaction, refused] of cases)
      expect(refusedAfterInterrupt(sql, inTransaction), `${sql} (in transaction: ${inTransaction})`).to.equal(refused);
  });

  it('says what each interrupted command leaves and how to go on', () => {
    const batched = interruptSummary('change-key', ['--json', 'change-key', '--generate', '--batch-size', '500']);
    expect(batched.message).to.contain('the batches before it are on the new key');
    expect(batched.hint).to.equal('finish it with `cellcrypt change-key --resume --batch-size N`');
    expect(interruptSummary('change-key', ['change-key', '--resume', '--batch-size=9']).hint).to.contain('--resume');
    const whole = interruptSummary('change-key', ['--database-url', 'postgres://h/db', 'change-key', '--generate']);
    expect(whole.message).to.contain('its one transaction was rolled back, every cell is on the old key');
    expect(interruptSummary('install', ['install']).hint).to.contain('run `cellcrypt install` again');
    expect(interruptSummary('activate', ['activate', '--key-file', 'f']).hint).to.contain('run activate again');
    expect(interruptSummary('keys <action>', ['keys', 'prune']).message).to.match(/^keys was interrupted/);
  });

  it('a command that fails after Ctrl-C exits 130 with CellcryptInterrupted and the way on', async () => {
    const missing = `pglite:${join(tmpdir(), 'cellcrypt-interrupt-no-such-org')}`;
    // A read-only command on a database that is not there: refused before anything is opened.
    const argv = ['--database-url', missing, 'status', '--json'];
    const ios: Array<ReturnType<typeof memoryIo>> = [];
    const factory = (json: boolean) => {
      const io = memoryIo(json);
      ios.push(io);
      return io;
    };
    const plain = await runCli(argv, factory);
    expect(plain, 'without Ctrl-C the error keeps its own exit code').to.equal(2);
    const interruption = { requested: true, running: () => undefined, summary: interruptSummary };
    const code = await runCli(argv, factory, { interruption });
    expect(code).to.equal(130);
    const io = ios[ios.length - 1];
    expect((io.documents[0] as { error: { code: string } }).error.code).to.equal('CellcryptInterrupted');
    expect(io.stderr.join('\n')).to.contain('status was interrupted');
    expect(io.stderr.join('\n')).to.contain('run `cellcrypt status` to see where it stopped');
  });
});
