import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every engine folder repeats one file set (kysely's dialect folders are the model), so adding
 * an engine is a checklist: this test is that checklist. Each file's job is in docs/architecture.md.
 */
const FILE_SET = [
  'engine.ts',
  'connect.ts',
  'quote.ts',
  'key-statements.ts',
  'key-hierarchy.ts',
  'column-statements.ts',
  'columns.ts',
  'dry-run.ts',
  'session-lock.ts',
  'errors.ts',
  'permissions.ts',
  'diagnose.ts',
  'demo.ts',
];

const ENGINES_DIR = join(__dirname, '../../../src/engines');

describe('engine folders share one file set', () => {
  const folders = readdirSync(ENGINES_DIR, { withFileTypes: true }).filter((entry) => entry.isDirectory());

  it('there are engine folders to check', () => {
    expect(folders.map((f) => f.name).sort()).to.include.members(['mssql', 'postgres']);
  });

  for (const folder of folders) {
    it(`${folder.name} has every file of the set`, () => {
      const files = readdirSync(join(ENGINES_DIR, folder.name));
      expect(FILE_SET.filter((file) => !files.includes(file))).to.deep.equal([]);
    });
  }
});
