import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from '../support/temp';

/**
 * The layer rules `npm run lint` holds (.dependency-cruiser.cjs), shown to fail: a throw-away
 * tree with one forbidden import per rule is cruised with the project's own rule set, and each
 * rule must name its violation (a rule that matched nothing would pass every tree).
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the rule file is CommonJS, as depcruise reads it
const RULES = require(resolve(__dirname, '../../.dependency-cruiser.cjs'));

const TREE: Record<string, string> = {
  'src/common/errors.ts': `import { x } from '../core/policy';\nexport const e = x;\n`,
  'src/cellcrypt/codec.ts': `import { p } from '../config/settings';\nexport const c = p;\n`,
  'src/config/settings.ts': `import { k } from '../keystore/store';\nexport const p = k;\n`,
  'src/engines/postgres/columns.ts':
    `import { x } from '../../core/policy';\n` + `import { m } from '../mssql/quote';\nexport const q = [x, m];\n`,
  'src/engines/mssql/quote.ts': `export const m = 1;\n`,
  'src/engines/index.ts': `export const factory = 1;\n`,
  'src/keystore/store.ts': `import { m } from '../engines/mssql/quote';\nexport const k = m;\n`,
  'src/core/policy.ts':
    `import { m } from '../engines/mssql/quote';\nimport { factory } from '../engines';\n` +
    `import { Client } from 'pg';\nexport const x = [m, factory, Client];\n`,
  'node_modules/pg/package.json': `{ "name": "pg", "main": "index.js" }\n`,
  'node_modules/pg/index.js': `exports.Client = 1;\n`,
  'src/core/a.ts': `import { b } from './b';\nexport const a = b;\n`,
  'src/core/b.ts': `import { a } from './a';\nexport const b = a;\n`,
};

describe('layer rules (dependency-cruiser)', () => {
  it('every rule of the design fails its forbidden import, by name', async function () {
    this.timeout(60_000);
    const { cruise } = await import('dependency-cruiser');
    const dir = tempDir('cellcrypt-layers-');
    for (const [file, text] of Object.entries(TREE)) {
      mkdirSync(join(dir, file, '..'), { recursive: true });
      writeFileSync(join(dir, file), text);
    }
    const cwd = process.cwd();
    process.chdir(dir);
    let result;
    try {
      result = await cruise(['src'], { ruleSet: { forbidden: RULES.forbidden }, validate: true });
    } finally {
      process.chdir(cwd);
    }
    const output = result.output as { summary: { violations: Array<{ rule: { name: string } }> } };
    const broken = new Set(output.summary.violations.map((v) => v.rule.name));
    expect([...broken].sort()).to.deep.equal(RULES.forbidden.map((rule: { name: string }) => rule.name).sort());
  });
});
