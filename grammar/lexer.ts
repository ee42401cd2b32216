/**
 * Tokens of the .trend language.
 *
 * The language is line-oriented: a statement ends at a newline, and a line that starts with
 * whitespace continues the statement above it (see `splitStatements`). Keywords are few on
 * purpose: statement heads and the words that give a statement its shape. Everything else
 * (architectures, attack names, optimizers, quantizer targets) is an identifier that the checker
 * validates, so a misspelling gets a "did you mean" instead of a bare syntax error.
 */
import type { IToken, ITokenConfig, Lexer as LexerType, TokenType } from 'chevrotain';
import { createToken, Lexer } from './chevrotain.js';

/** The characters from `a` to `z` inclusive (code units), for start hints. */
function span(a: string, z: string): string {
  let s = '';
  for (let c = a.charCodeAt(0); c <= z.charCodeAt(0); c++) s += String.fromCharCode(c);
  return s;
}
const LETTER = span('A', 'Z') + span('a', 'z') + '_';
const DIGIT = span('0', '9');

/**
 * A token with its start characters and line-break behaviour stated. Chevrotain otherwise derives
 * both by parsing every pattern's regular expression when the lexer is built (about a third of the
 * lexer's construction, on every `trendc` start). `start` must list every character a match can
 * begin with: test/compiler/lexer-hints.test.ts lexes random text with these tokens and with the
 * same patterns left to Chevrotain's safe mode, and requires the same tokens.
 */
function token(config: ITokenConfig & { start: string }): TokenType {
  const { start, ...rest } = config;
  return createToken({ line_breaks: false, ...rest, start_chars_hint: [...start] });
}

export const Identifier = token({
  name: 'Identifier',
  pattern: /[A-Za-z_][A-Za-z0-9_]*(?:\.[0-9]+)?/,
  start: LETTER,
  label: 'a name',
});

/** All keywords belong to this category, so a keyword may also be used as a parameter name. */
export const Keyword = createToken({ name: 'Keyword', pattern: Lexer.NA });

function keyword(word: string): TokenType {
  return token({
    name: word[0]!.toUpperCase() + word.slice(1),
    pattern: new RegExp(`${word}(?![A-Za-z0-9_.])`),
    start: word[0]!,
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

export const Bits = token({ name: 'Bits', pattern: /[0-9]+bits?(?![A-Za-z0-9_])/, start: DIGIT, label: 'a bit width (e.g. 4bit)' });
export const NumberLit = token({
  name: 'NumberLit',
  pattern: /[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![A-Za-z_])/,
  start: DIGIT,
  label: 'a number',
});
export const StringLit = token({ name: 'StringLit', pattern: /"(?:[^"\\\r\n]|\\.)*"/, start: '"', label: 'a string' });
/** Matched only when a string has no closing quote on its line; the parser reports it. */
export const UnterminatedString = token({ name: 'UnterminatedString', pattern: /"(?:[^"\\\r\n]|\\.)*/, start: '"' });
export const DotDot = token({ name: 'DotDot', pattern: /\.\./, start: '.', label: "'..'" });
export const Glob = token({ name: 'Glob', pattern: /[A-Za-z0-9_.]*\*[A-Za-z0-9_.*]*/, start: LETTER + DIGIT + '.*', label: 'a pattern (e.g. * or q*)' });
export const Equals = token({ name: 'Equals', pattern: /=/, start: '=', label: "'='" });
export const Comma = token({ name: 'Comma', pattern: /,/, start: ',', label: "','" });
export const Slash = token({ name: 'Slash', pattern: /\//, start: '/', label: "'/'" });
export const Minus = token({ name: 'Minus', pattern: /-/, start: '-', label: "'-'" });
export const LBracket = token({ name: 'LBracket', pattern: /\[/, start: '[', label: "'['" });
export const RBracket = token({ name: 'RBracket', pattern: /]/, start: ']', label: "']'" });
export const Newline = token({ name: 'Newline', pattern: /\r?\n/, start: '\r\n', label: 'end of line', line_breaks: true });
export const WhiteSpace = token({ name: 'WhiteSpace', pattern: /[ \t]+/, start: ' \t', group: Lexer.SKIPPED });
export const Comment = token({ name: 'Comment', pattern: /#[^\r\n]*/, start: '#', group: 'comments' });

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
