// The numbers `trendc diff` compares carry the images they are a fraction of, and proportions
// their 95% Wilson interval: checked on a hand-made run against the closed form.
import { describe, expect, it } from 'vitest';
import { RunFacts } from '../../src/report/compare.js';
import type { RunNode, RunRecord } from '../../src/store/store.js';

/** The Wilson interval written out independently of src/report/stats.ts. */
function wilson95(k: number, n: number): { lo: number; hi: number } {
  const z2 = 1.959963984540054 ** 2;
  const p = k / n;
  const c = (p + z2 / (2 * n)) / (1 + z2 / n);
  const r = (Math.sqrt(z2) / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { lo: c - r, hi: c + r };
}
const close = (got: { lo: number; hi: number } | undefined, want: { lo: number; hi: number }) => {
  expect(got!.lo).toBeCloseTo(want.lo, 12);
  expect(got!.hi).toBeCloseTo(want.hi, 12);
};

const node = (id: string, op: string, info: object, inputs: Record<string, string | string[]> = {}): RunNode => ({
  id,
  key: id,
  op,
  status: 'ran',
  params: {},
  inputs,
  info,
  line: 1,
});

const nodes = [
  node('predict/a', 'predict', { classifier: 'a' }),
  node('adv/pgd/a', 'adversarial', { attack: 'pgd', source: 'a' }),
  node('robust/pgd/a', 'robust', { target: 'a', attack: 'pgd' }),
  node('robust/cw/a', 'robust', { target: 'a', attack: 'cw' }),
  node('union/evaluate1/a', 'union', { target: 'a', labels: { attacks: ['cw', 'pgd'] } }, { clean: 'predict/a', runs: ['robust/cw/a', 'robust/pgd/a'] }),
  node('matrix/transfer1', 'matrix', { labels: { sources: ['a', 'b'], targets: ['a', 'b'], attacks: ['pgd'] } }),
];
const summaries: Record<string, unknown> = {
  'predict/a': { accuracy: 0.9, correct: 900, n: 1000, kind: 'model' },
  // 160 of 200 images classified correctly; the attack fools 40 of those 160.
  'adv/pgd/a': { n: 200, attack: 'pgd', sourceCleanAccuracy: 0.8, generated: 40, successRate: 0.25, meanNorm: { linf: 0.1, l2: 1, l1: 5 } },
  'robust/pgd/a': { accuracy: 0.3, n: 200, attack: 'pgd', kind: 'model', meanNorm: { linf: 0.1, l2: 1, l1: 5 } },
  'robust/cw/a': { accuracy: 0.5, n: 100, attack: 'cw', kind: 'model', meanNorm: { linf: 0.1, l2: 1, l1: 5 } },
  'union/evaluate1/a': { union: 0.25, n: 100, clean: 0.9, perAttack: [0.5, 0.3] },
  'matrix/transfer1': {
    sources: 2,
    targets: 2,
    attacks: [
      {
        sweep: {},
        tm: [
          [1, 0.25],
          [null, 1],
        ],
        generated: [
          [8, 9],
          [0, 12],
        ],
        eligible: [
          [8, 8],
          [0, 12],
        ],
        transferred: [
          [8, 2],
          [0, 12],
        ],
        rowAvg: [0.25, null],
        colAvg: [null, 0.25],
        families: [],
      },
    ],
    fits: null,
  },
};
const run = { id: 'r', pipeline: 'p.trend', nodes } as unknown as RunRecord;
const facts = new RunFacts(run, (n) => summaries[n.id]).facts;

describe('result facts carry n and Wilson intervals', () => {
  it("a success rate is a fraction of the images the source classifies correctly, not of all the batch's", () => {
    const f = facts.get('adv/pgd/a successRate')!;
    expect(f.n).toBe(160);
    close(f.interval, wilson95(40, 160));
    expect(facts.get('adv/pgd/a sourceCleanAccuracy')!.n).toBe(200);
    close(facts.get('adv/pgd/a sourceCleanAccuracy')!.interval, wilson95(160, 200));
    // Counts and norms are not proportions: no interval.
    expect(facts.get('adv/pgd/a generated')!.interval).toBeUndefined();
    expect(facts.get('adv/pgd/a meanNorm l2')!.interval).toBeUndefined();
  });

  it("a union row's clean accuracy rests on the prediction's images, each attack's on its robust node's", () => {
    expect(facts.get('union/evaluate1/a clean')!.n).toBe(1000);
    close(facts.get('union/evaluate1/a clean')!.interval, wilson95(900, 1000));
    expect(facts.get('union/evaluate1/a perAttack pgd')!.n).toBe(200);
    close(facts.get('union/evaluate1/a perAttack pgd')!.interval, wilson95(60, 200));
    expect(facts.get('union/evaluate1/a perAttack cw')!.n).toBe(100);
    expect(facts.get('union/evaluate1/a union')!.n).toBe(100);
    close(facts.get('union/evaluate1/a union')!.interval, wilson95(25, 100));
  });

  it('TM cells: transferred of eligible; a cell with no eligible image has n = 0 and no interval', () => {
    const f = facts.get('matrix/transfer1 tm pgd b->a')!;
    expect(f.counts).toEqual({ transferred: 2, eligible: 8 });
    close(f.interval, wilson95(2, 8));
    const empty = facts.get('matrix/transfer1 tm pgd a->b')!;
    expect(empty.value).toBeNull();
    expect(empty.n).toBe(0);
    expect(empty.interval).toBeUndefined();
  });

  it('accuracies: predictions and attacks', () => {
    close(facts.get('predict/a accuracy')!.interval, wilson95(900, 1000));
    close(facts.get('robust/cw/a accuracy')!.interval, wilson95(50, 100));
  });
});
