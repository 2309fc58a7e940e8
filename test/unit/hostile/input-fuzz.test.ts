import { expect } from 'chai';
import fc from 'fast-check';
import { PARSERS, judgeInput } from '../../../src/core/hostile-inputs';
import { hostileBytes } from '../../support/hostile-bytes';

/** The short form of `npm run fuzz`: every hostile input is accepted or refused with exit 2, never a crash. */
describe('hostile input fuzz (short form of npm run fuzz)', () => {
  for (const [name, parse] of Object.entries(PARSERS)) {
    it(`${name}: 2000 hostile inputs, each accepted or refused with a CellcryptError and exit 2`, () => {
      fc.assert(
        fc.property(hostileBytes(), (input) => {
          const verdict = judgeInput(parse, Buffer.from(input));
          return verdict.ok || verdict.refused;
        }),
        { numRuns: 2000 },
      );
    });
  }

  it('the judge can fail: a parser that throws a TypeError is caught', () => {
    const verdict = judgeInput(() => {
      throw new TypeError('boom');
    }, Buffer.alloc(0));
    expect(verdict).to.include({ ok: false, refused: false });
  });
});
