/**
 * The lexer's tokens state their start characters and whether they can span a line break, so that
 * Chevrotain need not derive both from the regular expressions at every start-up. A wrong hint
 * would drop a token silently (the lexer would never try a pattern at a character missing from its
 * hint) or miscount lines. These tests rebuild every token from its pattern alone, with no hints,
 * in Chevrotain's safe mode (no first-character dispatch at all, lines found by scanning each
 * image) and require both lexers to produce the same tokens, positions and errors.
 */
import type { ILexingError, IToken, TokenType } from 'chevrotain';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createToken, Lexer } from '../../grammar/chevrotain.js';
import { allTokens, TrendLexer } from '../../grammar/lexer.js';

/** The same token set, from the patterns alone: no start hints, no stated line breaks. */
function unhinted(tokens: TokenType[]): TokenType[] {
  const made = new Map<TokenType, TokenType>();
  const make = (t: TokenType): TokenType => {
    const had = made.get(t);
    if (had) return had;
    const longer = t.LONGER_ALT === undefined ? undefined : [t.LONGER_ALT].flat().map(make);
    const copy = createToken({
      name: t.name,
      pattern: t.PATTERN!,
      ...(t.GROUP !== undefined ? { group: t.GROUP } : {}),
      ...(longer ? { longer_alt: longer } : {}),
      ...(t.CATEGORIES?.length ? { categories: t.CATEGORIES.map(make) } : {}),
    });
    made.set(t, copy);
    return copy;
  };
  return tokens.map(make);
}

const reference = new Lexer(unhinted(allTokens), { positionTracking: 'full', safeMode: true });

type Seen = Array<string | number | undefined>;
const tokenView = (t: IToken): Seen => [t.tokenType.name, t.image, t.startOffset, t.startLine, t.startColumn, t.endOffset, t.endLine, t.endColumn];
const errorView = (e: ILexingError): Seen => [e.offset, e.length, e.line, e.column];

function lexBoth(text: string): void {
  const a = TrendLexer.tokenize(text);
  const b = reference.tokenize(text);
  expect(a.tokens.map(tokenView)).toEqual(b.tokens.map(tokenView));
  expect(a.groups.comments?.map(tokenView)).toEqual(b.groups.comments?.map(tokenView));
  expect(a.errors.map(errorView)).toEqual(b.errors.map(errorView));
}

describe('the lexer start hints', () => {
  it('every hinted token states its line-break behaviour and start characters', () => {
    for (const t of allTokens) {
      if (t.PATTERN === Lexer.NA) continue;
      expect(t.LINE_BREAKS, t.name).toBeTypeOf('boolean');
      expect(t.START_CHARS_HINT?.length, t.name).toBeGreaterThan(0);
    }
  });

  it('lexes the shipped pipelines like the unhinted safe-mode lexer', () => {
    const dir = join(import.meta.dirname, '..', '..', 'pipelines');
    const files = readdirSync(dir).filter((f) => f.endsWith('.trend'));
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) lexBoth(readFileSync(join(dir, f), 'utf8'));
  });

  it('lexes random text like the unhinted safe-mode lexer', () => {
    // Pieces of the language and the characters at its edges: every token's first characters,
    // line breaks of both kinds, escapes, unterminated strings and characters no token starts with.
    const piece = fc.constantFrom(
      ...'abzAZ_09.*=,/-[]"\\#\t \n\r\r\n$%é€😀'.split(''),
      'model',
      'quant',
      'by',
      'bits',
      '4bit',
      '2bits',
      '1e-3',
      '8/255',
      '..',
      'q*',
      '"s"',
      'x.1',
      'seed2',
      'trend_k3',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (parts) => lexBoth(parts.join(''))),
      { numRuns: 3000 },
    );
  });
});
