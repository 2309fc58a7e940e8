import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import {
  decryptByKey,
  encryptByKey,
  guidStringToBytes,
  keyGuidFromIdentity,
  nvarcharBytes,
  guidBytesToString,
} from '../../../src/cellcrypt';
import { Secret } from '../../../src/common/secret';
import { cellKeyFor, moveCellsInClient } from '../../../src/core/client-side-move';
import { CellcryptError } from '../../../src/common/errors';
import type { Engine } from '../../../src/engines/engine';

/**
 * The client-side move's own logic (a fake engine is fine here: this is the walk and the
 * refusal, not SQL): each cell read once in key order, re-encrypted under the new key with
 * its row authenticator, written back; a cell that does not decrypt is never written.
 */
const OLD = new Secret('old key 1!');
const NEW = new Secret('new key 2!');
const guidFor = (s: Secret) => guidBytesToString(keyGuidFromIdentity(s.reveal()));

function fakeEngine(rows: Array<{ id: string; cell: Buffer | null }>) {
  const written: Array<{ id: string; cell: Buffer }> = [];
  const reads: Array<string | undefined> = [];
  const columns = {
    async readCellsOnKey(_trx: unknown, _ref: unknown, guid: string, afterId: string | undefined, limit: number) {
      reads.push(afterId);
      const window = rows.filter((r) => afterId === undefined || r.id > afterId).slice(0, limit);
      const onKey = window.filter(
        (r) => r.cell !== null && guidBytesToString(r.cell.subarray(0, 16)) === guid,
      ) as Array<{ id: string; cell: Buffer }>;
      return { cells: onKey, last: window.length === limit ? window[window.length - 1].id : undefined };
    },
    async writeCells(_trx: unknown, _ref: unknown, cells: ReadonlyArray<{ id: string; cell: Buffer }>) {
      written.push(...cells);
      return cells.length;
    },
  };
  return { engine: { columns } as unknown as Engine, written, reads };
}

const column = { table: 'T', column: 'C', primaryKey: 'Id', maxLength: 100 };

describe('client-side key change: moveCellsInClient', () => {
  const oldKey = cellKeyFor(OLD, guidFor(OLD));
  const newKey = cellKeyFor(NEW, guidFor(NEW));
  const rows = Array.from({ length: 7 }, () => randomUUID())
    .sort()
    .map((id, i) => ({
      id,
      cell: encryptByKey(oldKey, nvarcharBytes(`value ${i} 😀`), { authenticator: guidStringToBytes(id) }),
    }));

  it(
    'walks the column once in key order (limit 3: reads after nothing, 3rd id, ' +
      '6th id), rewrites every cell under the new key with its row authenticator',
    async () => {
      const { engine, written, reads } = fakeEngine(rows);
      const moved = await moveCellsInClient(
        engine,
        {} as never,
        column,
        { keyGuid: guidFor(OLD), key: oldKey },
        newKey,
        3,
        () => undefined,
      );
      expect(moved).to.equal(7);
      expect(reads).to.deep.equal([undefined, rows[2].id, rows[5].id]);
      written.forEach(({ id, cell }, i) => {
        expect(cell.subarray(0, 16).equals(newKey.keyGuid)).to.equal(true);
        expect(decryptByKey(cell, newKey, guidStringToBytes(id))?.equals(nvarcharBytes(`value ${i} 😀`))).to.equal(
          true,
        );
        expect(decryptByKey(cell, newKey, guidStringToBytes(rows[(i + 1) % 7].id)), 'bound to its own row').to.equal(
          null,
        );
      });
    },
  );

  it(
    "a cell that does not decrypt (another row's cell) " + 'stops the move before anything of its batch is written',
    async () => {
      const damaged = rows.map((r, i) => (i === 4 ? { id: r.id, cell: rows[0].cell } : r));
      const { engine, written } = fakeEngine(damaged);
      const error = await moveCellsInClient(
        engine,
        {} as never,
        column,
        { keyGuid: guidFor(OLD), key: oldKey },
        newKey,
        3,
        () => undefined,
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(CellcryptError);
      expect((error as CellcryptError).code).to.equal('CellcryptCellsNotDecryptable');
      expect(
        written.map((w) => w.id),
        'only the first batch, which was whole',
      ).to.deep.equal(rows.slice(0, 3).map((r) => r.id));
    },
  );

  it(
    'skips NULL cells and cells already on the new key, ' + 'and keeps walking past a window with none to move',
    async () => {
      const mixed = rows.map((r, i) =>
        i < 3
          ? {
              id: r.id,
              cell:
                i === 1
                  ? null
                  : encryptByKey(newKey, nvarcharBytes(`done ${i}`), { authenticator: guidStringToBytes(r.id) }),
            }
          : r,
      );
      const { engine, written, reads } = fakeEngine(mixed);
      const moved = await moveCellsInClient(
        engine,
        {} as never,
        column,
        { keyGuid: guidFor(OLD), key: oldKey },
        newKey,
        3,
        () => undefined,
      );
      expect(reads).to.deep.equal([undefined, rows[2].id, rows[5].id]);
      expect(moved).to.equal(4);
      expect(written.map((w) => w.id)).to.deep.equal(rows.slice(3).map((r) => r.id));
    },
  );
});
