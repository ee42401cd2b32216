/**
 * Proportions with their sample size and a 95% Wilson score interval, and how the report writes
 * them: every accuracy, success rate and transfer-matrix cell is k of n images, and a figure that
 * rests on fewer than SMALL_N images is marked with a dagger.
 */

/** The two-sided 95% normal quantile, Φ⁻¹(0.975). */
export const Z95 = 1.959963984540054;

/** Below this many images a figure is marked (DAGGER) and the report adds SMALL_NOTE. */
export const SMALL_N = 30;
export const DAGGER = '†';
export const SMALL_NOTE = `${DAGGER} rests on fewer than ${SMALL_N} images (for a TM cell: eligible images), so its interval is wide; read it as a rough figure.`;
/** What the brackets mean, for the sections that show intervals. */
export const INTERVAL_NOTE = 'Brackets hold the 95% Wilson score interval; n is the number of images the figure is a fraction of.';

export interface Interval {
  lo: number;
  hi: number;
}

/**
 * The Wilson score interval for k successes in n trials: the proportions p whose score test
 * |k/n - p| / sqrt(p(1 - p)/n) <= z does not reject. Null when n = 0 (no data, no interval).
 */
export function wilson(k: number, n: number, z: number = Z95): Interval | null {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`wilson: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`wilson: k must be an integer in [0, ${n}], got ${k}`);
  if (n === 0) return null;
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // At k = 0 and k = n the bounds are exactly 0 and 1; rounding would leave them a hair off.
  return { lo: k === 0 ? 0 : Math.max(0, centre - half), hi: k === n ? 1 : Math.min(1, centre + half) };
}

/** A proportion of images: k of n, its value (null when n = 0) and its interval. */
export interface Prop {
  k: number;
  n: number;
  value: number | null;
  ci: Interval | null;
}

export function prop(k: number, n: number): Prop {
  return { k, n, value: n > 0 ? k / n : null, ci: wilson(k, n) };
}

/**
 * A proportion from a rate a summary stores and the count it is a fraction of (k = rate × n,
 * rounded: the operations compute the rate as a count over n). Undefined when either is missing.
 */
export function propOf(rate: number | null | undefined, n: number | null | undefined): Prop | undefined {
  if (rate === null || rate === undefined || n === null || n === undefined || !Number.isFinite(rate)) return undefined;
  return prop(Math.min(n, Math.max(0, Math.round(rate * n))), n);
}

const small = (p: Prop) => (p.n < SMALL_N ? DAGGER : '');

/** "38.6% [35.1, 42.2] (n=500)", a dagger when n < SMALL_N, "–" when there is nothing. */
export function fmtPct(p: Prop | undefined): string {
  if (!p || p.value === null) return p ? `– (n=0)${DAGGER}` : '–';
  const f = (v: number) => (v * 100).toFixed(1);
  return `${f(p.value)}% [${f(p.ci!.lo)}, ${f(p.ci!.hi)}] (n=${p.n})${small(p)}`;
}

/** "0.74 [0.70, 0.78] (n=412)": a fraction, as the TM tables write it. */
export function fmtFrac(p: Prop | undefined): string {
  if (!p || p.value === null) return p ? `– (n=0)${DAGGER}` : '–';
  const f = (v: number) => v.toFixed(2);
  return `${f(p.value)} [${f(p.ci!.lo)}, ${f(p.ci!.hi)}] (n=${p.n})${small(p)}`;
}

/** CSV columns of a proportion: value, n, lower and upper bound (numbers, empty when unknown). */
export function propCells(p: Prop | undefined): Array<number | null> {
  return [p?.value ?? null, p?.n ?? null, p?.ci?.lo ?? null, p?.ci?.hi ?? null];
}

/** The CSV header of propCells for a column named `name`. */
export function propHeader(name: string): string[] {
  return [name, `${name} n`, `${name} lo95`, `${name} hi95`];
}

/**
 * Whether a change is beyond its intervals: both runs' 95% Wilson score intervals are known and
 * do not overlap. (For two figures of equal standard error this is z > 2.77 for the difference,
 * about p < 0.006: stricter than a two-proportion test at 5%.)
 */
export function beyondIntervals(a: Interval | undefined, b: Interval | undefined): boolean {
  return a !== undefined && b !== undefined && (a.hi < b.lo || b.hi < a.lo);
}
