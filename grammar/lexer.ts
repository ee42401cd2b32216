/**
 * Tokens of the .trend language.
 *
 * The language is line-oriented: a statement ends at a newline, and a line that starts with
 * whitespace continues the statement above it (see `splitStatements`). Keywords are few on
 * purpose: statement heads and the words that give a statement its shape. Everything else
 * (architectures, attack names, optimizers, quantizer targets) is an identifier that the checker
 * validates, so a misspelling gets a "did you mean" instead of a bare syntax error.
 */
import type { IToken, Lexer as LexerType, TokenType } from 'chevrotain';
import { createToken, Lexer } from './chevrotain.js';

export const Identifier = createToken({
  name: 'Identifier',
  pattern: /[A-Za-z_][A-Za-z0-9_]*(?:\.[0-9]+)?/,
  label: 'a name',
});

/** All keywords belong to this category, so a keyword may also be used as a parameter name. */
export const Keyword = createToken({ name: 'Keyword', pattern: Lexer.NA });

function keyword(word: string): TokenType {
  return createToken({
    name: word[0]!.toUpperCase() + word.slice(1),
    pattern: new RegExp(`${word}(?![A-Za-z0-9_.])`),
    longer_alt: Identifier,
    categories: [Keyword],
    label: `'${word}'`,
  });
}

// Statement heads.
export const Dataset = keyword('dataset');
export const Train = keyword('train');
export const Model = keyword('model');
export const Attack = keyword('attack');
export const Transfer = keyword('transfer');
export const Ensemble = keyword('ensemble');
export const Evaluate = keyword('evaluate');
export const Smooth = keyword('smooth');
export const Report = keyword('report');
export const Backend = keyword('backend');
// Clause words.
export const Quant = keyword('quant');
export const Noise = keyword('noise');
export const Optimizer = keyword('optimizer');
export const Seed = keyword('seed');
export const From = keyword('from');
export const To = keyword('to');
export const Against = keyword('against');
export const With = keyword('with');
export const Union = keyword('union');
export const Trend = keyword('trend');
export const Vote = keyword('vote');
export const Subset = keyword('subset');
export const Using = keyword('using');
export const By = keyword('by');

export const STATEMENT_KEYWORDS = [Dataset, Train, Model, Attack, Transfer, Ensemble, Evaluate, Smooth, Report, Backend];
export const CLAUSE_KEYWORDS = [Quant, Noise, Optimizer, Seed, From, To, Against, With, Union, Trend, Vote, Subset, Using, By];

export const Bits = createToken({ name: 'Bits', pattern: /[0-9]+bits?(?![A-Za-z0-9_])/, label: 'a bit width (e.g. 4bit)' });
export const NumberLit = createToken({
  name: 'NumberLit',
  pattern: /[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![A-Za-z_])/,
  label: 'a number',
});
export const StringLit = createToken({ name: 'StringLit', pattern: /"(?:[^"\\\r\n]|\\.)*"/, label: 'a string' });
/** Matched only when a string has no closing quote on its line; the parser reports it. */
export const UnterminatedString = createToken({ name: 'UnterminatedString', pattern: /"(?:[^"\\\r\n]|\\.)*/ });
export const DotDot = createToken({ name: 'DotDot', pattern: /\.\./, label: "'..'" });
export const Glob = createToken({ name: 'Glob', pattern: /[A-Za-z0-9_.]*\*[A-Za-z0-9_.*]*/, label: 'a pattern (e.g. * or q*)' });
export const Equals = createToken({ name: 'Equals', pattern: /=/, label: "'='" });
export const Comma = createToken({ name: 'Comma', pattern: /,/, label: "','" });
export const Slash = createToken({ name: 'Slash', pattern: /\//, label: "'/'" });
export const Minus = createToken({ name: 'Minus', pattern: /-/, label: "'-'" });
export const LBracket = createToken({ name: 'LBracket', pattern: /\[/, label: "'['" });
export const RBracket = createToken({ name: 'RBracket', pattern: /]/, label: "']'" });
export const Newline = createToken({ name: 'Newline', pattern: /\r?\n/, label: 'end of line', line_breaks: true });
export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t]+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: 'Comment', pattern: /#[^\r\n]*/, group: 'comments' });

export const allTokens: TokenType[] = [
  WhiteSpace,
  Newline,
  Comment,
  StringLit,
  UnterminatedString,
  Bits,
  NumberLit,
  DotDot,
  Glob,
  Keyword,
  ...STATEMENT_KEYWORDS,
  ...CLAUSE_KEYWORDS,
  Identifier,
  Equals,
  Comma,
  Slash,
  Minus,
  LBracket,
  RBracket,
];

/**
 * The lexer. Chevrotain's definition checks (unreachable patterns, conflicting tokens) cost about
 * a third of `trendc check`'s start-up, so the CLI skips them; test/compiler/parse.test.ts builds
 * the lexer and the parser with every check on and requires none to fail.
 */
export function makeLexer(validate = false): LexerType {
  return new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: true, skipValidations: !validate });
}

export const TrendLexer = makeLexer();

export interface StatementTokens {
  tokens: IToken[];
  /** True when an indented line was joined to this statement (used to explain some errors). */
  joined: boolean;
}

/**
 * Splits a token stream into statements: a newline ends a statement unless the next line starts
 * with whitespace, in which case it continues the statement (so long statements can be wrapped).
 */
export function splitStatements(tokens: IToken[]): StatementTokens[] {
  const out: StatementTokens[] = [];
  let current: IToken[] = [];
  let joined = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.tokenType !== Newline) {
      current.push(t);
      continue;
    }
    let j = i + 1;
    while (j < tokens.length && tokens[j]!.tokenType === Newline) j++;
    const next = tokens[j];
    if (next && current.length > 0 && (next.startColumn ?? 1) > 1) {
      joined = true;
      i = j - 1;
      continue;
    }
    if (current.length > 0) out.push({ tokens: current, joined });
    current = [];
    joined = false;
    i = j - 1;
  }
  if (current.length > 0) out.push({ tokens: current, joined });
  return out;
}
