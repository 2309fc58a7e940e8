import { expect } from 'chai';
import knexFactory from 'knex';
import { Secret } from '../../../../src/common/secret';
import { inlineSecrets, keyStatements } from '../../../../src/engines/mssql/key-statements';
import { escapeForKnex, quoteTsqlIdentifier, tsqlInteger, tsqlLiteral } from '../../../../src/engines/mssql/quote';
import { parseTsql } from '../../../support/tsql-grammar';

/**
 * Issue 5, test 3: the one identifier helper and the one literal helper of the SQL Server
 * engine, with the inputs that break hand-written T-SQL: quotes, brackets, knex placeholders,
 * statement separators, comments, non-BMP text.
 */
const HOSTILE = [
  "O'Brien",
  "it's]]",
  'a]b',
  'why?',
  'a;b',
  'x -- y',
  '/* z */',
  '😀𝐀 key',
  "'; DROP TABLE t; --",
  "N'",
  '$(CellcryptPassphrase)',
  '\\?',
];

/** T-SQL's reading of a literal: strip N'...' and undo the doubled quotes. */
function readLiteral(literal: string): string {
  expect(literal.startsWith("N'") && literal.endsWith("'"), literal).to.equal(true);
  return literal.slice(2, -1).replace(/''/g, "'");
}

function readIdentifier(quoted: string): string {
  expect(quoted.startsWith('[') && quoted.endsWith(']'), quoted).to.equal(true);
  return quoted.slice(1, -1).replace(/]]/g, ']');
}

describe('mssql escaping helpers', () => {
  it('tsqlLiteral: every hostile value parses as one literal that reads back exactly', () => {
    for (const value of HOSTILE) {
      const literal = tsqlLiteral(value);
      expect(readLiteral(literal)).to.equal(value);
      expect(parseTsql(`SELECT ${literal} AS v`), value).to.deep.equal([]);
    }
  });

  it('quoteTsqlIdentifier: every hostile name parses as one identifier that reads back exactly', () => {
    for (const value of HOSTILE) {
      const quoted = quoteTsqlIdentifier(value);
      expect(readIdentifier(quoted)).to.equal(value);
      expect(parseTsql(`SELECT 1 AS ${quoted} FROM ${quoted}`), value).to.deep.equal([]);
    }
  });

  it('refuses what cannot be written safely: NUL, lone surrogates, empty or over-long names, non-integers', () => {
    expect(() => tsqlLiteral('a\u0000b')).to.throw(/NUL/);
    expect(() => tsqlLiteral('a\ud800b')).to.throw(/surrogate/);
    expect(() => quoteTsqlIdentifier('')).to.throw(/empty/);
    expect(() => quoteTsqlIdentifier('x'.repeat(129))).to.throw(/128/);
    expect(() => quoteTsqlIdentifier('a\u0000')).to.throw(/NUL/);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 60]) expect(() => tsqlInteger(bad)).to.throw();
  });

  it(
    "escapeForKnex: knex's real mssql dialect sends every " + '? inside literals and names unchanged, and no parameter',
    () => {
      const knex = knexFactory({ client: 'mssql' });
      for (const value of HOSTILE) {
        const sql = `SELECT ${tsqlLiteral(value)} AS ${quoteTsqlIdentifier(value)}`;
        // toNative(): the text knex hands to tedious, after its placeholder rewriting.
        const sent = knex.raw(escapeForKnex(sql)).toSQL().toNative();
        expect(sent.sql, value).to.equal(sql);
        expect(sent.bindings, value).to.deep.equal([]);
      }
      // Without the helper knex rewrites the ? inside the literal into a parameter (the bug it prevents).
      expect(knex.raw("SELECT N'why?' AS v").toSQL().toNative().sql).to.equal("SELECT N'why@p0' AS v");
    },
  );

  it('escapeForKnex refuses a bare ? outside literals: our T-SQL carries no knex placeholders', () => {
    expect(() => escapeForKnex('SELECT ? AS v')).to.throw(/bare \?/);
  });

  it(
    'secrets inlined into DDL: CREATE SYMMETRIC KEY / MASTER ' +
      'KEY with hostile passphrases parse and carry the exact value',
    () => {
      for (const value of HOSTILE.map((v) => `${v} 1!Aa`)) {
        const secret = new Secret(value);
        const secrets = inlineSecrets({ passphrase: secret, identityValue: secret, masterKeyPassword: secret });
        const create = keyStatements.createSymmetricKey("key]'?", "cert]'?", secrets);
        expect(parseTsql(create), value).to.deep.equal([]);
        const keySource = /KEY_SOURCE = (N'(?:[^']|'')*')/.exec(create)?.[1];
        expect(readLiteral(keySource!)).to.equal(value);
        expect(parseTsql(keyStatements.openMasterKey(secrets)), value).to.deep.equal([]);
        expect(parseTsql(keyStatements.createMasterKey(secrets)), value).to.deep.equal([]);
      }
    },
  );
});
