import { expect } from 'chai';
import { quotePgIdentifier, quotePgLiteral } from '../../../src/engines/postgres/quote';

describe('PostgreSQL quoting helpers', () => {
  const hostile = ['plain', 'Mixed"Case', "it's", 'a]b', 'why?', 'x;drop table t', 'a--b', '😀𝐀', 'e\u0301'];

  it('quotes identifiers so the name survives exactly', () => {
    expect(quotePgIdentifier('Mixed"Case')).to.equal('"Mixed""Case"');
    for (const name of hostile) {
      const quoted = quotePgIdentifier(name);
      expect(quoted.startsWith('"') && quoted.endsWith('"')).to.equal(true);
      expect(quoted.slice(1, -1).replace(/""/g, '"')).to.equal(name);
      expect(quoted.slice(1, -1).replace(/""/g, '')).not.to.contain('"');
    }
  });

  it('quotes literals and refuses NUL', () => {
    expect(quotePgLiteral("it's")).to.equal("'it''s'");
    for (const value of hostile) expect(quotePgLiteral(value).slice(1, -1).replace(/''/g, "'")).to.equal(value);
    expect(() => quotePgLiteral('a\u0000b')).to.throw();
    expect(() => quotePgIdentifier('')).to.throw();
  });
});
