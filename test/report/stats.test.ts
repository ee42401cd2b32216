import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmtFrac, fmtPct, prop, propCells, propHeader, propOf, SMALL_N, wilson, Z95 } from '../../src/report/stats.js';

const z2 = Z95 * Z95;

describe('wilson', () => {
  it('uses the 97.5% normal quantile', () => {
    // The standard normal density integrated (Simpson's rule) from 0 to Z95 is 0.475.
    const steps = 2000;
    const h = Z95 / steps;
    const phi = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
    let area = phi(0) + phi(Z95);
    for (let i = 1; i < steps; i++) area += (i % 2 ? 4 : 2) * phi(i * h);
    expect((area * h) / 3).toBeCloseTo(0.475, 12);
  });

  it('k = 0 and k = n: closed forms 0, z²/(n + z²) and n/(n + z²), 1', () => {
    for (const n of [1, 10, 60, 500]) {
      expect(wilson(0, n)).toEqual({ lo: 0, hi: expect.closeTo(z2 / (n + z2), 14) });
      expect(wilson(n, n)).toEqual({ lo: expect.closeTo(n / (n + z2), 14), hi: 1 });
    }
    // Hand-computed: 3.841459 / 13.841459 and 10 / 13.841459.
    expect(wilson(0, 10)!.hi).toBeCloseTo(0.277533, 6);
    expect(wilson(10, 10)!.lo).toBeCloseTo(0.722467, 6);
  });

  it('n = 1: [0, 0.79345] and [0.20655, 1]', () => {
    expect(wilson(0, 1)!.lo).toBe(0);
    expect(wilson(0, 1)!.hi).toBeCloseTo(0.79345, 5);
    expect(wilson(1, 1)!.lo).toBeCloseTo(0.20655, 5);
    expect(wilson(1, 1)!.hi).toBe(1);
  });

  it("matches Newcombe (1998, Stat. Med. 17:857, table I, method 3)'s worked examples", () => {
    const cases: Array<[number, number, number, number]> = [
      [81, 263, 0.2553, 0.3662],
      [15, 148, 0.0624, 0.1605],
      [0, 20, 0, 0.1611],
      [1, 29, 0.0061, 0.1718],
    ];
    for (const [k, n, lo, hi] of cases) {
      const w = wilson(k, n)!;
      expect(w.lo, `${k}/${n} lo`).toBeCloseTo(lo, 4);
      expect(w.hi, `${k}/${n} hi`).toBeCloseTo(hi, 4);
    }
  });

  it('bounds are where the score test is exactly z, contain k/n, and mirror under k -> n - k', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n }))),
        ([n, k]) => {
          const { lo, hi } = wilson(k, n)!;
          const ph = k / n;
          expect(lo).toBeLessThanOrEqual(ph);
          expect(hi).toBeGreaterThanOrEqual(ph);
          const score = (p: number) => Math.abs(ph - p) / Math.sqrt((p * (1 - p)) / n);
          if (k > 0) expect(score(lo)).toBeCloseTo(Z95, 6);
          if (k < n) expect(score(hi)).toBeCloseTo(Z95, 6);
          const m = wilson(n - k, n)!;
          expect(m.lo).toBeCloseTo(1 - hi, 12);
          expect(m.hi).toBeCloseTo(1 - lo, 12);
        },
      ),
    );
  });

  it('n = 0 has no interval; bad counts are errors', () => {
    expect(wilson(0, 0)).toBeNull();
    expect(() => wilson(3, 2)).toThrow(/k must be an integer in \[0, 2\]/);
    expect(() => wilson(-1, 2)).toThrow(RangeError);
    expect(() => wilson(1.5, 2)).toThrow(RangeError);
    expect(() => wilson(0, -1)).toThrow(/n must be a non-negative integer/);
  });
});

describe('proportions as the report writes them', () => {
  it('recovers the count from a rate and its n', () => {
    expect(propOf(0.386, 500)).toMatchObject({ k: 193, n: 500 });
    expect(propOf(59 / 60, 60)).toMatchObject({ k: 59, n: 60 });
    expect(propOf(undefined, 60)).toBeUndefined();
    expect(propOf(0.5, undefined)).toBeUndefined();
  });

  it('formats percent and fraction with the interval and n, a dagger below 30 images', () => {
    // By hand: centre (0.386 + z²/1000) / (1 + z²/500) = 0.38687, half-width 0.04252.
    expect(fmtPct(prop(193, 500))).toBe('38.6% [34.4, 42.9] (n=500)');
    expect(fmtFrac(prop(305, 412))).toBe('0.74 [0.70, 0.78] (n=412)');
    expect(fmtPct(prop(10, SMALL_N - 1))).toMatch(/ \(n=29\)†$/);
    expect(fmtPct(prop(10, SMALL_N))).toMatch(/ \(n=30\)$/);
    expect(fmtFrac(prop(0, 0))).toBe('– (n=0)†');
    expect(fmtPct(undefined)).toBe('–');
  });

  it('CSV cells are numbers: value, n, bounds', () => {
    const w = wilson(193, 500)!;
    expect(propHeader('clean')).toEqual(['clean', 'clean n', 'clean lo95', 'clean hi95']);
    expect(propCells(prop(193, 500))).toEqual([0.386, 500, w.lo, w.hi]);
    expect(propCells(undefined)).toEqual([null, null, null, null]);
  });
});
