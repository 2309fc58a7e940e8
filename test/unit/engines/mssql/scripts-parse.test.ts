import { expect } from 'chai';
import { deriveKey } from '../../../../src/cellcrypt';
import { identityValueFor } from '../../../../src/cellcrypt/key-identity';
import { Secret } from '../../../../src/common/secret';
import { DYNAMICS_DEFAULT_COLUMNS, type SensitiveColumn } from '../../../../src/core/registry';
import { renderMssqlScript } from '../../../../src/cli/commands/script';
import type { ScriptOperation } from '../../../../src/core/script-plan';
import { blockersQuery } from '../../../../src/engines/mssql/blockers';
import { columnStatements as S } from '../../../../src/engines/mssql/column-statements';
import { refreshDependentModules } from '../../../../src/engines/mssql/dependent-modules';
import { SQLCMD_VARIABLES } from '../../../../src/engines/mssql/key-statements';
import { parseTsql, splitGoBatches } from '../../../support/tsql-grammar';
import {
  allStatementRules,
  dynamicSqlBodies,
  openKeyBeforeUse,
  scriptBatches,
  withoutSqlcmdCommands,
} from '../../../support/tsql-rules';

/**
 * Issue 5, test 1 for `cellcrypt script`: every batch of every printed script parses with the
 * real T-SQL grammar, and so does the T-SQL each batch hands to sp_executesql (the server
 * compiles it as a batch of its own); every batch passes the rules the grammar does not enforce;
 * keys are opened before they are used, in script order; no secret value, only sqlcmd variables.
 */
const HOSTILE_COLUMN: SensitiveColumn = {
  entity: 'Hostile',
  attribute: 'Secret',
  table: "we]ird'table?; --x",
  column: "col]'?;--😀",
  primaryKey: 'Id]?',
  maxLength: 100,
};

/** A key with everything that breaks naive quoting: `'`, `"`, `]`, `?`, `;`, `--`, `$`, non-BMP. */
const HOSTILE_KEY = new Secret(`K'e"y]?;--$ 😀 Ключ-1!`);

const OPERATIONS: ScriptOperation[] = ['install', 'change-key', 'activate'];

for (const [label, registry] of [
  ['the five Dynamics columns', DYNAMICS_DEFAULT_COLUMNS],
  ['a hostile registry entry', [HOSTILE_COLUMN]],
] as const) {
  describe(`cellcrypt script --engine mssql, ${label}`, function () {
    this.timeout(300_000);
    for (const operation of OPERATIONS) {
      it(`${operation}: every GO batch and every sp_executesql body parses and breaks none of our rules`, () => {
        const script = renderMssqlScript(operation, registry, 3, HOSTILE_KEY);
        const sent = splitGoBatches(script).map(withoutSqlcmdCommands);
        expect(sent.length).to.be.greaterThan(4);
        const bodies = sent.flatMap(dynamicSqlBodies);
        if (operation === 'install') expect(bodies.length).to.equal(registry.length);
        for (const batch of [...sent, ...bodies]) expect(parseTsql(batch), batch.slice(0, 400)).to.deep.equal([]);
        // The rules read what runs: each sp_executesql body in place of its call.
        const batches = scriptBatches(script);
        for (const batch of batches)
          expect(allStatementRules(batch, { knex: false }), batch.slice(0, 400)).to.deep.equal([]);
        expect(openKeyBeforeUse(batches)).to.deep.equal([]);
      });

      it(
        `${operation}: secrets appear only as sqlcmd variables, the ` +
          `script stops at the first error and runs in one transaction`,
        () => {
          const script = renderMssqlScript(operation, registry, 3, HOSTILE_KEY);
          expect(script).to.match(/^:on error exit$/m);
          expect(script).to.contain('SET XACT_ABORT ON;');
          expect(script.match(/BEGIN TRANSACTION;/g)).to.have.length(1);
          expect(script.match(/COMMIT TRANSACTION;/g)).to.have.length(1);
          for (const literal of script.match(/(?:PASSWORD|KEY_SOURCE|IDENTITY_VALUE) = N'[^']*'/g) ?? []) {
            expect(literal).to.match(
              /= N'\$\((CellcryptMasterKeyPassword|CellcryptPassphrase|CellcryptIdentityValue)\)'$/,
            );
          }
          const used = new Set([...script.matchAll(/\$\((\w+)\)/g)].map((m) => m[1]));
          expect(
            [...used].every((name) => Object.values(SQLCMD_VARIABLES).includes(name)),
            [...used].join(),
          ).to.equal(true);
          // The key file's key, its identity value and its key bytes never reach the script: the
          // probe blob is made from them, and is all the script holds.
          const keyBytes = deriveKey(HOSTILE_KEY.reveal(), 'sql2017').toString('hex');
          for (const secret of [HOSTILE_KEY.reveal(), identityValueFor(HOSTILE_KEY).reveal(), keyBytes])
            expect(script.toLowerCase()).not.to.contain(secret.toLowerCase());
          expect(script).not.to.contain('Ключ');
        },
      );
    }
  });
}

describe('cellcrypt script --engine mssql: what each script does', () => {
  it(
    'install creates the hierarchy, then per column adds the shadow in its ' +
      'own batch (a batch is compiled before it runs) and proves before it swaps',
    () => {
      const script = renderMssqlScript('install', DYNAMICS_DEFAULT_COLUMNS, 1, HOSTILE_KEY);
      expect(script).to.contain('CREATE SYMMETRIC KEY [cellcrypt_key_1] WITH ALGORITHM = AES_256');
      for (const column of DYNAMICS_DEFAULT_COLUMNS) {
        const add = script.indexOf(`ALTER TABLE [${column.table}] ADD [${column.column}__cellcrypt]`);
        const encrypt = script.indexOf(`SET [${column.column}__cellcrypt] = ENCRYPTBYKEY`, add);
        const proof = script.indexOf('THROW 50002', encrypt);
        const swap = script.indexOf(`DROP COLUMN [${column.column}]`, proof);
        expect(
          [add, encrypt, proof, swap].every((i) => i > 0),
          column.column,
        ).to.equal(true);
        expect(script.slice(add, encrypt), 'a GO between ALTER TABLE ADD and the UPDATE that uses the column').to.match(
          /\nGO\n/,
        );
      }
    },
  );

  it(
    'install refuses, in its first transaction batch and before any change, a column whose real length is not ' +
      "the registry's, a value longer than a cell holds, and what blocks the swap (DL2, BR2)",
    () => {
      const script = renderMssqlScript('install', DYNAMICS_DEFAULT_COLUMNS, 1, HOSTILE_KEY);
      const first = scriptBatches(script).find((batch) => batch.includes('BEGIN TRANSACTION;'))!;
      // Nothing in it changes anything: BEGIN, the locks, the reads and the THROWs.
      expect(first).not.to.match(/\b(?:CREATE|ALTER|DROP|UPDATE|INSERT INTO \[|DELETE FROM \[)/);
      for (const column of DYNAMICS_DEFAULT_COLUMNS) {
        const where = `OBJECT_ID(N'[${column.table}]', N'U') AND name = N'${column.column}'`;
        const length = first.indexOf(
          `THEN max_length / 2 ELSE max_length END FROM sys.columns WHERE object_id = ${where}`,
        );
        expect(length, column.column).to.be.greaterThan(0);
        expect(first.slice(length)).to.match(new RegExp(`^[^\\n]*<> ${column.maxLength} THROW 50008, `));
        expect(first).to.contain(
          `IF EXISTS (SELECT 1 FROM [${column.table}] WHERE DATALENGTH(CONVERT(nvarchar(max), [${column.column}])) > ` +
            `${2 * column.maxLength}) THROW 50009, `,
        );
        expect(first).to.contain(
          `(SELECT STRING_AGG(CONVERT(nvarchar(max), blocker), N'; ') FROM (${blockersQuery(column)}) AS b)`,
        );
      }
      expect(first.match(/THROW 50014, @message, 1/g)).to.have.length(DYNAMICS_DEFAULT_COLUMNS.length);
      // The dependent views and modules are refreshed right after each swap, in the same step.
      for (const column of DYNAMICS_DEFAULT_COLUMNS) {
        const swap = `${S.swap(column)};\n${refreshDependentModules(column)};`;
        expect(
          scriptBatches(script).some((batch) => batch.includes(swap)),
          column.column,
        ).to.equal(true);
      }
    },
  );

  it(
    'change-key --generation 3 moves cellcrypt_key_3 to cellcrypt_key_4, ' +
      'proves none is left and all decrypt, then drops cellcrypt_key_3',
    () => {
      const script = renderMssqlScript('change-key', DYNAMICS_DEFAULT_COLUMNS, 3, HOSTILE_KEY);
      const create = script.indexOf('CREATE SYMMETRIC KEY [cellcrypt_key_4]');
      const lastMove = script.lastIndexOf("KEY_GUID(N'cellcrypt_key_4'), DECRYPTBYKEY(");
      const drop = script.indexOf('DROP SYMMETRIC KEY [cellcrypt_key_3]');
      const commit = script.indexOf('COMMIT TRANSACTION');
      expect(create).to.be.greaterThan(0);
      expect(lastMove).to.be.greaterThan(create);
      expect(script.indexOf('THROW 50005', lastMove)).to.be.greaterThan(lastMove);
      expect(drop).to.be.greaterThan(script.lastIndexOf('THROW 50005'));
      expect(commit).to.be.greaterThan(drop);
    },
  );

  it('refuses a generation that is not a whole number from 1 (exit 2)', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => renderMssqlScript('change-key', DYNAMICS_DEFAULT_COLUMNS, bad, HOSTILE_KEY)).to.throw(/generation/);
    }
  });
});
