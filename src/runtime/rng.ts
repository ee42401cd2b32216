/** Seeded random streams (seedrandom's Alea): the same seed gives the same numbers everywhere. */
import seedrandom from 'seedrandom';

export type Rng = () => number;

/** A stream named by a seed and a purpose, so independent uses never share numbers. */
export function rng(seed: number | string, purpose = ''): Rng {
  return seedrandom.alea(`${seed}/${purpose}`);
}

export function shuffle<T>(xs: T[], r: Rng): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

export function permutation(n: number, r: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Standard normal samples (Box-Muller on the seeded stream), in float32. */
export function normals(n: number, r: Rng, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-300);
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u)) * scale;
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** A 32-bit integer seed drawn from a stream (for TF.js ops that take a seed). */
export function seedFrom(r: Rng): number {
  return Math.floor(r() * 2 ** 31);
}
