/**
 * Our rules for the T-SQL cellcrypt emits that the grammar (./tsql-grammar) does not enforce:
 * a statement can be valid T-SQL and still be wrong for us (a weak cipher, a truncating CONVERT,
 * an ENCRYPTBYKEY that silently returns NULL because its key is not open).
 * Every rule is a pure function returning violations, each naming its statement; [] = ok.
 */
import { GO_LINE, parseTsql, splitGoBatches } from './tsql-grammar';

// ---------------------------------------------------------------------------------------------
// The one tokenizer all rules share: it knows just enough T-SQL lexing that a comma, paren, `?`
// or keyword inside a comment, string literal or quoted identifier is never mistaken for code.

export type SqlTokenKind = 'word' | 'string' | 'quoted' | 'comment' | 'punct';

export interface SqlToken {
  kind: SqlTokenKind;
  /** The source text, delimiters included (`N'it''s'`, `[we]]ird]`, `-- note`). */
  text: string;
  /** Offset of the token in the SQL. */
  start: number;
}

/** Keywords, names, numbers, `@variables`, `#temp`, `0x` literals: one token each. */
const WORD_CHAR = /[\p{L}\p{N}_@#$]/u;

/** Offset after the run opened just before `from` and closed by `close`; a doubled `close` is an escaped one. */
function closingOffset(sql: string, from: number, close: string): number {
  for (let j = from; ;) {
    const k = sql.indexOf(close, j);
    if (k < 0) return sql.length; // unterminated: the grammar reports it, the rules just stop there
    if (sql[k + 1] !== close) return k + 1;
    j = k + 2;
  }
}

/** T-SQL block comments nest: `/* a /* b *\/ still comment *\/`. */
function blockCommentEnd(sql: string, from: number): number {
  let depth = 0;
  for (let j = from; j < sql.length;) {
    if (sql.startsWith('/*', j)) {
      depth++;
      j += 2;
    } else if (sql.startsWith('*/', j)) {
      j += 2;
      if (--depth === 0) return j;
    } else j++;
  }
  return sql.length;
}

/** Splits SQL into tokens, whitespace dropped; comments are kept (as 'comment') for the rules that care. */
export function tokenizeSql(sql: string): SqlToken[] {
  const tokens: SqlToken[] = [];
  let i = 0;
  const take = (kind: SqlTokenKind, end: number) => {
    tokens.push({ kind, text: sql.slice(i, end), start: i });
    i = end;
  };
  while (i < sql.length) {
    const c = sql[i];
    const next = sql[i + 1];
    if (/\s/.test(c)) i++;
    else if (c === '-' && next === '-') {
      const newline = sql.indexOf('\n', i);
      take('comment', newline < 0 ? sql.length : newline);
    } else if (c === '/' && next === '*') take('comment', blockCommentEnd(sql, i));
    else if (c === "'") take('string', closingOffset(sql, i + 1, "'"));
    // Only reached at the start of a word (words are taken whole), so `IN'x'` stays IN + 'x'.
    else if ((c === 'N' || c === 'n') && next === "'") take('string', closingOffset(sql, i + 2, "'"));
    else if (c === '[') take('quoted', closingOffset(sql, i + 1, ']'));
    else if (c === '"') take('quoted', closingOffset(sql, i + 1, '"'));
    else if (WORD_CHAR.test(c)) {
      let j = i + 1;
      while (j < sql.length && WORD_CHAR.test(sql[j])) j++;
      take('word', j);
    } else take('punct', i + 1);
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Helpers over tokens.

const codeTokens = (sql: string) => tokenizeSql(sql).filter((t) => t.kind !== 'comment');

const isWord = (t: SqlToken | undefined, ...words: string[]) =>
  t !== undefined && t.kind === 'word' && words.includes(t.text.toUpperCase());

const isPunct = (t: SqlToken | undefined, p: string) => t !== undefined && t.kind === 'punct' && t.text === p;

/** The value a literal or name stands for: `N'it''s'` → it's, `[a]]b]` → a]b, `"x"` → x, `k` → k. */
export function tokenValue(t: SqlToken): string {
  if (t.kind === 'string')
    return t.text
      .replace(/^[Nn]?'/, '')
      .replace(/'$/, '')
      .replace(/''/g, "'");
  if (t.kind === 'quoted' && t.text.startsWith('[')) return t.text.slice(1).replace(/]$/, '').replace(/]]/g, ']');
  if (t.kind === 'quoted') return t.text.slice(1).replace(/"$/, '').replace(/""/g, '"');
  return t.text;
}

/**
 * The `;`-delimited statement around `offset`, whitespace collapsed, first 80 characters: how
 * every violation names its statement. (T-SQL does not require `;`, so an unterminated piece
 * may hold several statements; it still points the reader at the right place.)
 */
function statementAt(sql: string, offset: number): string {
  let from = 0;
  let to = sql.length;
  for (const t of codeTokens(sql)) {
    if (!isPunct(t, ';')) continue;
    if (t.start < offset) from = t.start + 1;
    else {
      to = t.start;
      break;
    }
  }
  return sql.slice(from, to).replace(/\s+/g, ' ').trim().slice(0, 80);
}

/**
 * The top-level arguments of the call whose `(` is at `open` (each a token list), or undefined when
 * it never closes.
 */
function callArguments(code: SqlToken[], open: number): SqlToken[][] | undefined {
  const args: SqlToken[][] = [[]];
  let depth = 0;
  for (let i = open + 1; i < code.length; i++) {
    const t = code[i];
    if (isPunct(t, '(')) depth++;
    else if (isPunct(t, ')') && depth-- === 0) return args.length === 1 && args[0].length === 0 ? [] : args;
    else if (isPunct(t, ',') && depth === 0) {
      args.push([]);
      continue;
    }
    args[args.length - 1].push(t);
  }
  return undefined;
}

/** Every `NAME(` call in the code, with its index (of NAME) and arguments. */
function calls(code: SqlToken[], ...names: string[]) {
  const found: { at: number; args: SqlToken[][] | undefined }[] = [];
  code.forEach((t, i) => {
    if (isWord(t, ...names) && isPunct(code[i + 1], '(')) found.push({ at: i, args: callArguments(code, i + 1) });
  });
  return found;
}

/** Keywords that start a new statement: where a statement without `;` ends, for the rules that read one whole. */
const STATEMENT_START = [
  'ALTER',
  'BEGIN',
  'CLOSE',
  'COMMIT',
  'CREATE',
  'DECLARE',
  'DELETE',
  'DROP',
  'END',
  'EXEC',
  'EXECUTE',
  'IF',
  'INSERT',
  'OPEN',
  'PRINT',
  'RAISERROR',
  'RETURN',
  'ROLLBACK',
  'SELECT',
  'SET',
  'THROW',
  'UPDATE',
  'WHILE',
];

/** The tokens of the statement starting at `from`, up to its `;` or the next statement's first keyword. */
function statementTokens(code: SqlToken[], from: number): SqlToken[] {
  let end = from + 1;
  while (end < code.length && !isPunct(code[end], ';') && !isWord(code[end], ...STATEMENT_START)) end++;
  return code.slice(from, end);
}

// ---------------------------------------------------------------------------------------------
// The rules.

const AES = ['AES_128', 'AES_192', 'AES_256'];

/**
 * 1. Every CREATE SYMMETRIC KEY is protected by a certificate only (so it opens through our
 * hierarchy, never with a password that bypasses it) and uses AES (the grammar also accepts
 * DES, RC4, TRIPLE_DES...).
 */
export function symmetricKeyRules(sql: string): string[] {
  const code = codeTokens(sql);
  const violations: string[] = [];
  code.forEach((t, i) => {
    if (!(isWord(t, 'CREATE') && isWord(code[i + 1], 'SYMMETRIC') && isWord(code[i + 2], 'KEY'))) return;
    const statement = statementTokens(code, i);
    const name = statementAt(sql, t.start);
    const algorithmAt = statement.findIndex((s) => isWord(s, 'ALGORITHM'));
    const algorithm = algorithmAt < 0 ? undefined : statement[algorithmAt + 2];
    if (!algorithm || !isWord(algorithm, ...AES)) {
      violations.push(
        `CREATE SYMMETRIC KEY must use ALGORITHM = AES_128|AES_192|AES_256, ` +
          `not ${algorithm ? algorithm.text : 'none'}: ${name}`,
      );
    }
    // The mechanisms follow `ENCRYPTION BY`, comma-separated: each must be a certificate.
    const byAt = statement.findIndex((s, j) => isWord(s, 'ENCRYPTION') && isWord(statement[j + 1], 'BY'));
    const mechanisms: (SqlToken | undefined)[] = [];
    if (byAt >= 0) {
      mechanisms.push(statement[byAt + 2]);
      for (let j = byAt + 2; j < statement.length; j++)
        if (isPunct(statement[j], ',')) mechanisms.push(statement[j + 1]);
    }
    if (mechanisms.length === 0 || mechanisms.some((m) => !isWord(m, 'CERTIFICATE'))) {
      const found = mechanisms.map((m) => m?.text ?? 'nothing').join(', ') || 'none';
      violations.push(`CREATE SYMMETRIC KEY must be ENCRYPTION BY CERTIFICATE only (found ${found}): ${name}`);
    }
  });
  return violations;
}

/**
 * 2. ENCRYPTBYKEY takes (key_guid, cleartext) or (key_guid, cleartext, add_authenticator,
 * authenticator); DECRYPTBYKEY (cipher) or (cipher, add_authenticator, authenticator). The
 * grammar takes any argument list, and a 3-argument ENCRYPTBYKEY only fails on the server.
 */
export function encryptByKeyArity(sql: string): string[] {
  const allowed: Record<string, number[]> = { ENCRYPTBYKEY: [2, 4], DECRYPTBYKEY: [1, 3] };
  const code = codeTokens(sql);
  return calls(code, ...Object.keys(allowed)).flatMap(({ at, args }) => {
    const fn = code[at];
    const expected = allowed[fn.text.toUpperCase()];
    if (args && expected.includes(args.length)) return [];
    const got = args ? `${args.length} arguments` : 'an unclosed argument list';
    return [
      `${fn.text.toUpperCase()} takes ${expected.join(' or ')} arguments, got ${got}: ${statementAt(sql, fn.start)}`,
    ];
  });
}

const SIZED_TYPES = ['nvarchar', 'varchar', 'varbinary', 'nchar', 'char', 'binary'];

/** A type name as written: `nvarchar` or `[nvarchar]`; undefined for anything else. */
const typeName = (t: SqlToken | undefined) =>
  t && (t.kind === 'word' || t.kind === 'quoted') ? tokenValue(t).toLowerCase() : undefined;

/**
 * 3. CONVERT/CAST to a string or binary type always states its length: without one, SQL Server
 * silently uses 30 (`CONVERT(nvarchar, x)` truncates a 40-character value without an error).
 */
export function convertLengthRules(sql: string): string[] {
  const code = codeTokens(sql);
  const violations: string[] = [];
  const check = (type: SqlToken | undefined, after: SqlToken | undefined, fn: SqlToken) => {
    const name = typeName(type);
    if (name && SIZED_TYPES.includes(name) && !isPunct(after, '(')) {
      violations.push(
        `${fn.text.toUpperCase()} to ${name} needs an explicit length (n) or (max): ${statementAt(sql, fn.start)}`,
      );
    }
  };
  for (const { at, args } of calls(code, 'CONVERT', 'TRY_CONVERT')) {
    if (args?.[0]) check(args[0][0], args[0][1], code[at]);
  }
  for (const { at, args } of calls(code, 'CAST', 'TRY_CAST')) {
    const inner = args?.[0] ?? [];
    // The target type follows the last `AS` outside any nested parentheses.
    let depth = 0;
    let asAt = -1;
    inner.forEach((t, j) => {
      if (isPunct(t, '(')) depth++;
      else if (isPunct(t, ')')) depth--;
      else if (depth === 0 && isWord(t, 'AS')) asAt = j;
    });
    if (asAt >= 0) check(inner[asAt + 1], inner[asAt + 2], code[at]);
  }
  return violations;
}

/**
 * 4. `GO` is sqlcmd's batch separator, not T-SQL: a statement the engine sends must never hold a
 * line that is only `GO` (the grammar accepts it as a GO_BATCH token; the server does not). Strict
 * on purpose, even inside comments and literals: sqlcmd splits there too if the text is ever
 * printed into a script.
 */
export function noGoSent(sql: string): string[] {
  const violations: string[] = [];
  let offset = 0;
  sql.split('\n').forEach((line, i) => {
    if (GO_LINE.test(line.replace(/\r$/, '')))
      violations.push(
        `line ${i + 1} is only GO (a sqlcmd separator, never sent to the server): ${statementAt(sql, offset)}`,
      );
    offset += line.length + 1;
  });
  return violations;
}

/**
 * 5. For SQL handed to knex.raw: knex turns every `?` into a parameter (`@p0` on mssql) without
 * knowing T-SQL, so a `?` meant literally must be written `\?`. Reports every bare `?` inside a
 * string literal, a quoted identifier or a comment (knex rewrites those too, and a `?` there
 * eats a binding meant for a later placeholder). A `?` in code is a real placeholder: fine.
 */
export function noUnescapedPlaceholderInLiteral(sql: string): string[] {
  const where: Partial<Record<SqlTokenKind, string>> = {
    string: 'string literal',
    quoted: 'quoted identifier',
    comment: 'comment',
  };
  return tokenizeSql(sql).flatMap((t) => {
    const kind = where[t.kind];
    if (!kind || !/(^|[^\\])\?/.test(t.text)) return [];
    return [
      `knex rewrites the bare ? in ${kind} ${t.text.slice(0, 40)}: write \\? instead: ${statementAt(sql, t.start)}`,
    ];
  });
}

/**
 * 6. Given the statements of ONE transaction (or one script's batches) in order: ENCRYPTBYKEY
 * and DECRYPTBYKEY return NULL, without an error, when their key is not open. So every
 * ENCRYPTBYKEY(KEY_GUID(N'name'), ...) must come after OPEN SYMMETRIC KEY name (and before it is
 * closed again); an ENCRYPTBYKEY by any other key expression, and every DECRYPTBYKEY (which
 * finds its key in the cell), needs at least one open key. DECRYPTBYKEYAUTOCERT opens its own.
 * Linear order only: branches (IF ... ELSE) are read as if both run.
 */
export function openKeyBeforeUse(transactionStatements: string[]): string[] {
  const open = new Set<string>();
  const violations: string[] = [];
  // Key names compare case-insensitively, as under SQL Server's default collations.
  const key = (t: SqlToken) => tokenValue(t).toLowerCase();
  transactionStatements.forEach((sql, n) => {
    const code = codeTokens(sql);
    const report = (what: string, t: SqlToken) =>
      violations.push(`${what} in statement ${n + 1}: ${statementAt(sql, t.start)}`);
    code.forEach((t, i) => {
      const [a, b, c, d] = code.slice(i + 1, i + 5);
      if (isWord(t, 'OPEN') && isWord(a, 'SYMMETRIC') && isWord(b, 'KEY') && c) open.add(key(c));
      else if (isWord(t, 'CLOSE') && isWord(a, 'SYMMETRIC') && isWord(b, 'KEY') && c) open.delete(key(c));
      else if (isWord(t, 'CLOSE') && isWord(a, 'ALL') && isWord(b, 'SYMMETRIC') && isWord(c, 'KEYS')) open.clear();
      else if (isWord(t, 'ENCRYPTBYKEY') && isPunct(a, '(')) {
        if (isWord(b, 'KEY_GUID') && isPunct(c, '(') && d?.kind === 'string') {
          if (!open.has(key(d)))
            report(`ENCRYPTBYKEY uses key ${tokenValue(d)} while it is not open (no OPEN SYMMETRIC KEY before)`, t);
        } else if (open.size === 0) report('ENCRYPTBYKEY with no symmetric key open', t);
      } else if (isWord(t, 'DECRYPTBYKEY') && isPunct(a, '(') && open.size === 0)
        report('DECRYPTBYKEY with no symmetric key open', t);
    });
  });
  return violations;
}

/**
 * Everything one statement or batch must pass on its own: the grammar, then rules 1-5.
 * Rule 5 is about SQL *before* knex; pass `{ knex: false }` for SQL that never goes through
 * knex.raw (sqlcmd scripts, tedious execSqlBatch, or what knex already rewrote), where a `?`
 * in a literal is just a question mark.
 */
export function allStatementRules(sql: string, { knex = true }: { knex?: boolean } = {}): string[] {
  return [
    ...parseTsql(sql).map((error) => `T-SQL syntax error at ${error}`),
    ...symmetricKeyRules(sql),
    ...encryptByKeyArity(sql),
    ...convertLengthRules(sql),
    ...noGoSent(sql),
    ...(knex ? noUnescapedPlaceholderInLiteral(sql) : []),
  ];
}

// ---------------------------------------------------------------------------------------------
// Script rules: what a printed sqlcmd script (`cellcrypt script …`) must do before, around and
// after its changes. Each takes the whole script text and returns violations naming the part
// that is missing; [] = ok. Batches are read as the server gets them: split on GO, sqlcmd's own
// `:` lines dropped, and the T-SQL of `EXEC sys.sp_executesql N'…'` read in place of the call.

/** sqlcmd's own lines (`:on error exit`, `:setvar`) are read by sqlcmd, never sent: not T-SQL. */
export const withoutSqlcmdCommands = (batch: string): string =>
  batch
    .split('\n')
    .filter((line) => !line.startsWith(':'))
    .join('\n');

/**
 * `EXEC sys.sp_executesql N'<sql>'` (a literal statement) replaced by `BEGIN <sql> END`, nested
 * ones too: what runs, where it runs, so the rules and the grammar read it as code.
 */
export function inlineDynamicSql(sql: string): string {
  const code = codeTokens(sql);
  let out = '';
  let from = 0;
  for (let i = 0; i < code.length; i++) {
    const t = code[i];
    if (!isWord(t, 'EXEC', 'EXECUTE')) continue;
    let j = i + 1;
    if (isWord(code[j], 'SYS') && isPunct(code[j + 1], '.')) j += 2;
    const literal = code[j + 1];
    if (!isWord(code[j], 'SP_EXECUTESQL') || literal?.kind !== 'string') continue;
    out += `${sql.slice(from, t.start)}BEGIN ${inlineDynamicSql(tokenValue(literal))} END`;
    from = literal.start + literal.text.length;
    i = j + 1;
  }
  return out + sql.slice(from);
}

/** Every sp_executesql literal's T-SQL, nested ones too (each must parse on its own). */
export function dynamicSqlBodies(sql: string): string[] {
  const code = codeTokens(sql);
  return code.flatMap((t, i) => {
    const literal = isWord(t, 'SP_EXECUTESQL') ? code[i + 1] : undefined;
    if (literal?.kind !== 'string') return [];
    const body = tokenValue(literal);
    return [body, ...dynamicSqlBodies(body)];
  });
}

/** A script's batches as the server runs them (dynamic SQL inlined). */
export const scriptBatches = (script: string): string[] =>
  splitGoBatches(script).map((batch) => inlineDynamicSql(withoutSqlcmdCommands(batch)));

interface Statement {
  readonly code: SqlToken[];
  /** Its text, whitespace collapsed, for messages. */
  readonly text: string;
}

/** The `;`-separated statements of a batch (a BEGIN … END block is split at its `;` too). */
function statementsOf(sql: string): Statement[] {
  const out: Statement[] = [];
  let current: SqlToken[] = [];
  const flush = () => {
    if (current.length === 0) return;
    const first = current[0];
    const last = current[current.length - 1];
    const text = sql.slice(first.start, last.start + last.text.length).replace(/\s+/g, ' ');
    out.push({ code: current, text: text.slice(0, 100) });
    current = [];
  };
  for (const t of codeTokens(sql)) {
    if (isPunct(t, ';')) flush();
    else current.push(t);
  }
  flush();
  return out;
}

/** Where `pattern` (words case-insensitive; `'…'` a string's value; `[…]` a quoted name's value) starts. */
function findSequence(code: SqlToken[], pattern: readonly string[], from = 0): number {
  const matches = (t: SqlToken | undefined, p: string) => {
    if (!t) return false;
    if (p.startsWith("'")) return t.kind === 'string' && tokenValue(t) === p.slice(1, -1);
    if (p.startsWith('[') && p.length > 1) return t.kind === 'quoted' && tokenValue(t) === p.slice(1, -1);
    if (/^\W$/.test(p)) return isPunct(t, p);
    return t.kind === 'word' && t.text.toUpperCase() === p.toUpperCase();
  };
  for (let i = from; i + pattern.length <= code.length; i++)
    if (pattern.every((p, k) => matches(code[i + k], p))) return i;
  return -1;
}

const has = (code: SqlToken[], ...pattern: string[]) => findSequence(code, pattern) >= 0;

const CHANGE_WORDS = ['CREATE', 'ALTER', 'DROP', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'TRUNCATE', 'GRANT', 'DENY'];

/** Is this statement a change of the database (a write to a table variable is not; BEGIN TRANSACTION is)? */
function isChange(statement: Statement): boolean {
  const code = statement.code;
  if (has(code, 'BEGIN', 'TRANSACTION') || has(code, 'BEGIN', 'TRAN') || has(code, 'sp_rename')) return true;
  const found = code.some((t, i) => {
    if (!isWord(t, ...CHANGE_WORDS)) return false;
    if (isWord(t, 'DELETE') && isWord(code[i + 1], 'FROM')) return !code[i + 2]?.text.startsWith('@');
    if (isWord(t, 'INSERT') && isWord(code[i + 1], 'INTO')) return !code[i + 2]?.text.startsWith('@');
    if (isWord(t, 'UPDATE')) return !code[i + 1]?.text.startsWith('@');
    return true;
  });
  if (found) return true;
  // EXEC (N'…'): dynamic SQL that is not inlined (it may CREATE a module, which must start a batch).
  return code.some(
    (t, i) =>
      isWord(t, 'EXEC', 'EXECUTE') &&
      isPunct(code[i + 1], '(') &&
      code[i + 2]?.kind === 'string' &&
      statementsOf(tokenValue(code[i + 2])).some(isChange),
  );
}

/** The first change of the script: its batch (0-based) and statement. */
function firstChange(batches: string[]): { batch: number; statement: Statement } | undefined {
  for (let batch = 0; batch < batches.length; batch++) {
    const statement = statementsOf(batches[batch]).find(isChange);
    if (statement) return { batch, statement };
  }
  return undefined;
}

const describeChange = (change: ReturnType<typeof firstChange>) =>
  change ? `batch ${change.batch + 1}: ${change.statement.text}` : 'none';

/** The batches before the first change (all, if none). */
function beforeFirstChange(batches: string[]): string[] {
  const change = firstChange(batches);
  return batches.slice(0, change ? change.batch : batches.length);
}

/**
 * 7. The guard batch (DL5): its own batch (not batch 1, which holds `:on error exit` and does not
 * parse without SQLCMD mode), before any change, testing every sqlcmd variable the script uses
 * with `IF N'$(V)' = N'$' + N'(V)'`, and stopping with RAISERROR and SET NOEXEC ON.
 */
export function guardBatchRule(script: string): string[] {
  const raw = splitGoBatches(script);
  const batches = scriptBatches(script);
  const variables = [...new Set([...script.matchAll(/\$\((\w+)\)/g)].map((m) => m[1]))];
  const tests = (sql: string, name: string) =>
    has(codeTokens(sql), 'IF', `'$(${name})'`, '=', "'$'", '+', `'(${name})'`);
  const at = batches.findIndex((sql) => variables.some((name) => tests(sql, name)));
  if (variables.length === 0) return [];
  if (at < 0)
    return [`no guard batch: nothing tests that the sqlcmd variables were substituted (${variables.join(', ')})`];
  const violations: string[] = [];
  if (raw[at].split('\n').some((line) => line.startsWith(':')))
    violations.push(
      `the guard shares batch ${at + 1} with a sqlcmd command: without SQLCMD mode that batch never runs`,
    );
  for (const name of variables)
    if (!tests(batches[at], name))
      violations.push(`the guard batch does not test $(${name}) (IF N'$(${name})' = N'$' + N'(${name})')`);
  const code = codeTokens(batches[at]);
  if (!has(code, 'RAISERROR', '(')) violations.push('the guard batch does not RAISERROR');
  if (!has(code, 'SET', 'NOEXEC', 'ON'))
    violations.push('the guard batch does not SET NOEXEC ON (later batches would run)');
  const change = firstChange(batches);
  if (change && change.batch <= at) violations.push(`a change comes before the guard: ${describeChange(change)}`);
  return violations;
}

export const REQUIRED_SESSION_OPTIONS: readonly (readonly [string, 'ON' | 'OFF'])[] = [
  ['QUOTED_IDENTIFIER', 'ON'],
  ['ANSI_NULLS', 'ON'],
  ['ANSI_PADDING', 'ON'],
  ['ANSI_WARNINGS', 'ON'],
  ['ARITHABORT', 'ON'],
  ['CONCAT_NULL_YIELDS_NULL', 'ON'],
  ['NUMERIC_ROUNDABORT', 'OFF'],
];

/**
 * 8. BR4: the SET options that writes to tables with filtered indexes, indexed views or indexed
 * computed columns require, in a batch before the first change (QUOTED_IDENTIFIER applies from
 * the next batch parsed), and never set the other way afterwards.
 */
export function sessionOptionsRule(script: string): string[] {
  const batches = scriptBatches(script);
  const before = beforeFirstChange(batches).map(codeTokens);
  const all = batches.map(codeTokens);
  return REQUIRED_SESSION_OPTIONS.flatMap(([option, value]) => {
    const other = value === 'ON' ? 'OFF' : 'ON';
    const violations: string[] = [];
    if (!before.some((code) => has(code, 'SET', option, value)))
      violations.push(
        `SET ${option} ${value} is missing before the first change (${describeChange(firstChange(batches))})`,
      );
    if (all.some((code) => has(code, 'SET', option, other))) violations.push(`SET ${option} ${other} turns it back`);
    return violations;
  });
}

/**
 * 9. CO4: before the first change, the script stops on SQL Server before 2017
 * (SERVERPROPERTY('ProductMajorVersion') < 14) and with trace flag 4631 on (DBCC TRACESTATUS(4631, -1)).
 */
export function serverChecksRule(script: string): string[] {
  const before = beforeFirstChange(scriptBatches(script));
  const violations: string[] = [];
  const version = before.some((sql) =>
    statementsOf(sql).some(
      (s) =>
        has(s.code, 'SERVERPROPERTY', '(', "'ProductMajorVersion'", ')') &&
        has(s.code, '<', '14') &&
        has(s.code, 'THROW'),
    ),
  );
  if (!version)
    violations.push(
      "no SQL Server version check (IF SERVERPROPERTY('ProductMajorVersion') < 14 THROW) before the first change",
    );
  const traceFlag = before.some((sql) => {
    const statements = statementsOf(sql);
    const status = statements.findIndex((s) =>
      s.code.some(
        (t) =>
          (t.kind === 'string' && /DBCC\s+TRACESTATUS\s*\(\s*4631\s*,\s*-1\s*\)/i.test(tokenValue(t))) ||
          findSequence(s.code, ['DBCC', 'TRACESTATUS', '(', '4631', ',', '-', '1', ')']) >= 0,
      ),
    );
    return (
      status >= 0 &&
      statements.slice(status + 1).some((s) => has(s.code, 'IF') && has(s.code, '4631') && has(s.code, 'THROW'))
    );
  });
  if (!traceFlag)
    violations.push(
      'no trace flag 4631 check (DBCC TRACESTATUS(4631, -1), then IF … 4631 … THROW) before the first change',
    );
  return violations;
}

/** `@Name = value` pairs of an EXEC's arguments, names lower-cased, values as tokenValue. */
function namedArguments(code: SqlToken[], from: number): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = from; i + 2 < code.length; i++)
    if (code[i].text.startsWith('@') && isPunct(code[i + 1], '='))
      args.set(code[i].text.toLowerCase(), tokenValue(code[i + 2]));
  return args;
}

/**
 * 10. The org lock: before the first change, `EXEC @r = sys.sp_getapplock` on `resource`, exclusive,
 * owned by the session, not waiting, its result checked (IF @r < 0 THROW); released
 * (sp_releaseapplock, same resource and owner) after the last COMMIT.
 */
export function orgLockRule(script: string, resource: string): string[] {
  const batches = scriptBatches(script);
  const violations: string[] = [];
  const taken = beforeFirstChange(batches).some((sql) => {
    const statements = statementsOf(sql);
    const at = statements.findIndex((s) => has(s.code, 'sp_getapplock'));
    if (at < 0) return false;
    const code = statements[at].code;
    // EXEC @result = sys.sp_getapplock …
    const result = isWord(code[0], 'EXEC', 'EXECUTE') && isPunct(code[2], '=') ? code[1] : undefined;
    const args = namedArguments(code, 0);
    const wanted: [string, string][] = [
      ['@resource', resource],
      ['@lockmode', 'Exclusive'],
      ['@lockowner', 'Session'],
      ['@locktimeout', '0'],
    ];
    for (const [name, value] of wanted)
      if (args.get(name) !== value)
        violations.push(`sp_getapplock: ${name} is ${args.get(name) ?? 'not given'}, not ${value}`);
    const variable = result?.text.startsWith('@') ? result.text : undefined;
    const checked =
      variable !== undefined &&
      statements
        .slice(at + 1)
        .some((s) => isWord(s.code[0], 'IF') && s.code[1]?.text === variable && has(s.code, 'THROW'));
    if (!checked) violations.push("sp_getapplock's result is not checked (IF @result < 0 THROW)");
    return true;
  });
  if (!taken) violations.push(`no sp_getapplock on ${resource} before the first change`);
  let commit = -1;
  batches.forEach((sql, n) => {
    if (has(codeTokens(sql), 'COMMIT')) commit = n;
  });
  const released = batches.slice(Math.max(commit, 0)).some((sql) =>
    statementsOf(sql).some((s) => {
      if (!has(s.code, 'sp_releaseapplock')) return false;
      const args = namedArguments(s.code, 0);
      return args.get('@resource') === resource && args.get('@lockowner') === 'Session';
    }),
  );
  if (!released) violations.push(`the lock on ${resource} is not released (sp_releaseapplock) after the COMMIT`);
  return violations;
}

/**
 * 11. DL4: in the first transaction batch, before its first change after BEGIN TRANSACTION, every
 * given table is locked until the commit: `FROM [T] WITH (TABLOCKX, HOLDLOCK)`.
 */
export function tableLocksRule(script: string, tables: readonly string[]): string[] {
  const batches = scriptBatches(script);
  const at = batches.findIndex((sql) => has(codeTokens(sql), 'BEGIN', 'TRANSACTION'));
  if (at < 0) return ['no BEGIN TRANSACTION: no transaction holds the table locks'];
  const statements = statementsOf(batches[at]);
  const begin = statements.findIndex((s) => has(s.code, 'BEGIN', 'TRANSACTION'));
  const change = statements.findIndex((s, i) => i > begin && isChange(s));
  const window = statements.slice(begin + 1, change < 0 ? statements.length : change);
  return [...new Set(tables)].flatMap((table) => {
    const locked = window.some((s) => {
      const from = findSequence(s.code, ['FROM', `[${table}]`, 'WITH', '(']);
      if (from < 0) return false;
      const close = s.code.findIndex((t, i) => i > from + 3 && isPunct(t, ')'));
      const hints = s.code.slice(from + 4, close).map((t) => t.text.toUpperCase());
      return hints.includes('TABLOCKX') && hints.includes('HOLDLOCK');
    });
    return locked
      ? []
      : [
          `[${table}] is not locked (WITH (TABLOCKX, HOLDLOCK)) in the first transaction batch ` +
            `(batch ${at + 1}) before its changes`,
        ];
  });
}

export interface ScriptColumnRef {
  readonly table: string;
  readonly column: string;
}

const TEXT_TYPE_LIST = ['(', "'nvarchar'", ',', "'nchar'", ',', "'varchar'", ',', "'char'", ')'];

/**
 * 12. DL1: every statement that adds a column's shadow, encrypts into it or drops the column runs
 * only after, in its own batch, the column's real type was read from sys.columns
 * (TYPE_NAME(system_type_id) … OBJECT_ID(N'[T]') … name = N'C') and tested against the text types.
 */
export function typeGuardRule(script: string, columns: readonly ScriptColumnRef[]): string[] {
  const batches = scriptBatches(script);
  return columns.flatMap(({ table, column }) => {
    const quotedTable = `[${table.replace(/]/g, ']]')}]`;
    const shadow = `${column}__cellcrypt`;
    const changes: [string, string[]][] = [
      ['ALTER TABLE … ADD of its shadow', ['ALTER', 'TABLE', `[${table}]`, 'ADD', `[${shadow}]`]],
      ['ENCRYPTBYKEY into its shadow', ['SET', `[${shadow}]`, '=', 'ENCRYPTBYKEY']],
      ['DROP COLUMN', ['ALTER', 'TABLE', `[${table}]`, 'DROP', 'COLUMN', `[${column}]`]],
    ];
    return batches.flatMap((sql, n) => {
      const statements = statementsOf(sql);
      return changes.flatMap(([what, pattern]) => {
        // The statement names the table too (two tables may have a column of the same name).
        const at = statements.findIndex((s) => findSequence(s.code, pattern) >= 0 && has(s.code, `[${table}]`));
        if (at < 0) return [];
        const before = statements.slice(0, at + 1);
        const read = before.findIndex(
          (s) =>
            has(s.code, 'TYPE_NAME', '(', 'system_type_id', ')') &&
            has(s.code, 'sys', '.', 'columns') &&
            has(s.code, 'OBJECT_ID', '(', `'${quotedTable}'`) &&
            has(s.code, 'name', '=', `'${column}'`),
        );
        const tested = read >= 0 && before.slice(read).some((s) => has(s.code, 'IN', ...TEXT_TYPE_LIST));
        return tested
          ? []
          : [
              `${table}.${column}: ${what} in batch ${n + 1} without a type guard before it ` +
                '(TYPE_NAME(system_type_id) from sys.columns IN nvarchar, nchar, varchar, char)',
            ];
      });
    });
  });
}

/**
 * 13. DL4 (change-key): in the batch that drops the old key, before DROP SYMMETRIC KEY and with no
 * change in between, every column's cells still on it are counted (SUBSTRING([C], 1, 16) … FROM
 * [T]) with a THROW; CO2: KEY_GUID of the dropped key is never read after the drop (it is NULL).
 */
export function recountBeforeDropRule(script: string, columns: readonly ScriptColumnRef[], oldKey: string): string[] {
  const batches = scriptBatches(script);
  const at = batches.findIndex((sql) => has(codeTokens(sql), 'DROP', 'SYMMETRIC', 'KEY', `[${oldKey}]`));
  if (at < 0) return [`no DROP SYMMETRIC KEY [${oldKey}]`];
  const statements = statementsOf(batches[at]);
  const drop = statements.findIndex((s) => has(s.code, 'DROP', 'SYMMETRIC', 'KEY', `[${oldKey}]`));
  const violations: string[] = [];
  const recounts: number[] = [];
  for (const { table, column } of columns) {
    const found = statements.findIndex(
      (s, i) =>
        i < drop &&
        has(s.code, 'SUBSTRING', '(', `[${column}]`, ',', '1', ',', '16', ')', '=') &&
        has(s.code, 'FROM', `[${table}]`) &&
        has(s.code, 'THROW'),
    );
    if (found < 0)
      violations.push(
        `${table}.${column}: its cells still on ${oldKey} are not re-counted (SUBSTRING(C, 1, 16) = GUID, THROW) ` +
          `before DROP SYMMETRIC KEY [${oldKey}]`,
      );
    else recounts.push(found);
  }
  const first = recounts.length ? Math.min(...recounts) : drop;
  const between = statements.slice(first, drop).find(isChange);
  if (between) violations.push(`a change between the re-count and DROP SYMMETRIC KEY [${oldKey}]: ${between.text}`);
  const later = [batches[at].slice(statementsOf(batches[at])[drop].code[0].start), ...batches.slice(at + 1)];
  if (later.some((sql) => has(codeTokens(sql), 'KEY_GUID', '(', `'${oldKey}'`)))
    violations.push(`KEY_GUID(N'${oldKey}') is read after DROP SYMMETRIC KEY [${oldKey}], where it is NULL`);
  return violations;
}

/**
 * 14. DL3: the statement right after the first OPEN SYMMETRIC KEY [k] of the key the script creates
 * is the known-answer probe: IF DECRYPTBYKEY(0x<blob>) IS NULL OR DATALENGTH(…) <> n OR … <> 0x<bytes>
 * THROW (with the blob and bytes given, those); nothing encrypts under k before it.
 */
export function probeAfterOpenRule(
  script: string,
  keyName: string,
  probe?: { cell: string; plaintext: string },
): string[] {
  const batches = scriptBatches(script);
  const create = batches.findIndex((sql) => has(codeTokens(sql), 'CREATE', 'SYMMETRIC', 'KEY', `[${keyName}]`));
  const opened = batches.findIndex(
    (sql, n) => n >= create && has(codeTokens(sql), 'OPEN', 'SYMMETRIC', 'KEY', `[${keyName}]`),
  );
  if (create < 0 || opened < 0) return [`no CREATE and OPEN SYMMETRIC KEY [${keyName}]`];
  const statements = statementsOf(batches[opened]);
  const open = statements.findIndex((s) => has(s.code, 'OPEN', 'SYMMETRIC', 'KEY', `[${keyName}]`));
  const next = statements[open + 1];
  const violations: string[] = [];
  const blob = next && findSequence(next.code, ['DECRYPTBYKEY', '(']);
  const cell = next && blob !== undefined && blob >= 0 ? next.code[blob + 2] : undefined;
  const isProbe =
    next !== undefined &&
    isWord(next.code[0], 'IF') &&
    cell !== undefined &&
    /^0x[0-9a-f]+$/i.test(cell.text) &&
    isPunct(next.code[blob! + 3], ')') &&
    has(next.code, 'IS', 'NULL') &&
    has(next.code, 'DATALENGTH') &&
    next.code.some(
      (t, i) => isPunct(t, '<') && isPunct(next.code[i + 1], '>') && /^0x/i.test(next.code[i + 2]?.text ?? ''),
    ) &&
    has(next.code, 'THROW');
  if (!isProbe)
    violations.push(
      `no known-answer probe right after OPEN SYMMETRIC KEY [${keyName}] (IF DECRYPTBYKEY(0x…) IS NULL OR ` +
        `DATALENGTH(…) <> n OR … <> 0x… THROW): ${next?.text ?? 'nothing follows'}`,
    );
  else if (probe) {
    if (cell!.text.slice(2).toLowerCase() !== probe.cell.toLowerCase())
      violations.push('the probe decrypts another blob');
    if (!next!.code.some((t) => t.text.toLowerCase() === `0x${probe.plaintext.toLowerCase()}`))
      violations.push('the probe compares with other bytes');
  }
  const before = [...batches.slice(0, opened), batches[opened].slice(0, next ? next.code[0].start : undefined)];
  if (before.some((sql) => has(codeTokens(sql), 'ENCRYPTBYKEY', '(', 'KEY_GUID', '(', `'${keyName}'`)))
    violations.push(`ENCRYPTBYKEY under ${keyName} before its probe`);
  return violations;
}
