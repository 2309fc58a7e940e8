import { expect } from 'chai';
import { Secret } from '../../../../src/common/secret';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import { renderMssqlScript } from '../../../../src/cli/commands/script';

/**
 * The scripts do what the engine does about disk and tempdb (review WR1, SS2/SS3): install
 * rebuilds every converted table after its COMMIT (the dropped plaintext stays in the data
 * pages until then), and change-key moves each column with one UPDATE, never through a table
 * variable holding the whole column.
 */
const KEY = new Secret('A-Passphrase-The-DBA-Chose-1!');
const batches = (script: string) => script.split(/^GO$/m).map((batch) => batch.trim());

describe('sqlcmd scripts: rebuild after install, no table variable in change-key', () => {
  it('install rebuilds each registered table once, after the COMMIT', () => {
    const parts = batches(renderMssqlScript('install', DYNAMICS_DEFAULT_COLUMNS, 1, KEY));
    const commit = parts.findIndex((batch) => /^COMMIT TRANSACTION;$/m.test(batch));
    const rebuilds = parts.flatMap((batch, i) =>
      [...batch.matchAll(/ALTER TABLE (\[[^\]]+\]) REBUILD/g)].map((m) => ({ table: m[1], i })),
    );
    expect(commit).to.be.greaterThan(0);
    expect(rebuilds.map((r) => r.table)).to.deep.equal([
      ...new Set(DYNAMICS_DEFAULT_COLUMNS.map((c) => `[${c.table}]`)),
    ]);
    for (const rebuild of rebuilds) expect(rebuild.i).to.be.greaterThan(commit);
    expect(parts.join('\n')).to.match(/older backups and log backups still hold it/);
  });

  it('change-key moves each column with one UPDATE and holds no table variable', () => {
    const script = renderMssqlScript('change-key', DYNAMICS_DEFAULT_COLUMNS, 1, KEY);
    // The one table variable left is the server check's DBCC TRACESTATUS output (a few rows).
    expect([...script.matchAll(/DECLARE (@\w+) TABLE/g)].map((m) => m[1])).to.deep.equal(['@traceFlags']);
    expect(script.match(/^DECLARE @moved int; UPDATE t SET /gm)).to.have.length(DYNAMICS_DEFAULT_COLUMNS.length);
  });
});
