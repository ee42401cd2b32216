import { describe, expect, it } from 'vitest';
import { parse } from '../../src/compiler/parse.js';
import { diagnose, QUICKSTART, render } from '../helpers/compile.js';

describe('parser', () => {
  it('accepts the design-card lines verbatim', () => {
    const src = 'model rn18q1 = resnet18 quant input 1bit optimizer sgd\ntransfer pgd eps=8/255 from * to *\nensemble trend k=3\n';
    // Syntactically valid on their own (semantically k=3 needs three models, as in the quickstart).
    const parsed = parse(src, 'x.trend');
    expect(parsed.diagnostics).toEqual([]);
    expect(parsed.program.statements.map((s) => s.kind)).toEqual(['model', 'transfer', 'ensemble']);
    expect(diagnose(src).map((d) => d.message)).toEqual(['k=3 but 1 model is available to choose from']);
  });

  it('accepts the complete quickstart file', () => {
    expect(diagnose(QUICKSTART)).toEqual([]);
    const p = parse(QUICKSTART, 'q.trend').program;
    expect(p.statements).toHaveLength(12);
    expect(p.comments.map((c) => c.text)).toEqual(['# TREND at CPU scale']);
  });

  it('reads numbers exactly: integers, decimals, exponents, ratios, ranges and lists', () => {
    const p = parse('transfer pgd eps=[8/255, 0.03, 5e-4, 0.01..0.03 by 0.01] from * to *\nmodel m = cnn seed 1..10 lr=-0.5', 'x').program;
    const t = p.statements[0]!;
    if (t.kind !== 'transfer') throw new Error();
    const v = t.attacks[0]!.params[0]!.value;
    expect(v.kind).toBe('list');
    if (v.kind !== 'list') throw new Error();
    expect(v.items.map((i) => (i.kind === 'number' ? i.value.toString() : i.kind))).toEqual(['8/255', '3/100', '1/2000', 'range']);
    const m = p.statements[1]!;
    if (m.kind !== 'model') throw new Error();
    expect(m.params.find((x) => x.key === 'seed')!.value.kind).toBe('range');
    const lr = m.params.find((x) => x.key === 'lr')!.value;
    expect(lr.kind === 'number' && lr.value.toString()).toBe('-1/2');
  });

  it('joins indented lines to the statement above', () => {
    const p = parse('model m = cnn\n    optimizer adam\n    seed 3\nmodel n = cnn\n', 'x').program;
    expect(p.statements).toHaveLength(2);
    const m = p.statements[0]!;
    expect(m.kind === 'model' && m.params.map((x) => x.key)).toEqual(['optimizer', 'seed']);
  });

  it('reports file:line:col, the source line with a caret, what was expected and a suggestion', () => {
    const out = render('model y = cnn optimzer sgd\n');
    expect(out).toContain('test.trend:1:15: error[E005]:');
    expect(out).toContain('  1 | model y = cnn optimzer sgd');
    expect(out).toContain('    |               ^^^^^^^^');
    expect(out).toMatch(/expected one of: .*optimizer/);
    expect(out).toContain("did you mean 'optimizer'?");
  });

  it('suggests the statement keyword for a misspelt statement', () => {
    const d = diagnose('modle x = cnn\n');
    expect(d).toHaveLength(1);
    expect(d[0]!.message).toBe("unknown statement 'modle'");
    expect(d[0]!.suggestion).toBe("'model'");
  });

  it('recovers: one run reports all independent errors', () => {
    const src = ['dataset mnist', 'modle a = cnn', 'model b = cnn optimzer sgd', 'model c = cnn', 'transfer pgd eps=8/255 from * to', 'model d = ', ''].join(
      '\n',
    );
    const d = diagnose(src);
    expect(d.map((x) => x.loc.line)).toEqual([2, 3, 5, 6]);
  });

  it('reports unterminated strings, bad characters and NUL bytes without throwing', () => {
    expect(diagnose('dataset cifar10 path="abc\n')[0]!.message).toBe('unterminated string');
    expect(diagnose('model a = cnn @@\n')[0]!.message).toMatch(/unexpected character/);
    expect(diagnose('model a\u0000 = cnn')[0]!.message).toMatch(/not text/);
  });

  it('parses an empty file as an empty program, which the check says declares nothing', () => {
    expect(parse('', 'x').diagnostics).toEqual([]);
    expect(parse('\n\n# only a comment\n', 'x').program.statements).toEqual([]);
    for (const src of ['', '\n\n# only a comment\n', 'train epochs=3\nreport title="t"\n']) {
      const d = diagnose(src);
      expect(d).toHaveLength(1);
      expect(d[0]!).toMatchObject({ severity: 'error', loc: { line: 1, col: 1 } });
      expect(d[0]!.message).toMatch(/^this pipeline declares nothing to compute/);
    }
    expect(diagnose('dataset mnist\n')).toEqual([]);
    // Not added on top of syntax errors (statements that failed to parse are missing).
    expect(diagnose('modle x = cnn\n').map((x) => x.message)).toEqual(["unknown statement 'modle'"]);
  });

  it('explains that indented statements continue the previous one', () => {
    const d = diagnose('model a = cnn\n  model b = cnn\n');
    expect(d[0]!.note).toMatch(/continues the statement above/);
  });
});

describe('the CST visitor', () => {
  it('has a visit method for every grammar rule, checked when it is built', async () => {
    const { astBuilderClass } = await import('../../src/compiler/cst-to-ast.js');
    const { parserInstance } = await import('../../grammar/parser.js');
    const Builder = astBuilderClass();
    expect(() => new Builder('f.trend')).not.toThrow();
    const rules = parserInstance().getGAstProductions();
    const ruleNames = [...(rules instanceof Map ? rules.keys() : Object.keys(rules))];
    expect(ruleNames.length).toBeGreaterThan(25);
    for (const rule of ruleNames) expect(typeof (Builder.prototype as unknown as Record<string, unknown>)[rule], rule).toBe('function');
    // A rule without a visit method fails at start-up instead of being dropped silently.
    class Missing extends (Builder as unknown as new (file: string) => object) {}
    Object.defineProperty(Missing.prototype, 'selItem', { value: undefined });
    expect(() => new Missing('f.trend')).toThrow(/selItem/);
  });
});

describe('the grammar itself', () => {
  it('passes every Chevrotain definition check (the CLI skips them at start-up)', async () => {
    const { makeLexer } = await import('../../grammar/lexer.js');
    const { TrendParser } = await import('../../grammar/parser.js');
    const lexer = makeLexer(true);
    expect(lexer.lexerDefinitionErrors).toEqual([]);
    // With validations on, performSelfAnalysis throws on ambiguity, left recursion and the like.
    const parser = new TrendParser({ validate: true });
    expect((parser as unknown as { definitionErrors: unknown[] }).definitionErrors).toEqual([]);
    // The validating and the start-up lexer tokenize alike.
    const text = 'model a = cnn width=1/4 quant input 2bit\nevaluate a against pgd eps=8/255 union\n';
    const strip = (ts: Array<{ image: string; tokenType: { name: string } }>) => ts.map((t) => [t.tokenType.name, t.image]);
    const { TrendLexer } = await import('../../grammar/lexer.js');
    expect(strip(lexer.tokenize(text).tokens)).toEqual(strip(TrendLexer.tokenize(text).tokens));
  });
});
