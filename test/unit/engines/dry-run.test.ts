import { expect } from 'chai';
import { CERTIFICATE_NAME } from '../../../src/common/key-names';
import { encryptedColumnBytes } from '../../../src/core/column-state';
import { DEFAULT_CONVERSION_BATCH } from '../../../src/core/convert';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../src/core/registry';
import { dryRunRendererFor, ENGINE_KINDS } from '../../../src/engines';
import type { DryRunRenderer } from '../../../src/engines/engine';
import { openKeyBeforeUse, allStatementRules } from '../../support/tsql-rules';

/**
 * Every engine renders its own `--dry-run` (issue 13): install, change-key in one transaction,
 * batched and resumed, and activate. SQL Server's must be T-SQL that parses and keeps our rules
 * (core used to print PostgreSQL conventions for every engine: `'\x0022…'` GUIDs, quoted key
 * names, the passphrase mask in the certificate's slot); no renderer prints anything but `***`
 * where a secret goes.
 */
const FROM = { name: 'cellcrypt_key_1', keyGuid: '5E3F5200-B208-9A14-3EA7-DE70CC509869' };
const TO = { name: 'cellcrypt_key_2', keyGuid: '0022DE70-CC50-9869-3EA7-5E3F5200B208', exists: false };
const HOSTILE = {
  entity: 'odd',
  attribute: 'c',
  table: "Odd]'?;\n--Base",
  column: "C]'?😀",
  primaryKey: 'Id?]',
  maxLength: 50,
};
const COLUMNS = [...DYNAMICS_DEFAULT_COLUMNS, HOSTILE];
const REWRAP = { from: CERTIFICATE_NAME, to: 'cellcrypt_certificate_2', keys: [FROM.name] };

type Rendering = [string, string[]];

function renderings(renderer: DryRunRenderer): Rendering[] {
  const sized = COLUMNS.map((column) => ({ ...column, sizeBytes: encryptedColumnBytes(column) }));
  const nothing = { masterKey: false, certificate: false, key: false };
  const base = { certificate: CERTIFICATE_NAME, from: FROM, to: TO, columns: COLUMNS };
  return [
    [
      'install (new org)',
      renderer.install({
        certificate: CERTIFICATE_NAME,
        keyName: FROM.name,
        existing: nothing,
        columns: sized,
        batchSize: DEFAULT_CONVERSION_BATCH,
      }),
    ],
    ['change-key, one transaction', renderer.changeKey(base)],
    ['change-key, batched', renderer.changeKey({ ...base, batchSize: 1000 })],
    ['change-key, resumed', renderer.changeKey({ ...base, to: { ...TO, exists: true }, batchSize: 1000 })],
    ['activate', renderer.activate({ certificate: CERTIFICATE_NAME, keyName: FROM.name, columns: COLUMNS })],
    ['rewrap', renderer.rewrap(REWRAP)],
    ['rewrap, two keys, hostile names', renderer.rewrap({ ...REWRAP, keys: [FROM.name, "k]'?;\n--x"] })],
  ];
}

/** The statements of each transaction: from a BEGIN to its COMMIT (comments are not sent). */
function transactions(statements: string[]): string[][] {
  const out: string[][] = [];
  let current: string[] | undefined;
  for (const sql of statements) {
    if (/^begin( transaction)?$/i.test(sql)) {
      current = [];
    } else if (/^commit( transaction)?$/i.test(sql)) {
      out.push(current ?? []);
      current = undefined;
    } else if (!sql.startsWith('--')) {
      current?.push(sql);
    }
  }
  return out;
}

describe('every engine renders its own --dry-run', () => {
  for (const kind of ENGINE_KINDS) {
    for (const [what, statements] of renderings(dryRunRendererFor(kind))) {
      it(`${kind}: ${what} has statements, every transaction closed, secrets only as ***`, () => {
        expect(statements.length).to.be.greaterThan(3);
        const text = statements.join('\n');
        const code = statements.filter((sql) => !sql.startsWith('--')).join('\n');
        expect(statements.filter((sql) => sql.startsWith('--')).every((c) => !c.includes('\n'))).to.equal(true);
        expect(code.replace(/"(?:[^"]|"")*"|'(?:[^']|'')*'|\[(?:[^\]]|\]\])*\]/g, '')).to.not.include('?');
        expect(transactions(statements).length).to.be.greaterThan(0);
        const begins = statements.filter((s) => /^begin( transaction)?$/i.test(s)).length;
        const commits = statements.filter((s) => /^commit( transaction)?$/i.test(s)).length;
        expect(begins).to.equal(commits);
        if (/key|install|activate|rewrap/.test(what) && !/resumed/.test(what)) expect(text).to.include("'***'");
      });
    }
  }

  for (const [what, statements] of renderings(dryRunRendererFor('mssql'))) {
    it(`mssql: ${what} is T-SQL that parses and keeps the rules, keys opened before use`, () => {
      const problems = statements
        .filter((sql) => !/^(BEGIN|COMMIT) TRANSACTION$/.test(sql) && !sql.startsWith('--'))
        .flatMap((sql) => allStatementRules(sql, { knex: false }).map((p) => `${p}\n  in: ${sql.slice(0, 160)}`));
      expect(problems).to.deep.equal([]);
      for (const trx of transactions(statements)) expect(openKeyBeforeUse(trx)).to.deep.equal([]);
      const text = statements.join('\n');
      expect(text).to.not.match(/\\x[0-9a-f]/i, 'a PostgreSQL bytea literal');
      expect(text).to.not.match(/\['cellcrypt_key/, 'a key name quoted as a string inside brackets');
      if (what.startsWith('change-key')) expect(text).to.include(`CONVERT(uniqueidentifier, N'${FROM.keyGuid}')`);
    });
  }

  for (const kind of ['pglite', 'postgres'] as const) {
    it(`${kind}: change-key writes key GUIDs as the bytea the cells hold`, () => {
      const text = dryRunRendererFor(kind)
        .changeKey({ certificate: CERTIFICATE_NAME, from: FROM, to: TO, columns: COLUMNS })
        .join('\n');
      expect(text).to.include(`'\\x00523f5e08b2149a3ea7de70cc509869'`);
      expect(text).to.include(
        `select cellcrypt.create_symmetric_key('cellcrypt_key_2'::text, 'AES_256', '***'::text, '***'::text, ` +
          `'cellcrypt_certificate'::text, 'sql2017'::text)`,
      );
    });
  }

  for (const kind of ENGINE_KINDS) {
    it(`${kind}: install shows the batch size it is given (no copy of core's default in the engine)`, () => {
      const column = DYNAMICS_DEFAULT_COLUMNS[0];
      const text = dryRunRendererFor(kind)
        .install({
          certificate: CERTIFICATE_NAME,
          keyName: FROM.name,
          existing: { masterKey: true, certificate: true, key: true },
          columns: [{ ...column, sizeBytes: encryptedColumnBytes(column) }],
          batchSize: 1234,
        })
        .join('\n');
      expect(text).to.match(/\b1234\b/);
      expect(text).to.not.match(/\b4000\b/);
    });
  }

  /** The steps of a rewrap, in order, as each engine writes them. */
  const REWRAP_STEPS: Record<'postgres' | 'mssql', string[]> = {
    postgres: [
      'cellcrypt.open_master_key(',
      "open_symmetric_key('cellcrypt_key_2'::text, 'cellcrypt_certificate'::text)",
      "create_certificate('cellcrypt_certificate_2'",
      "move_symmetric_key('cellcrypt_key_2'",
      "drop_certificate('cellcrypt_certificate'::text)",
      "change_master_key_password('***'::text, '***'::text)",
      "open_symmetric_key('cellcrypt_key_1'::text, 'cellcrypt_certificate_2'::text)",
    ],
    mssql: [
      'OPEN MASTER KEY',
      'OPEN SYMMETRIC KEY [cellcrypt_key_2] DECRYPTION BY CERTIFICATE [cellcrypt_certificate]',
      'CREATE CERTIFICATE [cellcrypt_certificate_2]',
      'ALTER SYMMETRIC KEY [cellcrypt_key_2] DROP ENCRYPTION BY CERTIFICATE [cellcrypt_certificate]',
      'DROP CERTIFICATE [cellcrypt_certificate]',
      "ALTER MASTER KEY DROP ENCRYPTION BY PASSWORD = N'***'",
      'OPEN SYMMETRIC KEY [cellcrypt_key_1] DECRYPTION BY CERTIFICATE [cellcrypt_certificate_2]',
    ],
  };

  for (const kind of ENGINE_KINDS) {
    it(`${kind}: rewrap opens through the old certificate, moves every key, drops it, then the password`, () => {
      const statements = dryRunRendererFor(kind).rewrap({ ...REWRAP, keys: [FROM.name, TO.name] });
      const steps = REWRAP_STEPS[kind === 'mssql' ? 'mssql' : 'postgres'];
      const order = steps.map((step) => statements.findIndex((sql) => sql.includes(step)));
      expect(
        order.every((i) => i > 0),
        order.join(),
      ).to.equal(true);
      expect([...order].sort((a, b) => a - b)).to.deep.equal(order);
      expect(transactions(statements)).to.have.length(1);
      // No statement writes a cell: a rewrap changes what protects the keys, nothing else.
      expect(statements.join('\n')).to.not.match(/update |encrypt_text|ENCRYPTBYKEY|reencrypt/i);
    });
  }
});
