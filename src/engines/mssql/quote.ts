/**
 * The one identifier-quoting helper and the one literal-escaping helper of the SQL Server
 * engine. Every name that reaches T-SQL goes through `quoteTsqlIdentifier`; every value that
 * must be inlined (DDL takes no parameters: KEY_SOURCE, IDENTITY_VALUE, passwords) goes through
 * `tsqlLiteral`. Secrets are inlined only into statements that bypass knex (see execute.ts).
 */
export function quoteTsqlIdentifier(name: string): string {
  if (name.length === 0) throw new Error('empty identifier');
  if (name.length > 128) throw new Error(`identifier longer than 128 characters: ${name.slice(0, 20)}...`);
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL character');
  return `[${name.replace(/]/g, ']]')}]`;
}

/** `N'...'`: Unicode literal (N, so KEY_SOURCE is hashed as UTF-16 exactly as the codec hashes it). */
export function tsqlLiteral(value: string): string {
  if (value.includes('\u0000')) throw new Error('literal contains a NUL character');
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value))
    throw new Error('literal contains a lone surrogate');
  return `N'${value.replace(/'/g, "''")}'`;
}

/** A validated non-negative integer for `TOP (n)` and sizes (never a string that could carry SQL). */
export function tsqlInteger(value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`not a non-negative integer: ${value}`);
  return String(value);
}

/**
 * SQL handed to `knex.raw` without bindings: knex turns every `?` into a parameter, even
 * inside a literal or a bracketed name, so each one there becomes `\?` (knex's escape for a
 * literal question mark). Outside literals we never write `?`.
 */
export function escapeForKnex(sql: string): string {
  let out = '';
  let quote: "'" | ']' | undefined;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i];
    if (quote) {
      if (ch === quote) {
        if (sql[i + 1] === quote) {
          out += ch + ch;
          i++;
          continue;
        }
        quote = undefined;
      } else if (ch === '?') {
        out += '\\?';
        continue;
      }
    } else if (ch === "'") quote = "'";
    else if (ch === '[') quote = ']';
    else if (ch === '?')
      throw new Error('a bare ? outside a literal: T-SQL statements of this engine carry no knex placeholders');
    out += ch;
  }
  return out;
}
