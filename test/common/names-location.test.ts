import { describe, expect, it } from 'vitest';
import { tokenLoc } from '../../src/common/location.js';
import { didYouMean, globToRegExp, suggest } from '../../src/common/names.js';
import { parse } from '../../src/compiler/parse.js';

describe('common: names', () => {
  it('suggests the near miss, and nothing for an exact or a far word', () => {
    expect(didYouMean('pgdd', ['pgd', 'cw'])).toBe('pgd');
    expect(didYouMean('pgd', ['pgd'])).toBeUndefined();
    expect(didYouMean('zzzzzz', ['pgd', 'cw'])).toBeUndefined();
    expect(suggest('resnet19', ['resnet18', 'resnet34'])).toEqual({ suggestion: "'resnet18'" });
    expect(suggest('x', ['pgd'])).toEqual({});
  });

  it('matches * patterns as whole names, other characters literally', () => {
    expect(globToRegExp('q*').test('q2')).toBe(true);
    expect(globToRegExp('q*').test('aq2')).toBe(false);
    expect(globToRegExp('a.1').test('a.1')).toBe(true);
    expect(globToRegExp('a.1').test('ab1')).toBe(false);
    expect(globToRegExp('*').test('anything.at.all')).toBe(true);
  });
});

describe('common: token locations', () => {
  it('a token spans from its first to its last character, on its own line', () => {
    expect(tokenLoc('f', { startLine: 3, startColumn: 5, endLine: 3, endColumn: 9 })).toEqual({ file: 'f', line: 3, col: 5, endLine: 3, endCol: 9 });
  });

  it('an end the lexer did not record is the start (not line 0)', () => {
    expect(tokenLoc('f', { startLine: 2, startColumn: 7 })).toEqual({ file: 'f', line: 2, col: 7, endLine: 2, endCol: 7 });
  });

  it('the AST and the syntax errors agree on where a name ends', () => {
    const { program } = parse('model abc = cnn\n', 'f');
    const m = program.statements[0]!;
    expect(m.kind === 'model' && m.name.loc).toEqual({ file: 'f', line: 1, col: 7, endLine: 1, endCol: 9 });
    const { diagnostics } = parse('modle abc = cnn\n', 'f');
    expect(diagnostics[0]!.loc).toEqual({ file: 'f', line: 1, col: 1, endLine: 1, endCol: 5 });
  });
});
