import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ratio, type MatrixSummary, type OpSummary, type PredictSummary } from '../../src/compiler/contract.js';
import { num } from '../../src/compiler/jsonsafe.js';
import { Rational } from '../../src/compiler/rational.js';
import { RunFacts } from '../../src/report/compare.js';
import type { RunNode, RunRecord } from '../../src/store/store.js';
import { ROOT } from '../helpers/cli.js';

function sources(dir: string): Array<{ file: string; text: string }> {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => {
      const path = join(e.parentPath, e.name);
      return { file: relative(ROOT, path), text: readFileSync(path, 'utf8') };
    });
}

describe('the operation contract', () => {
  it('leaves no cast of parameters or summaries in src/', () => {
    const hits = sources('src').flatMap(({ file, text }) =>
      text
        .split('\n')
        .map((line, i) => ({ line, where: `${file}:${i + 1}` }))
        .filter(({ line }) => /ctx\.params as\b|as unknown as Artifact|as Artifact\['summary'\]/.test(line))
        .map(({ where }) => where),
    );
    expect(hits).toEqual([]);
  });

  it('reads "a/b" rationals in one place', () => {
    // A rational split by hand outside the contract (ids like "train/x" are split in resolve.ts).
    const hits = sources('src')
      .filter(({ file }) => file !== join('src', 'compiler', 'contract.ts') && file !== join('src', 'cli', 'resolve.ts'))
      .filter(({ text }) => /\.split\('\/'\)/.test(text))
      .map(({ file }) => file);
    expect(hits).toEqual([]);
  });

  it('ratio reads the JSON form of exact numbers as jsonSafe writes them', () => {
    expect(ratio('8/255')).toBe(8 / 255);
    expect(ratio('3')).toBe(3);
    expect(ratio('-1/4')).toBe(-0.25);
    expect(ratio(0.5)).toBe(0.5);
    expect(() => ratio(true)).toThrow(/not a number/);
    expect(num(Rational.of(8, 255))).toBe(8 / 255);
    expect(num('16/510')).toBe(ratio('8/255'));
  });

  it('the report draws the TM-versus-eps curves with the fit module, not a copy of it', () => {
    const text = readFileSync(join(ROOT, 'src', 'report', 'sections.ts'), 'utf8');
    expect(text).toMatch(/from '\.\.\/runtime\/analysis\/fit\.js'/);
    expect(text).not.toMatch(/Math\.exp/);
  });
});

describe('run comparison on contract summaries (src/report/compare.ts)', () => {
  const node = (id: string, op: string, info: unknown, inputs: RunNode['inputs'] = {}): RunNode => ({
    id,
    key: `k-${id}`,
    op,
    status: 'ran',
    params: {},
    inputs,
    info,
    line: 1,
  });
  const run = (nodes: RunNode[]): RunRecord => ({
    id: 'r',
    pipeline: 'p.trend',
    textHash: 'h',
    source: '',
    pid: 1,
    startedAt: '2024-01-01',
    status: 'ok',
    packageVersion: '0',
    nodes,
  });

  it('names results by meaning: a classifier, its members, a TM cell by source and target', () => {
    const predict: PredictSummary = { accuracy: 0.9, correct: 90, n: 100, kind: 'ensemble', chosen: [1, 0], members: [0.8, 0.7] };
    const matrix: MatrixSummary = {
      sources: 2,
      targets: 1,
      fits: null,
      attacks: [
        { sweep: {}, tm: [[0.25, null]], generated: [[8, 0]], eligible: [[4, 0]], transferred: [[1, 0]], rowAvg: [0.25], colAvg: [0.25, null], families: [] },
      ],
    };
    const summaries = new Map<string, OpSummary<'predict'> | OpSummary<'matrix'>>([
      ['k-predict/e', predict],
      ['k-matrix/transfer1', matrix],
    ]);
    const r = run([
      node('train/a', 'train', { model: 'a' }),
      node('train/b', 'train', { model: 'b' }),
      node('predict/e', 'predict', { classifier: 'e' }, { models: ['train/a', 'train/b'] }),
      node('matrix/transfer1', 'matrix', { labels: { sources: ['a', 'b'], targets: ['e'], attacks: ['pgd'] } }),
    ]);
    const facts = new RunFacts(r, (n) => summaries.get(n.key)).facts;
    expect(facts.get('predict/e accuracy')).toMatchObject({ kind: 'accuracy', value: 0.9, n: 100 });
    // chosen[0] = 1: the first member is the second model input.
    expect(facts.get('predict/e member b accuracy')?.value).toBe(0.8);
    expect(facts.get('predict/e member a accuracy')?.value).toBe(0.7);
    expect(facts.get('matrix/transfer1 tm pgd a->e')).toMatchObject({ kind: 'tm', value: 0.25, n: 4, counts: { transferred: 1, eligible: 4 } });
    expect(facts.get('matrix/transfer1 tm pgd b->e')?.value).toBeNull();
    expect(facts.get('matrix/transfer1 colAvg pgd a')?.value).toBe(0.25);
  });
});
