// Loaded by mocha before every spec (.mocharc.json).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chosenTargets } from './targets';

// Anything that falls back to the embedded default while a test runs writes into this
// throw-away directory instead of the developer's ./.cellcrypt.
process.env.CELLCRYPT_HOME ??= mkdtempSync(join(tmpdir(), 'cellcrypt-test-home-'));

if (!process.env.TEST_PG_URL && chosenTargets().includes('postgres')) {
  if (process.env.CELLCRYPT_REQUIRE_PG_SERVER === '1') {
    process.stderr.write(
      'CELLCRYPT_REQUIRE_PG_SERVER=1 but TEST_PG_URL is not set: the PostgreSQL server suite cannot be skipped here\n',
    );
    process.exit(1);
  }
  process.stderr.write(
    'PostgreSQL server suite skipped: TEST_PG_URL is not set (integration tests run on PGlite only)\n',
  );
}
