import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fitSaturating, fitTmVersusEps, saturating } from '../../src/runtime/analysis/fit.js';
import { selectLowest, symmetric } from '../../src/runtime/analysis/select.js';
import { majorityVote, SmoothAccumulator } from '../../src/runtime/eval/votes.js';
import { transferCounts } from '../../src/runtime/ops/transfer.js';
import { unionAccuracy } from '../../src/runtime/ops/union.js';
import { rng } from '../../src/runtime/rng.js';

const i32 = (...v: number[]) => Int32Array.from(v);

describe('transferability counts (TREND definition)', () => {
  it('counts only images the source gets right, the attack flips, and the target gets right when clean', () => {
    // image:          0  1  2  3  4  5
    const y = i32(0, 1, 2, 3, 4, 5);
    const srcClean = i32(0, 1, 2, 3, 9, 5); // 4: source wrong when clean -> excluded
    const srcAdv = i32(7, 7, 7, 3, 7, 7); // 3: attack failed -> excluded
    const tgtClean = i32(0, 1, 9, 3, 4, 5); // 2: target wrong when clean -> generated but not eligible
    const tgtAdv = i32(8, 1, 8, 8, 8, 8); // 0, 5 transfer; 1 does not
    expect(transferCounts(y, srcClean, srcAdv, tgtClean, tgtAdv)).toEqual({ generated: 4, eligible: 3, transferred: 2, tm: 2 / 3 });
  });
  it('TM is null (not 0) when nothing is eligible', () => {
    expect(transferCounts(i32(0), i32(1), i32(1), i32(0), i32(1)).tm).toBeNull();
  });
});

describe('union accuracy (RAMP)', () => {
  it('an image counts only when it survives every attack', () => {
    const a = Uint8Array.from([1, 1, 0, 1]);
    const b = Uint8Array.from([1, 0, 1, 1]);
    const c = Uint8Array.from([1, 1, 1, 0]);
    expect(unionAccuracy([a, b, c])).toBe(0.25);
    expect(unionAccuracy([a])).toBe(0.75);
    expect(unionAccuracy([])).toBe(0);
  });
  it('is never above the smallest per-attack accuracy', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ min: 0, max: 1, minLength: 12, maxLength: 12 }), { minLength: 1, maxLength: 4 }), (cs) => {
        const per = cs.map((c) => c.reduce((s, v) => s + v, 0) / c.length);
        expect(unionAccuracy(cs)).toBeLessThanOrEqual(Math.min(...per) + 1e-12);
      }),
    );
  });
});

describe('majority vote with a random tie-break', () => {
  it('a strict majority wins; without one a seeded member decides', () => {
    const members = [i32(1, 1, 0, 5), i32(1, 2, 0, 6), i32(3, 1, 2, 7)];
    const out = majorityVote(members, rng(0));
    expect(Array.from(out.subarray(0, 3))).toEqual([1, 1, 0]);
    expect([5, 6, 7]).toContain(out[3]);
  });
  it('ties are broken by a draw: over many seeds, each tied member wins sometimes, and the seed fixes the result', () => {
    const members = [i32(0), i32(1), i32(2), i32(3)];
    const wins = new Set<number>();
    for (let s = 0; s < 200; s++) wins.add(majorityVote(members, rng(s))[0]!);
    expect([...wins].sort()).toEqual([0, 1, 2, 3]);
    // Two against two (k = 4) is no majority either.
    const half = [i32(0), i32(0), i32(1), i32(1)];
    const seen = new Set<number>();
    for (let s = 0; s < 100; s++) seen.add(majorityVote(half, rng(s))[0]!);
    expect([...seen].sort()).toEqual([0, 1]);
    expect(majorityVote(members, rng(7))[0]).toBe(majorityVote(members, rng(7))[0]);
  });
  it('the result is always one of the members’ predictions', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 5, maxLength: 5 }), { minLength: 1, maxLength: 5 }), fc.nat(), (ps, seed) => {
        const members = ps.map((p) => Int32Array.from(p));
        const out = majorityVote(members, rng(seed));
        out.forEach((v, i) => expect(members.map((m) => m[i])).toContain(v));
      }),
    );
  });
});

describe('smoothed votes', () => {
  const acc = () => {
    // One image, three classes, three noise draws.
    const a = new SmoothAccumulator(1, 3);
    a.add(Float32Array.from([2, 1.9, -5])); // top-1 class 0, almost tied with 1
    a.add(Float32Array.from([2, 1.9, -5]));
    a.add(Float32Array.from([0, 9, -5])); // class 1 with high confidence
    return a;
  };
  it('prediction: most top-1 votes (class 0, 2 of 3)', () => expect(acc().decide('prediction')[0]).toBe(0));
  it('soft: largest mean probability (class 1), and by mean logit (class 1: 12.8 vs 4)', () => {
    // p(class 1) = 2*0.475 + 0.9999 > p(class 0) = 2*0.525 + 0.0001 by hand.
    expect(acc().decide('soft')[0]).toBe(1);
    expect(acc().decide('soft', 'logits')[0]).toBe(1);
  });
  it('weighted: sum of 2^-rank (class 0: 1+1+0.5 = 2.5 beats class 1: 0.5+0.5+1 = 2)', () => expect(acc().decide('weighted')[0]).toBe(0));
  it('a single draw agrees with the argmax under every rule', () => {
    fc.assert(
      // Distinct logits (a tie would let the rules break it differently).
      fc.property(
        fc.uniqueArray(fc.integer({ min: -100, max: 100 }), { minLength: 4, maxLength: 4 }).map((v) => v.map((u) => u / 10)),
        (row) => {
          const a = new SmoothAccumulator(1, 4);
          a.add(Float32Array.from(row));
          const arg = row.indexOf(Math.max(...row));
          for (const v of ['prediction', 'soft', 'weighted'] as const) expect(a.decide(v)[0]).toBe(arg);
        },
      ),
    );
  });
});

describe('TM versus eps fits', () => {
  it('recover a and b of a noiseless a(1 - exp(-b eps))', () => {
    const eps = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3];
    for (const [a, b] of [
      [120, 8],
      [40, 30],
      [500, 2],
    ] as const) {
      const f = fitSaturating(
        eps,
        eps.map((e) => a * (1 - Math.exp(-b * e))),
      );
      expect(f.a).toBeCloseTo(a, 2);
      expect(f.b).toBeCloseTo(b, 3);
      expect(f.rmse).toBeLessThan(1e-6 * a);
    }
  });
  it('the TM curve is the ratio of the two fits', () => {
    const eps = [0.05, 0.1, 0.2, 0.3];
    const gen = eps.map((e) => 100 * (1 - Math.exp(-10 * e)));
    const tr = eps.map((e) => 60 * (1 - Math.exp(-10 * e)));
    const r = fitTmVersusEps(
      eps,
      tr,
      gen,
      eps.map(() => 0.6),
    );
    expect(saturating(r.transferred, 0.15) / saturating(r.generated, 0.15)).toBeCloseTo(0.6, 6);
    expect(r.rmse).toBeLessThan(1e-6);
  });
});

describe('TREND selection by lowest pairwise transferability', () => {
  it('symmetrises TM and picks the hand-checked lowest triple', () => {
    // 4 candidates; pairs (0,2), (0,3), (2,3) transfer least.
    const tm = [
      [0, 0.9, 0.1, 0.2],
      [0.7, 0, 0.8, 0.9],
      [0.3, 0.6, 0, 0.1],
      [0.2, 0.9, 0.3, 0],
    ];
    const s = symmetric((i, j) => tm[i]![j]!, 4);
    expect(s[0]![2]).toBeCloseTo(0.2);
    const sel = selectLowest(s, 3, 'sum');
    expect(sel.chosen).toEqual([0, 2, 3]);
    expect(sel.objective).toBeCloseTo(0.2 + 0.2 + 0.2);
    expect(sel.method).toBe('exact');
    expect(sel.evaluated).toBe(4);
  });
  it('matches a brute-force search on random matrices (sum and max)', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 3, max: 7 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.integer({ min: 2, max: n }),
              fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: n * n, maxLength: n * n }),
            ),
          ),
        fc.constantFrom<'sum' | 'max'>('sum', 'max'),
        ([n, k, flat], objective) => {
          const s = symmetric((i, j) => flat[i * n + j]!, n);
          const sel = selectLowest(s, k, objective);
          // Brute force over bitmasks.
          let best = Infinity;
          for (let mask = 0; mask < 1 << n; mask++) {
            const set = [...Array(n).keys()].filter((i) => mask & (1 << i));
            if (set.length !== k) continue;
            let v = 0;
            for (let a = 0; a < k; a++)
              for (let b = a + 1; b < k; b++) v = objective === 'sum' ? v + s[set[a]!]![set[b]!]! : Math.max(v, s[set[a]!]![set[b]!]!);
            best = Math.min(best, v);
          }
          expect(sel.chosen).toHaveLength(k);
          expect(sel.objective).toBeCloseTo(best, 9);
        },
      ),
    );
  });
  it('falls back to a greedy search that still returns k distinct sorted members', () => {
    const n = 40;
    const r = rng(3);
    const flat = Array.from({ length: n * n }, () => r());
    const sel = selectLowest(
      symmetric((i, j) => flat[i * n + j]!, n),
      10,
      'sum',
    );
    expect(sel.method).toBe('greedy');
    expect(new Set(sel.chosen).size).toBe(10);
    expect([...sel.chosen].sort((a, b) => a - b)).toEqual(sel.chosen);
  });
});
