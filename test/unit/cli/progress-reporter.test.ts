import { expect } from 'chai';
import { processIo, type OutputStream } from '../../../src/cli/io';
import { reporterFor } from '../../../src/cli/progress-reporter';

/** A stderr that is not a terminal (a pipe, a CI log), keeping what was written line by line. */
function pipe(): OutputStream & { lines: () => string[] } {
  let written = '';
  return {
    isTTY: false,
    write: (text: string) => (written += text),
    lines: () => written.split('\n').filter(Boolean),
  };
}

/** Progress on a stderr that is not a TTY: plain lines, each said once (issue 16). */
describe('CLI progress on a non-TTY stderr', () => {
  const realNow = Date.now;
  let clock = 0;
  beforeEach(() => {
    clock = 1_000_000;
    Date.now = () => clock;
  });
  afterEach(() => (Date.now = realNow));

  const reporterOn = (stderr: OutputStream) => {
    const io = processIo(false, { stdout: pipe(), stderr });
    expect(io.interactive).to.equal(false);
    return reporterFor(io);
  };

  it('a task of one batch prints one line, not its count and then the same count with "done"', () => {
    const stderr = pipe();
    // As a conversion runs it: one batch of every value, then the empty batch that ends the loop.
    const progress = reporterOn(stderr).progress('encrypting MailboxBase.Password', 45);
    clock += 10;
    progress.tick(45);
    clock += 10;
    progress.tick(0);
    progress.done();
    expect(stderr.lines()).to.deep.equal(['encrypting MailboxBase.Password: 45/45 done']);
  });

  it('a long task prints a line per interval while the count moves, then the last, none twice', () => {
    const stderr = pipe();
    const progress = reporterOn(stderr).progress('re-encrypting 30 cell(s)', 30);
    for (const [elapsed, count] of [
      [2_500, 10],
      [100, 10], // too soon after the last line
      [2_000, 0], // an interval since the last line, and the count has moved since
      [2_500, 0], // nothing moved since the last line: nothing new to say
      [2_500, 10], // the last cells: `done` says it
    ]) {
      clock += elapsed;
      progress.tick(count);
    }
    progress.done();
    const lines = stderr.lines();
    expect(lines).to.deep.equal([
      're-encrypting 30 cell(s): 10/30',
      're-encrypting 30 cell(s): 20/30',
      're-encrypting 30 cell(s): 30/30 done',
    ]);
  });

  it('log lines pass through once', () => {
    const stderr = pipe();
    reporterOn(stderr).log('created certificate cellcrypt_certificate');
    expect(stderr.lines()).to.deep.equal(['created certificate cellcrypt_certificate']);
  });
});
