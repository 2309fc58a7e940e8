import { expect } from 'chai';
import { mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { OrgMigrationSource } from '../../../src/core/migration-source';
import { tempDir } from '../../support/temp';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildIsFresh } = require('../../../scripts/launch.cjs') as { buildIsFresh: (root: string) => boolean };

/**
 * The executable runs compiled JavaScript when dist/ is current (issue 16: start-up time), so two
 * things must hold: a stale build is never run, and the compiled migrations keep the names an org
 * installed from source recorded (else knex calls the directory corrupt and refuses to upgrade).
 */
describe('compiled executable (issue 16)', () => {
  function checkout(): string {
    const root = tempDir('launch');
    for (const dir of ['src', 'scripts', 'migrations', 'dist']) mkdirSync(join(root, dir));
    writeFileSync(join(root, 'src', 'a.ts'), '');
    const past = new Date(Date.now() - 60_000);
    for (const path of ['src/a.ts', 'src', 'scripts', 'migrations']) utimesSync(join(root, path), past, past);
    // Built 30 s ago: a change now is later even where file times are coarse.
    writeFileSync(join(root, 'dist', 'BUILT'), '');
    const built = new Date(Date.now() - 30_000);
    utimesSync(join(root, 'dist', 'BUILT'), built, built);
    return root;
  }

  it('runs dist/ only while no source changed after the build', () => {
    const root = checkout();
    expect(buildIsFresh(root)).to.equal(true);
    writeFileSync(join(root, 'src', 'a.ts'), 'edited');
    expect(buildIsFresh(root), 'an edited file').to.equal(false);

    const deleted = checkout();
    rmSync(join(deleted, 'src', 'a.ts'));
    expect(buildIsFresh(deleted), 'a deleted file').to.equal(false);

    const unbuilt = checkout();
    rmSync(join(unbuilt, 'dist', 'BUILT'));
    expect(buildIsFresh(unbuilt), 'no build').to.equal(false);
  });

  it('names compiled migrations by their source files, as an org installed from source recorded them', async () => {
    const compiled = tempDir('migrations');
    writeFileSync(join(compiled, '20260101000001_first.js'), 'exports.up = async () => {};');
    writeFileSync(join(compiled, '20260101000001_first.d.ts'), '');
    mkdirSync(join(compiled, 'support'));
    const source = new OrgMigrationSource(compiled);
    const migrations = await source.getMigrations();
    expect(migrations.map((m) => source.getMigrationName(m))).to.deep.equal(['20260101000001_first.ts']);
    // `file` is what `migrate status` and knex's own CLI print for a pending migration.
    expect(migrations.map((m) => m.file)).to.deep.equal(['20260101000001_first.ts']);
    expect(typeof (await source.getMigration(migrations[0])).up).to.equal('function');

    const real = resolve(__dirname, '../../../migrations');
    const files = readdirSync(real).filter((file) => file.endsWith('.ts'));
    const realSource = new OrgMigrationSource(real);
    const names = (await realSource.getMigrations()).map((m) => realSource.getMigrationName(m));
    expect(names).to.deep.equal(files.sort());
  });
});
