import { expect } from 'chai';
import { judgeReport, newTally, type Operation, type Trial } from '../../../scripts/crash/judge';
import type { CheckResult } from '../../../scripts/crash/org-check';

/**
 * The crash harness's judge of status and verify must be able to fail (issue 15): each lie the
 * issue saw, shown to it, is counted.
 */
const GUID = 'AAAAAAAA-0000-0000-0000-000000000001';
const OTHER = 'BBBBBBBB-0000-0000-0000-000000000002';

function check(overrides: Partial<CheckResult> = {}): CheckResult {
  return {
    cells: 10,
    lost: 0,
    corrupted: 0,
    ambiguous: 0,
    plaintextLeft: 0,
    byKey: { [GUID]: 10 },
    states: ['T.C=encrypted'],
    problems: [],
    ...overrides,
  };
}

function report(overrides: Record<string, unknown> = {}, column: Record<string, unknown> = {}) {
  return {
    active: true,
    keys: [{ name: 'cellcrypt_key_2', guid: GUID }],
    columns: [
      {
        table: 'T',
        column: 'C',
        state: 'encrypted',
        cells: 10,
        byKey: { [GUID]: 10 },
        undecryptable: 0,
        unchecked: 0,
        ...column,
      },
    ],
    ...overrides,
  };
}

function judged(doc: unknown, code: number, options: { operation?: Operation; judge?: CheckResult } = {}) {
  const tally = newTally('sigkill');
  const trial = { operation: options.operation ?? 'change-key', fault: 'sigkill', trial: 1, tally } as unknown as Trial;
  const notes: string[] = [];
  judgeReport(trial, 'status', code, doc, options.judge ?? check(), (what) => notes.push(what));
  return { falseAlarms: tally.falseAlarms, misreported: tally.misreported, notes };
}

describe('crash harness judge of status and verify', () => {
  it('passes the truth: active, the cells on the key the judge opened them with, exit 0', () => {
    expect(judged(report(), 0)).to.deep.include({ falseAlarms: 0, misreported: 0 });
  });

  it('counts every cell undecryptable under a key it never loaded, exit 3, as a false alarm', () => {
    const found = judged(report({}, { undecryptable: 10 }), 3);
    expect(found.falseAlarms).to.equal(2); // the cells, and the exit code
  });

  it('counts "inactive, run activate" after a key change as a false alarm', () => {
    const found = judged(
      report({ active: false, reason: 'the keys do not open', hint: 'run activate' }, { unchecked: 10 }),
      4,
    );
    expect(found.falseAlarms).to.equal(1);
    expect(found.notes[0]).to.contain('inactive');
  });

  it('accepts an honestly inactive org after an activate that had not stored its keys', () => {
    const doc = report(
      { active: false, reason: 'no master-key password', hint: 'run `cellcrypt activate --key-file F`' },
      { unchecked: 10 },
    );
    expect(judged(doc, 4, { operation: 'activate' })).to.deep.include({ falseAlarms: 0, misreported: 0 });
  });

  it('counts cells on another key, a running operation after the process died, no "install incomplete"', () => {
    expect(judged(report({}, { byKey: { [OTHER]: 10 } }), 0).misreported).to.be.greaterThan(0);
    expect(judged(report({ running: { operation: 'change-key' } }), 0).misreported).to.equal(1);
    const plaintext = check({ states: ['T.C=plaintext'], byKey: {} });
    const active = report({}, { state: 'plaintext', byKey: {}, cells: 0 });
    expect(judged(active, 3, { operation: 'install', judge: plaintext }).notes.join()).to.contain('install incomplete');
  });
});
