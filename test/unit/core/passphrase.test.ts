import { expect } from 'chai';
import fc from 'fast-check';
import { Secret } from '../../../src/common/secret';
import { CellcryptError } from '../../../src/common/errors';
import { generatePassphrase, validatePassphrase } from '../../../src/core/passphrase';

function failureOf(passphrase: string): CellcryptError | undefined {
  try {
    validatePassphrase(new Secret(passphrase));
    return undefined;
  } catch (error) {
    if (error instanceof CellcryptError) return error;
    throw error;
  }
}

describe('passphrase rule (Dynamics SqlEncryptionEncryptionKeyValidationError)', () => {
  it('accepts keys with a numeral, a letter and a symbol, 10 to 100 UTF-16 code units', () => {
    for (const ok of [
      'Passw0rd!x',
      'a1!' + 'x'.repeat(97),
      'Ünïcödé-42',
      'пароль_2024',
      '密码密码密码密码9!',
      'كلمة-السر-7',
      "it's 'quoted' 1",
      'a]b?c;d--1',
      '𝐀𝐁𝐂𝐃1!',
    ]) {
      expect(failureOf(ok), ok).to.equal(undefined);
    }
  });

  it('counts UTF-16 code units like .NET: 5 non-BMP letters are 10 units', () => {
    expect(failureOf('𝐀𝐁𝐂1!')).to.be.instanceOf(CellcryptError); // 8 units
    expect(failureOf('𝐀𝐁𝐂𝐃1!')).to.equal(undefined); // 10 units, 6 code points
    expect(failureOf('𝐀'.repeat(49) + '1!')).to.equal(undefined); // 100 units
    expect(failureOf('𝐀'.repeat(50) + '1!')?.message).to.match(/10 to 100/); // 102 units
  });

  it('refuses with exit 2, the Dynamics code and hresult, and a hint', () => {
    const error = failureOf('short1!');
    expect(error).to.include({ code: 'SqlEncryptionEncryptionKeyValidationError', exitCode: 2 });
    expect(error?.hresult).to.equal('0x80048528');
    expect(error?.hint).to.match(/--generate/);
  });

  it('lists every failed rule in one message and never the key itself', () => {
    const key = 'nodigitsnosymbols';
    const message = failureOf(key)?.message ?? '';
    expect(message)
      .to.match(/numeral/)
      .and.to.match(/symbol/)
      .and.not.to.match(/letter/);
    expect(message).not.to.contain(key);
    const all = failureOf('\u0007') ?? new Error('expected a failure');
    expect(all.message)
      .to.match(/10 to 100/)
      .and.to.match(/numeral/)
      .and.to.match(/letter/)
      .and.to.match(/symbol/)
      .and.to.match(/control/);
  });

  it(
    'refuses what does not survive a key file: controls, format ' +
      'characters, line breaks, lone surrogates, edge whitespace',
    () => {
      const cases: Array<[string, RegExp]> = [
        ['Passw0rd!\nxyz', /control/],
        ['Passw0rd!\u2028xyz', /line-break/],
        ['Passw0rd!\u200Bxyz', /formatting/],
        ['Passw0rd!\uFEFFxyz', /formatting/],
        ['Passw0rd!\uD835xyz', /surrogate/],
        ['Passw0rd!\uDC00xyz', /surrogate/],
        [' Passw0rd!xyz', /whitespace/],
        ['Passw0rd!xyz\u00A0', /whitespace/],
        ['Passw0rd!xyz\u3000', /whitespace/],
      ];
      for (const [key, reason] of cases) expect(failureOf(key)?.message, JSON.stringify(key)).to.match(reason);
      expect(failureOf('Pass w0rd!xyz')).to.equal(undefined); // inner spaces are fine
    },
  );

  it('agrees with an independent reading of the rule on random strings', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.fullUnicodeString({ maxLength: 120 }), fc.string({ minLength: 8, maxLength: 104 })),
        (text) => {
          const expected =
            text.length >= 10 &&
            text.length <= 100 &&
            /\d|\p{Nd}|\p{Nl}|\p{No}/u.test(text) &&
            /\p{Lu}|\p{Ll}|\p{Lt}|\p{Lm}|\p{Lo}/u.test(text) &&
            /[\p{Pc}\p{Pd}\p{Ps}\p{Pe}\p{Pi}\p{Pf}\p{Po}\p{Sm}\p{Sc}\p{Sk}\p{So}]/u.test(text) &&
            ![...text].some((ch) => /[\p{Cc}\p{Cf}\u2028\u2029]/u.test(ch)) &&
            text.trim() === text;
          expect(failureOf(text) === undefined, JSON.stringify(text)).to.equal(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('generatePassphrase', () => {
  const samples = Array.from({ length: 200 }, () => generatePassphrase().reveal());

  it('always passes the rule and holds a surrogate pair', () => {
    for (const key of samples) {
      expect(failureOf(key), key).to.equal(undefined);
      expect(/[\uD800-\uDBFF][\uDC00-\uDFFF]/.test(key)).to.equal(true);
      expect([...key]).to.have.length(40);
    }
  });

  it('uses only letters, digits and ASCII symbols from several scripts', () => {
    const all = samples.join('');
    expect(/^[\p{L}\p{Nd}\x21-\x7E]+$/u.test(all)).to.equal(true);
    expect(/\p{M}|\s|\p{C}/u.test(all)).to.equal(false);
    for (const script of [
      /\p{Script=Latin}/u,
      /\p{Script=Greek}/u,
      /\p{Script=Cyrillic}/u,
      /\p{Script=Han}/u,
      /[\u{1D400}-\u{1D433}]/u,
      /[0-9]/,
      /[!-/:-@[-`{-~]/,
    ]) {
      expect(script.test(all), String(script)).to.equal(true);
    }
  });

  it('is random: 200 draws are all different and hide behind Secret', () => {
    expect(new Set(samples).size).to.equal(samples.length);
    const secret = generatePassphrase();
    expect(JSON.stringify({ secret })).to.equal('{"secret":"***"}');
  });
});
