/**
 * Front end: text -> tokens -> statements -> CST -> AST, with every independent error reported.
 *
 * Each statement is parsed on its own (statements end at line ends), so an error in one statement
 * never hides or garbles errors in another. Within a statement, the first error is reported with
 * what the grammar expected at that point (from Chevrotain's content assist) and a suggestion.
 */
import type { IToken, TokenType } from 'chevrotain';
import { EOF, tokenMatcher } from '../../grammar/chevrotain.js';
import {
  Comment as CommentTok,
  Identifier,
  Keyword,
  Newline,
  STATEMENT_KEYWORDS,
  splitStatements,
  TrendLexer,
  UnterminatedString,
} from '../../grammar/lexer.js';
import { parserInstance } from '../../grammar/parser.js';
import { tokenLoc } from '../common/location.js';
import type { Comment, Loc, Program, Statement } from './ast.js';
import { astBuilder, ZeroDenominator } from './cst-to-ast.js';
import { diag, didYouMean, oneOf, type Diagnostic } from './diagnostics.js';

export const MAX_ERRORS = 50;
const STATEMENT_WORDS = STATEMENT_KEYWORDS.map((t) => keywordText(t));

function keywordText(t: TokenType): string {
  return (t.LABEL ?? t.name).replace(/^'|'$/g, '');
}

export interface ParseResult {
  program: Program;
  diagnostics: Diagnostic[];
}

export function parse(text: string, file: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const program: Program = { file, statements: [], comments: [] };
  const at = (line: number, col: number, len = 1): Loc => ({ file, line, col, endLine: line, endCol: col + len - 1 });

  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const before = text.slice(0, nul);
    const line = before.split('\n').length;
    const col = nul - before.lastIndexOf('\n');
    diagnostics.push(diag('E001', 'this file is not text (it contains NUL bytes)', at(line, col), { expected: 'a UTF-8 .trend pipeline' }));
    return { program, diagnostics };
  }
  if (text.charCodeAt(0) === 0xfeff) text = ' ' + text.slice(1); // BOM: keep columns stable

  const lexed = TrendLexer.tokenize(text);
  for (const e of lexed.errors) {
    if (diagnostics.length >= MAX_ERRORS) break;
    const ch = text.slice(e.offset, e.offset + e.length);
    const shown = ch.length > 20 ? ch.slice(0, 20) + '…' : ch;
    diagnostics.push(
      diag('E002', `unexpected character${e.length > 1 ? 's' : ''} ${JSON.stringify(shown)}`, at(e.line ?? 0, e.column ?? 0, Math.min(e.length, 80)), {
        note: 'names are letters, digits and _; numbers look like 3, 0.5, 5e-4 or 8/255; comments start with #',
      }),
    );
  }
  for (const c of (lexed.groups.comments ?? []) as IToken[]) {
    program.comments.push({ text: c.image, line: c.startLine ?? 0, trailing: false });
  }

  const tokens: IToken[] = [];
  for (const t of lexed.tokens) {
    if (t.tokenType === UnterminatedString) {
      diagnostics.push(
        diag('E003', 'unterminated string', at(t.startLine ?? 0, t.startColumn ?? 0, t.image.length), { expected: 'a closing " on the same line' }),
      );
      continue;
    }
    tokens.push(t);
  }
  markTrailingComments(program.comments, tokens);

  const parser = parserInstance();
  const builder = astBuilder(file);
  const stmts = splitStatements(tokens);
  for (let index = 0; index < stmts.length; index++) {
    if (diagnostics.length >= MAX_ERRORS) break;
    const { tokens: st, joined } = stmts[index]!;
    const head = st[0]!;
    if (!STATEMENT_KEYWORDS.some((k) => tokenMatcher(head, k))) {
      const guess = tokenMatcher(head, Identifier) || tokenMatcher(head, Keyword) ? didYouMean(head.image, STATEMENT_WORDS) : undefined;
      diagnostics.push(
        diag('E004', `unknown statement '${head.image}'`, tokenLoc(file, head), {
          expected: `a statement: ${STATEMENT_WORDS.join(', ')}`,
          ...(guess ? { suggestion: `'${guess}'` } : {}),
        }),
      );
      continue;
    }
    parser.input = st;
    const cst = parser.statement();
    if (parser.errors.length > 0) {
      diagnostics.push(syntaxDiagnostic(parser.errors[0]!, st, file, joined));
      continue;
    }
    try {
      const ast: Statement | undefined = builder.statement(cst, index);
      if (ast) program.statements.push(ast);
    } catch (e) {
      if (e instanceof ZeroDenominator) diagnostics.push(diag('E006', 'division by zero in a number', e.loc));
      else if (e instanceof RangeError || e instanceof SyntaxError) diagnostics.push(diag('E007', e.message, tokenLoc(file, head)));
      else throw e;
    }
  }
  return { program, diagnostics };
}

function syntaxDiagnostic(err: { message: string; token: IToken; previousToken?: IToken }, stmt: IToken[], file: string, joined: boolean): Diagnostic {
  const t = err.token;
  const atEnd = t.tokenType === EOF || t.startLine === undefined || Number.isNaN(t.startLine);
  let loc: Loc;
  if (atEnd) {
    const last = stmt[stmt.length - 1]!;
    loc = { file, line: last.endLine ?? 0, col: (last.endColumn ?? 0) + 1, endLine: last.endLine ?? 0, endCol: (last.endColumn ?? 0) + 1 };
  } else {
    loc = tokenLoc(file, t);
  }
  // What could have come next: ask the grammar, given the tokens before the error.
  const idx = atEnd ? stmt.length : Math.max(0, stmt.indexOf(t));
  const expectedTypes = expectedNext(stmt.slice(0, idx));
  const expectedWords = expectedTypes.map((tt) => (tt.LABEL ?? tt.name).replace(/^'|'$/g, ''));
  const keywordWords = expectedTypes.filter((tt) => tt.CATEGORIES?.includes(Keyword)).map(keywordText);
  let suggestion: string | undefined;
  if (!atEnd && (tokenMatcher(t, Identifier) || tokenMatcher(t, Keyword))) {
    const guess = didYouMean(t.image, keywordWords);
    if (guess) suggestion = `'${guess}'`;
  }
  // `optimzer sgd` reads as a parameter named `optimzer` missing its '='; if the word before the
  // error is a near miss of a clause keyword valid there, blame that word instead.
  const prev = idx > 0 ? stmt[idx - 1] : undefined;
  if (prev && tokenMatcher(prev, Identifier) && expectedWords.includes('=')) {
    const before = expectedNext(stmt.slice(0, idx - 1)).filter((tt) => tt.CATEGORIES?.includes(Keyword));
    const guess = didYouMean(prev.image, before.map(keywordText));
    if (guess) {
      return diag('E005', `unexpected '${prev.image}'`, tokenLoc(file, prev), {
        expected: oneOf(pretty(before.map((tt) => (tt.LABEL ?? tt.name).replace(/^'|'$/g, '')).concat('a parameter (name=value)'))),
        suggestion: `'${guess}'`,
      });
    }
  }
  const d = diag('E005', err.message.replace(/\s+/g, ' '), loc, {
    ...(expectedWords.length ? { expected: oneOf(pretty(expectedWords)) } : {}),
    ...(suggestion ? { suggestion } : {}),
  });
  if (joined && !atEnd && STATEMENT_KEYWORDS.some((k) => tokenMatcher(t, k))) {
    d.note = 'a line that starts with whitespace continues the statement above; start new statements in column 1';
  }
  return d;
}

function pretty(words: string[]): string[] {
  const out = [...new Set(words.map((w) => (w === 'Identifier' ? 'a name' : w === 'Keyword' ? 'a parameter name' : w)))];
  return out;
}

function expectedNext(preceding: IToken[]): TokenType[] {
  try {
    const paths = parserInstance().computeContentAssist('statement', preceding);
    const seen = new Map<string, TokenType>();
    for (const p of paths) seen.set(p.nextTokenType.name, p.nextTokenType);
    return [...seen.values()];
  } catch {
    return [];
  }
}

function markTrailingComments(comments: Comment[], tokens: IToken[]): void {
  const codeLines = new Set<number>();
  for (const t of tokens) if (t.tokenType !== CommentTok && t.tokenType !== Newline) codeLines.add(t.startLine ?? 0);
  for (const c of comments) c.trailing = codeLines.has(c.line);
}
