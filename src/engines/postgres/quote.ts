/**
 * The one identifier-quoting helper of the PostgreSQL engines. Every table and column name
 * that reaches SQL text goes through it; values never do (they are bound parameters).
 */
export function quotePgIdentifier(name: string): string {
  if (name.length === 0) throw new Error('empty identifier');
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL character');
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A SQL string literal, for the few places PostgreSQL takes no parameter (to_regclass input is a
 * value, so it is bound).
 */
export function quotePgLiteral(value: string): string {
  if (value.includes('\u0000')) throw new Error('literal contains a NUL character');
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * SQL text sent through knex without bindings (DDL rebuilt from the catalog). knex's pg client
 * turns every `?` of any statement into `$n`, bindings or not, and `\?` into `?`; a backslash
 * right before a `?` cannot be written through it at all, so such text is refused.
 */
export function knexLiteralText(sql: string): string {
  if (/\\\?/.test(sql)) throw new Error('SQL text with a backslash before "?" cannot be sent through knex');
  return sql.replace(/\?/g, '\\?');
}
