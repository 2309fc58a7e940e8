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
