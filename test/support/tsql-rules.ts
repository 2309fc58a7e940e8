/**
 * Our rules for the T-SQL cellcrypt emits that the grammar (./tsql-grammar) does not enforce:
 * a statement can be valid T-SQL and still be wrong for us (a weak cipher, a truncating CONVERT,
 * an ENCRYPTBYKEY that silently returns NULL because its key is not open).
 * Every rule is a pure function returning violations, each naming its statement; [] = ok.
 */
import { GO_LINE, parseTsql } from './tsql-grammar';

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
