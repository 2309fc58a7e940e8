import { expect } from 'chai';
import { DYNAMICS_DEFAULT_COLUMNS, type SensitiveColumn } from '../../../../src/core/registry';
import { renderMssqlScript } from '../../../../src/cli/commands/script';
import type { ScriptOperation } from '../../../../src/core/script-plan';
import { SQLCMD_VARIABLES } from '../../../../src/engines/mssql/key-statements';
import { parseTsql, splitGoBatches } from '../../../support/tsql-grammar';
import { allStatementRules, openKeyBeforeUse } from '../../../support/tsql-rules';

/**
 * Issue 5, test 1 for `cellcrypt script`: every batch of every printed script parses with the
 * real T-SQL grammar and passes the rules the grammar does not enforce; keys are opened before
 * they are used, in script order; no secret value, only sqlcmd variables.
 */
const HOSTILE_COLUMN: SensitiveColumn = {
  entity: 'Hostile',
  attribute: 'Secret',
  table: "we]ird'table?; --x",
  column: "col]'?;--😀",
  primaryKey: 'Id]?',
  maxLength: 100,
};

const OPERATIONS: ScriptOperation[] = ['install', 'change-key', 'activate'];

/** sqlcmd's own lines (`:on error exit`, `:setvar`) are read by sqlcmd, never sent: not T-SQL. */
const withoutSqlcmdCommands = (batch: string) =>
  batch
    .split('\n')
    .filter((line) => !line.startsWith(':'))
    .join('\n');

for (const [label, registry] of [
  ['the five Dynamics columns', DYNAMICS_DEFAULT_COLUMNS],
  ['a hostile registry entry', [HOSTILE_COLUMN]],
] as const) {
  describe(`cellcrypt script --engine mssql, ${label}`, function () {
    this.timeout(120_000);
    for (const operation of OPERATIONS) {
      it(`${operation}: every GO batch parses with zero syntax errors and breaks none of our rules`, () => {
        const script = renderMssqlScript(operation, registry, 3);
        const batches = splitGoBatches(script).map(withoutSqlcmdCommands);
        expect(batches.length).to.be.greaterThan(2);
        for (const batch of batches) {
          expect(parseTsql(batch), batch.slice(0, 400)).to.deep.equal([]);
          expect(allStatementRules(batch, { knex: false }), batch.slice(0, 400)).to.deep.equal([]);
        }
        expect(openKeyBeforeUse(batches)).to.deep.equal([]);
      });

      it(
        `${operation}: secrets appear only as sqlcmd variables, the ` +
          `script stops at the first error and runs in one transaction`,
        () => {
          const script = renderMssqlScript(operation, registry, 3);
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
      const script = renderMssqlScript('install', DYNAMICS_DEFAULT_COLUMNS, 1);
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
    'change-key --generation 3 moves cellcrypt_key_3 to cellcrypt_key_4, ' +
      'proves none is left and all decrypt, then drops cellcrypt_key_3',
    () => {
      const script = renderMssqlScript('change-key', DYNAMICS_DEFAULT_COLUMNS, 3);
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
      expect(() => renderMssqlScript('change-key', DYNAMICS_DEFAULT_COLUMNS, bad)).to.throw(/generation/);
    }
  });
});
