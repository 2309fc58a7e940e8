// `npm run build` (also run by `npm ci`, as `prepare`): compiles to dist/, copies the SQL the
// PostgreSQL engine reads at run time, and stamps the build so scripts/launch.cjs knows it fresh.
'use strict';
const { execFileSync } = require('node:child_process');
const { cpSync, rmSync, writeFileSync } = require('node:fs');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');
const DIST = join(ROOT, 'dist');
rmSync(DIST, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
const SQL = join('src', 'engines', 'postgres', 'sql');
cpSync(join(ROOT, SQL), join(DIST, SQL), { recursive: true });
writeFileSync(join(DIST, 'BUILT'), `${new Date().toISOString()}\n`);
