// Loaded by mocha before every spec (.mocharc.json). Keeps test runs from touching the
// developer's own embedded data: anything that falls back to the embedded default while a
// test runs would write into this throw-away directory instead of ./.cellcrypt.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

process.env.CELLCRYPT_HOME ??= mkdtempSync(join(tmpdir(), 'cellcrypt-test-home-'));
