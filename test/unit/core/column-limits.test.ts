import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cipherLength, maxPlaintextBytes, MAX_CELL_BYTES } from '../../../src/cellcrypt';
import { CellcryptError } from '../../../src/common/errors';
import { classifyColumn, encryptedColumnBytes, plaintextByteLimit } from '../../../src/core/column-state';
import { planConversion } from '../../../src/core/convert';
import { DYNAMICS_DEFAULT_COLUMNS, loadRegistry, MAX_REGISTRY_LENGTH } from '../../../src/core/registry';
import type { Toolkit } from '../../../src/core/toolkit';
import type { ColumnOps, ColumnShape } from '../../../src/engines/engine';
import { tempDir } from '../../support/temp';

/**
 * Issue 14, review BR6 and DL2 in core: the registry's length limit follows from the 32-byte
 * (version 2) integrity hash, so no accepted value makes a cell over 8000 bytes; and a text column
 * whose declared length is not the registry's is refused by planning, before any change.
 */
const column = DYNAMICS_DEFAULT_COLUMNS[2]; // MailboxBase.Password, nvarchar(200)
const V2 = { authenticator: true, hashLength: 32 } as const;
const uuidKey = { dataType: 'uniqueidentifier', isUuid: true, isPrimaryKey: true };
const textShape = (maxLength: number | null | undefined, shadowExists = false): ColumnShape => ({
  tableExists: true,
  column: { dataType: 'nvarchar', kind: 'text', maxLength },
  shadowExists,
  primaryKey: uuidKey,
});

function registryWith(maxLength: number): string {
  const file = join(tempDir(), 'registry.json');
  const entry = { entity: 'A', attribute: 'Pin', table: 'AccountBase', column: 'Pin', primaryKey: 'AccountId' };
  writeFileSync(file, JSON.stringify({ columns: [{ ...entry, maxLength }] }));
  return file;
}

describe('column limits (review BR6)', () => {
  it('the registry accepts nvarchar(3955) and refuses 3956, naming the limit', () => {
    expect(MAX_REGISTRY_LENGTH).to.equal(3955);
    expect(loadRegistry(registryWith(3955)).at(-1)!.maxLength).to.equal(3955);
    for (const bad of [3956, 4000]) {
      const error = (() => {
        try {
          loadRegistry(registryWith(bad));
        } catch (e) {
          return e as CellcryptError;
        }
      })();
      expect(error, String(bad)).to.be.instanceOf(CellcryptError);
      expect(error!.code).to.equal('CellcryptRegistryInvalid');
      expect(error!.message).to.contain('from 1 to 3955');
    }
  });

  it('the largest accepted value makes a cell of at most 8000 bytes (32-byte hash); one unit more would not', () => {
    // 3955 units = 7910 bytes of UTF-16 -> 7988-byte cell; 3956 units = 7912 bytes -> 8004.
    expect(cipherLength(2 * 3955, V2)).to.equal(7988);
    expect(cipherLength(2 * 3956, V2)).to.equal(8004);
    expect(maxPlaintextBytes(V2)).to.equal(7911);
    expect(cipherLength(maxPlaintextBytes(V2), V2)).to.be.at.most(MAX_CELL_BYTES);
    expect(cipherLength(maxPlaintextBytes(V2) + 1, V2)).to.be.above(MAX_CELL_BYTES);
  });

  it('every accepted length: the shadow holds every value with either hash and is at most varbinary(8000)', () => {
    for (let n = 1; n <= MAX_REGISTRY_LENGTH; n++) {
      const ref = { ...column, maxLength: n };
      const size = encryptedColumnBytes(ref);
      expect(size, `nvarchar(${n})`).to.be.at.most(MAX_CELL_BYTES);
      expect(size, `nvarchar(${n})`).to.be.at.least(cipherLength(2 * n, { authenticator: true, hashLength: 20 }));
      expect(size, `nvarchar(${n})`).to.equal(cipherLength(2 * n, V2));
      expect(plaintextByteLimit(ref), `nvarchar(${n})`).to.equal(2 * n);
    }
  });

  it('an over-wide column (a registry from before the limit): shadow capped at 8000, values at 7911 bytes', () => {
    const wide = { ...column, maxLength: 4000 };
    expect(encryptedColumnBytes(wide)).to.equal(MAX_CELL_BYTES);
    expect(plaintextByteLimit(wide)).to.equal(7911);
  });
});

describe("a registry length that is not the column's (review DL2)", () => {
  it('classifyColumn refuses it, naming both, and says where to fix it', () => {
    for (const [declared, shown] of [
      [250, '(250)'],
      [null, '(max)'],
    ] as const) {
      const verdict = classifyColumn(column, textShape(declared));
      expect('problem' in verdict, String(declared)).to.equal(true);
      const { problem } = verdict as { problem: string };
      expect(problem).to.contain(`nvarchar${shown}`).and.contain('maxLength 200').and.contain('CELLCRYPT_REGISTRY');
    }
    expect((classifyColumn(column, textShape(null)) as { problem: string }).problem).to.contain('8000-byte cell');
    expect(classifyColumn(column, textShape(200))).to.deep.equal({ state: 'plaintext' });
    expect(classifyColumn(column, textShape(200, true))).to.deep.equal({ state: 'converting' });
    expect(classifyColumn(column, textShape(250, true))).to.have.property('problem');
  });

  it('an encrypted (binary) column is not measured against the registry', () => {
    const shape: ColumnShape = {
      tableExists: true,
      column: { dataType: 'varbinary', kind: 'binary', maxLength: 484 },
      shadowExists: false,
      primaryKey: uuidKey,
    };
    expect(classifyColumn(column, shape)).to.deep.equal({ state: 'encrypted' });
  });

  it('planning refuses with CellcryptRegistryInvalid (exit 2) before anything is measured or changed', async () => {
    const called: string[] = [];
    const columns = new Proxy({} as ColumnOps, {
      get: (_target, name: string) =>
        name === 'describe'
          ? async () => textShape(250)
          : async () => {
              called.push(name);
              throw new Error(`planning called ${name}`);
            },
    });
    const tk = { engine: { columns, knex: {} }, registry: [column] } as unknown as Toolkit;
    const error = await planConversion(tk).then(
      () => undefined,
      (e: unknown) => e as CellcryptError,
    );
    expect(error?.code).to.equal('CellcryptRegistryInvalid');
    expect(error?.exitCode).to.equal(2);
    expect(error?.message).to.contain('nothing was changed').and.contain('nvarchar(250)').and.contain('maxLength 200');
    expect(error?.hint).to.contain('CELLCRYPT_REGISTRY');
    expect(called).to.deep.equal([]);
  });
});
