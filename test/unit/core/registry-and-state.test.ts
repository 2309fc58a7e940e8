import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { classifyColumn, encryptedColumnBytes, plaintextByteLimit } from '../../../src/core/column-state';
import { CellcryptError } from '../../../src/common/errors';
import { DYNAMICS_DEFAULT_COLUMNS, loadRegistry } from '../../../src/core/registry';
import type { ColumnShape } from '../../../src/engines/engine';
import { tempDir } from '../../support/temp';

const column = DYNAMICS_DEFAULT_COLUMNS[0];
const uuidKey = { dataType: 'uuid', isUuid: true, isPrimaryKey: true };

describe('registry', () => {
  it('ships exactly the five Dynamics columns', () => {
    expect(loadRegistry().map((c) => `${c.table}.${c.column}:${c.maxLength}`)).to.deep.equal([
      'EmailServerProfileBase.IncomingPassword:250',
      'EmailServerProfileBase.OutgoingPassword:250',
      'MailboxBase.Password:200',
      'QueueBase.EmailPassword:200',
      'UserSettingsBase.EmailPassword:200',
    ]);
  });

  it('is extended by a JSON file and refuses bad entries with every problem listed', () => {
    const dir = tempDir();
    const good = join(dir, 'good.json');
    writeFileSync(
      good,
      JSON.stringify({
        columns: [
          {
            entity: 'Account',
            attribute: 'Pin',
            table: 'AccountBase',
            column: 'Pin',
            primaryKey: 'AccountId',
            maxLength: 10,
          },
        ],
      }),
    );
    expect(loadRegistry(good)).to.have.length(6);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ columns: [{ table: 'T' }, { ...DYNAMICS_DEFAULT_COLUMNS[2] }] }));
    try {
      loadRegistry(bad);
      expect.fail('accepted a bad registry');
    } catch (error) {
      expect(error).to.be.instanceOf(CellcryptError);
      expect((error as CellcryptError).exitCode).to.equal(2);
      expect((error as CellcryptError).message)
        .to.contain('columns[0]: missing or empty entity')
        .and.contain('maxLength')
        .and.contain('registered twice');
    }
  });
});

describe('column classification', () => {
  const shape = (over: Partial<ColumnShape>): ColumnShape => ({
    tableExists: true,
    column: { dataType: 'character varying', kind: 'text' },
    shadowExists: false,
    primaryKey: uuidKey,
    ...over,
  });

  it('tells plaintext, converting and encrypted apart', () => {
    expect(classifyColumn(column, shape({}))).to.deep.equal({ state: 'plaintext' });
    expect(classifyColumn(column, shape({ shadowExists: true }))).to.deep.equal({ state: 'converting' });
    expect(classifyColumn(column, shape({ column: { dataType: 'bytea', kind: 'binary' } }))).to.deep.equal({
      state: 'encrypted',
    });
  });

  it('names the problem for missing objects and unusable keys or types', () => {
    const problem = (s: ColumnShape) => (classifyColumn(column, s) as { problem: string }).problem;
    expect(problem({ tableExists: false, shadowExists: false })).to.contain('does not exist');
    expect(problem(shape({ column: undefined }))).to.contain('column IncomingPassword does not exist');
    expect(problem(shape({ primaryKey: { dataType: 'integer', isUuid: false, isPrimaryKey: true } }))).to.contain(
      'not a uniqueidentifier',
    );
    expect(problem(shape({ primaryKey: { ...uuidKey, isPrimaryKey: false } }))).to.contain(
      'not the (single-column) primary key',
    );
    expect(problem(shape({ column: { dataType: 'integer', kind: 'other' } }))).to.contain('neither text');
  });

  it('sizes varbinary by the reference formula: nvarchar(250) -> varbinary(580), nvarchar(200) -> 484', () => {
    expect(encryptedColumnBytes(column)).to.equal(580);
    // (floor((8 + 400 + 32) / 16) + 1) * 16 + 16 + 16 + 4 = 484
    expect(encryptedColumnBytes(DYNAMICS_DEFAULT_COLUMNS[2])).to.equal(484);
    expect(plaintextByteLimit(column)).to.equal(500);
    // One 8000-byte cell with the 32-byte hash of version-2 blobs (review BR6; 7923 with SHA-1's 20).
    expect(plaintextByteLimit({ ...column, maxLength: 4000 })).to.equal(7911);
  });
});
