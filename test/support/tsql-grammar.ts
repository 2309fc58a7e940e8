/**
 * Real T-SQL grammar (antlr4ts-sql's TSqlLexer/TSqlParser) as a test oracle: no SQL Server runs
 * here, so every statement cellcrypt emits is at least proven to be syntactically valid T-SQL.
 */
import { ANTLRErrorListener, CharStream, CharStreams, CommonTokenStream, Interval, Recognizer } from 'antlr4ts-sql';
import { TSqlLexer } from 'antlr4ts-sql/dist/src/grammar-output/tsql/TSqlLexer';
import { TSqlParser } from 'antlr4ts-sql/dist/src/grammar-output/tsql/TSqlParser';

/**
 * The grammar only knows UPPER-CASE keywords. Upper-casing the string itself would shift columns
 * ('ß' → 'SS') and show altered text in errors, so the lexer reads through this view instead: LA()
 * is upper-cased, everything else (positions, token text) is the original input. (antlr4ts-sql's
 * own CaseChangingStream does the same but its getText is broken: tokens print as '<843>'.)
 */
class UpperCaseCharStream implements CharStream {
  constructor(private readonly inner: CharStream) {}
  LA(i: number): number {
    const c = this.inner.LA(i);
    if (c <= 0) return c;
    const upper = String.fromCodePoint(c).toUpperCase();
    return upper.length === String.fromCodePoint(c).length ? upper.codePointAt(0)! : c;
  }
  consume(): void {
    this.inner.consume();
  }
  mark(): number {
    return this.inner.mark();
  }
  release(marker: number): void {
    this.inner.release(marker);
  }
  seek(index: number): void {
    this.inner.seek(index);
  }
  get index(): number {
    return this.inner.index;
  }
  get size(): number {
    return this.inner.size;
  }
  get sourceName(): string {
    return this.inner.sourceName;
  }
  getText(interval: Interval): string {
    return this.inner.getText(interval);
  }
}

/** antlr lists every token it expected (often ~1000 keywords): keep errors readable. */
const MAX_MESSAGE = 160;

/** Collects "line:col message" instead of printing to the console (antlr's default listener). */
class CollectingListener<T> implements ANTLRErrorListener<T> {
  readonly errors: string[] = [];
  syntaxError(_r: Recognizer<T, any>, _symbol: T | undefined, line: number, col: number, msg: string): void {
    const short = msg.length > MAX_MESSAGE ? `${msg.slice(0, MAX_MESSAGE)}…}` : msg;
    this.errors.push(`${line}:${col} ${short}`);
  }
}

/**
 * Syntax errors of one batch (no `GO` lines: split with {@link splitGoBatches} first); [] = parses.
 * Lexer errors come first. A fresh lexer/parser per call: they are stateful, and their shared
 * ATN/DFA caches (static) keep later calls fast anyway.
 *
 * Beware: a batch may start with a bare procedure call (`sp_who 1`), so a misspelt first keyword
 * (`SELEC 1`) is valid T-SQL to the grammar, as it is to SQL Server's parser.
 */
export function parseTsql(sql: string): string[] {
  const lexerErrors = new CollectingListener<number>();
  const parserErrors = new CollectingListener<any>();
  const lexer = new TSqlLexer(new UpperCaseCharStream(CharStreams.fromString(sql)));
  lexer.removeErrorListeners();
  lexer.addErrorListener(lexerErrors);
  const parser = new TSqlParser(new CommonTokenStream(lexer));
  parser.removeErrorListeners();
  parser.addErrorListener(parserErrors);
  parser.tsql_file();
  return [...lexerErrors.errors, ...parserErrors.errors];
}

/** A sqlcmd batch separator: a line holding only `GO`, optionally followed by a repeat count. */
export const GO_LINE = /^[ \t]*go(?:[ \t]+\d+)?[ \t]*$/i;

/**
 * Splits a sqlcmd script on `GO` lines, as sqlcmd does; batches that are only whitespace are
 * dropped. (Like sqlcmd, a `GO` line inside a multi-line comment or string still splits.)
 */
export function splitGoBatches(script: string): string[] {
  const batches: string[] = [];
  let current: string[] = [];
  const flush = () => {
    const batch = current.join('\n');
    if (batch.trim() !== '') batches.push(batch);
    current = [];
  };
  for (const line of script.split(/\r?\n/)) {
    if (GO_LINE.test(line)) flush();
    else current.push(line);
  }
  flush();
  return batches;
}
