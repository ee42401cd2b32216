/**
 * A generated, linearly separable 2-class set of 8x8 grey images: class 0 is brighter in the top
 * half, class 1 in the bottom half, with seeded noise. Small enough for tests and demos.
 */
import { rng } from '../rng.js';
import type { Split } from './cifar.js';

export function makeToy(n: number, seed: number): Split {
  const r = rng(seed, 'toy');
  const x = new Uint8Array(n * 64);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    y[i] = c;
    for (let p = 0; p < 64; p++) {
      const top = p < 32;
      const base = (c === 0) === top ? 170 : 70;
      x[i * 64 + p] = Math.max(0, Math.min(255, Math.round(base + (r() - 0.5) * 120)));
    }
  }
  return { x, y, n };
}
