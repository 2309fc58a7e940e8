import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The PL/pgSQL scripts of the PostgreSQL engines (sql/*.sql, run in name order). They are
 * templates: `{{pgcrypto}}` stands for the quoted schema that holds the pgcrypto extension,
 * because cellcrypt never relies on search_path.
 */
const SQL_DIR = join(__dirname, 'sql');

export interface SqlScriptVars {
  /** Already quoted, e.g. `"public"` (quote_ident of pg_extension's namespace). */
  pgcrypto: string;
}

export function listSqlScripts(): string[] {
  return readdirSync(SQL_DIR)
    .filter((file) => file.endsWith('.sql'))
    .sort();
}

export function renderSqlScript(fileName: string, vars: SqlScriptVars): string {
  // A replacer function, not a replacement string: a schema name may contain `$`, which
  // String.replace would otherwise read as `$&`/`$1` patterns.
  const rendered = readFileSync(join(SQL_DIR, fileName), 'utf8').replace(/\{\{pgcrypto\}\}/g, () => vars.pgcrypto);
  const leftover = rendered.indexOf('{{');
  if (leftover !== -1) {
    throw new Error(`${fileName}: unreplaced template variable near '${rendered.slice(leftover, leftover + 30)}'`);
  }
  return rendered;
}
