// NAttack: the NES update by hand and reproduced from the queries alone, the query budget, scores
// only, the budget and [0, 1], determinism (also against a randomised target), interruption, and
// success on an easy linear case.
import { beforeAll, describe, expect, it } from 'vitest';
import { norms, type AttackParams, type AttackTarget } from '../../src/runtime/attacks/base.js';
import { ATTACK_IMPLS, ATTACK_STEPS } from '../../src/runtime/attacks/index.js';
import { nesUpdate, standardisedRewards } from '../../src/runtime/attacks/nattack.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { normals, rng, type Rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';

/** Logits x W + b computed on the host (no gradient path), plus N(0, noise^2) drawn from the attack's stream. */
function hostLinear(W: number[][], b: number[], noise = 0): AttackTarget {
  const t: AttackTarget = {
    classes: b.length,
    members: [],
    logits: (x, r) => {
      const v = x.dataSync();
      const n = x.shape[0];
      const dim = v.length / n;
      const out = noise ? normals(n * b.length, r, noise) : new Float32Array(n * b.length);
      for (let i = 0; i < n; i++)
        for (let c = 0; c < b.length; c++) {
          let s = b[c]!;
          for (let j = 0; j < dim; j++) s += v[i * dim + j]! * W[j]![c]!;
          out[i * b.length + c]! += s;
        }
      return tf.tensor2d(out, [n, b.length]);
    },
    predict: () => {
      throw new Error('a score-based attack must not call predict');
    },
  };
  t.members.push(t);
  return t;
}

function randomW(dim: number, classes: number, seed: number, scale: number): number[][] {
  const r = rng(seed, 'W');
  return Array.from({ length: dim }, () => Array.from({ length: classes }, () => scale * (2 * r() - 1)));
}

function images(n: number, dim: number, seed: number, range?: [number, number]): Float32Array {
  const r = rng(seed, 'images');
  return Float32Array.from({ length: n * dim }, (_, i) => (range ? range[0] + (range[1] - range[0]) * r() : i % 17 === 0 ? 0 : i % 19 === 0 ? 1 : r()));
}

function labelsOf(t: AttackTarget, x: tf.Tensor4D): Int32Array {
  return tf.tidy(() => tf.argMax(t.logits(x, rng(0)), 1).dataSync() as Int32Array);
}

const nattack = (t: AttackTarget, x: tf.Tensor4D, y: Int32Array, p: AttackParams, r: Rng) => ATTACK_IMPLS.nattack!(t, x, y, p, r);
const margin = (l: ArrayLike<number>, off: number, classes: number, y: number) => {
  let other = -Infinity;
  for (let c = 0; c < classes; c++) if (c !== y) other = Math.max(other, l[off + c]!);
  return l[off + y]! - other;
};

describe('nattack: the NES update', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('standardised rewards match a hand computation (losses clipped to [0, 1000])', () => {
    // margins (2, 0, -1, 4): losses (2, 0, 0, 4), R = -loss/2 = (-1, 0, 0, -2), mean -0.75,
    // population sd sqrt(2.75 / 4); a second image with margins (2000, 0, 0, 0): losses (1000, 0, 0, 0).
    const A = standardisedRewards([2, 0, -1, 4, 2000, 0, 0, 0], 4);
    const sd = Math.sqrt(2.75 / 4);
    [-0.25, 0.75, 0.75, -1.25].forEach((v, i) => expect(A[i]).toBeCloseTo(v / (sd + 1e-7), 12));
    // R = (-500, 0, 0, 0): mean -125, sd sqrt((375^2 + 3 * 125^2) / 4) = 216.506...
    const sd2 = Math.sqrt((375 ** 2 + 3 * 125 ** 2) / 4);
    [-375, 125, 125, 125].forEach((v, i) => expect(A[4 + i]).toBeCloseTo(v / (sd2 + 1e-7), 12));
    // Every sample adversarial: all rewards equal, no move.
    expect(Array.from(standardisedRewards([-1, -2, -3], 3)).every((v) => v === 0)).toBe(true);
  });

  it('mu += lr / (npop * sigma) * sum_j A_j z_j, by hand', () => {
    // z = (1, 0), (0, 1), (1, 1); A = (1, -1, 0.5): sum = (1.5, -0.5); lr / (npop sigma) = 0.3 / 1.5 = 0.2.
    const mu = tf.tensor2d([[0, 1]]);
    const z = tf.tensor3d([
      [
        [1, 0],
        [0, 1],
        [1, 1],
      ],
    ]);
    const next = nesUpdate(mu, z, Float64Array.from([1, -1, 0.5]), 0.5, 0.3);
    Array.from(next.dataSync()).forEach((v, i) => expect(v).toBeCloseTo([0.3, 0.9][i]!, 6));
  });

  it('one full step reproduced from the queries alone: check of mu_0, the samples, the update, the image of mu_1', () => {
    // eps = 1: the box never binds, so every queried image is 0.5 (tanh(w + v) + 1) exactly and
    // v = arctanh(2 x' - 1) - w can be read back from it.
    const [n, dim, npop, sigma, lr] = [3, 12, 6, 0.5, 0.3];
    const xs = images(n, dim, 1, [0.3, 0.7]);
    const x = tf.tensor4d(xs, [n, 2, 2, 3]);
    const base = hostLinear(randomW(dim, 4, 2, 2), [0, 0, 0, 0]);
    const y = labelsOf(base, x);
    const calls: Array<{ rows: Float32Array; logits: Float32Array }> = [];
    const t: AttackTarget = {
      ...base,
      logits: (xb, r) => {
        const l = base.logits(xb, r);
        calls.push({ rows: Float32Array.from(xb.dataSync()), logits: Float32Array.from(l.dataSync()) });
        return l;
      },
    };
    t.members = [t];
    const adv = nattack(t, x, y, { eps: 1, steps: 1, population: npop, sigma, lr }, rng(4)).dataSync();
    expect(calls.map((c) => c.rows.length / dim)).toEqual([n, n * npop]); // one check, then one batch of samples
    calls[0]!.logits.forEach((_, k) => k % 4 === 0 && expect(margin(calls[0]!.logits, k, 4, y[k / 4]!)).toBeGreaterThan(0)); // none fooled at the check
    const w = Array.from(xs, (v) => Math.atanh((2 * v - 1) * (1 - 1e-6)));
    const back = (img: number) => Math.atanh(2 * img - 1);
    for (let i = 0; i < n; i++) {
      const mu0 = Array.from({ length: dim }, (_, j) => back(calls[0]!.rows[i * dim + j]!) - w[i * dim + j]!);
      expect(Math.max(...mu0.map(Math.abs))).toBeLessThan(0.01); // 0.001 * N(0, 1)
      const m = Array.from({ length: npop }, (_, k) => margin(calls[1]!.logits, (i * npop + k) * 4, 4, y[i]!));
      const R = m.map((v) => -0.5 * Math.min(1000, Math.max(0, v)));
      const mean = R.reduce((s, v) => s + v, 0) / npop;
      const sd = Math.sqrt(R.reduce((s, v) => s + (v - mean) ** 2, 0) / npop);
      const mu1 = mu0.map((v, j) => {
        let g = 0;
        for (let k = 0; k < npop; k++) {
          const z = (back(calls[1]!.rows[(i * npop + k) * dim + j]!) - w[i * dim + j]! - v) / sigma;
          g += ((R[k]! - mean) / (sd + 1e-7)) * z;
        }
        return v + (lr / (npop * sigma)) * g;
      });
      mu1.forEach((v, j) => expect(adv[i * dim + j]).toBeCloseTo(0.5 * (Math.tanh(w[i * dim + j]! + v) + 1), 4));
      // The step moved the mean (it is not the image of mu_0).
      expect(Math.max(...mu1.map((v, j) => Math.abs(v - mu0[j]!)))).toBeGreaterThan(0.01);
    }
  });
});

describe('nattack: budget, queries, scores only, determinism', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  const [n, h, w, c] = [5, 4, 4, 2];
  const dim = h * w * c;

  it('never more than steps * population + ceil(steps / 10) logit rows per image; all of them when nothing falls', () => {
    const xs = images(n, dim, 3);
    const x = tf.tensor4d(xs, [n, h, w, c]);
    const count = (t: AttackTarget, p: AttackParams, y: Int32Array) => {
      let rows = 0;
      const wrapped: AttackTarget = { ...t, logits: (xb, r) => ((rows += xb.shape[0]), t.logits(xb, r)) };
      wrapped.members = [wrapped];
      nattack(wrapped, x, y, p, rng(2));
      return rows;
    };
    const p: AttackParams = { eps: 0.05, steps: 23, population: 7 };
    // Robust (class 0's bias dominates): every image spends the whole budget, 23 * 7 + 3 checks.
    expect(count(hostLinear(randomW(dim, 3, 1, 0.001), [10, 0, 0]), p, new Int32Array(n))).toBe(n * (23 * 7 + 3));
    // Weak: images fall and stop (a per-image budget is the most any image can use).
    const weak = hostLinear(randomW(dim, 3, 5, 1), [0, 0, 0]);
    const used = count(weak, { ...p, eps: 0.5 }, labelsOf(weak, x));
    expect(used).toBeLessThan(n * (23 * 7 + 3));
  });

  it('outputs lie in [0, 1] and within eps; only scores are used (a target with no gradient path works); eps = 0 changes nothing', () => {
    const x = tf.tensor4d(images(n, dim, 7), [n, h, w, c]);
    const t = hostLinear(randomW(dim, 3, 8, 1), [0, 0, 0]);
    const y = labelsOf(t, x);
    expect(() => ATTACK_IMPLS.pgd!(t, x, y, { eps: 0.1, norm: 'linf', steps: 1, step: 0.1 }, rng(0))).toThrow();
    const adv = nattack(t, x, y, { eps: 0.1, steps: 12, population: 10 }, rng(9));
    const a = adv.dataSync();
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThanOrEqual(1);
    const d = norms(adv, x).linf;
    for (const v of d) expect(v).toBeLessThanOrEqual(0.1 * (1 + 1e-5) + 1e-6);
    expect(Math.max(...d)).toBeGreaterThan(0);
    const zero = nattack(t, x, y, { eps: 0, steps: 3, population: 4 }, rng(9));
    expect(Array.from(zero.dataSync())).toEqual(Array.from(x.dataSync()));
  });

  it('a seeded run is byte-identical to a rerun, also against a randomised target; another seed differs', () => {
    const x = tf.tensor4d(images(n, dim, 11), [n, h, w, c]);
    for (const noise of [0, 0.3]) {
      const t = hostLinear(randomW(dim, 3, 12, 1), [0, 0, 0], noise);
      const y = labelsOf(t, x);
      const run = (s: number) =>
        Buffer.from((nattack(t, x, y, { eps: 0.1, steps: 12, population: 8 }, rng(s)).dataSync() as Float32Array).buffer).toString('base64');
      expect(run(1)).toBe(run(1));
      expect(run(1)).not.toBe(run(2));
    }
  });

  it('stopped after two steps it frees every tensor; run to the end it equals the synchronous attack', () => {
    const x = tf.tensor4d(images(n, dim, 13), [n, h, w, c]);
    const t = hostLinear(randomW(dim, 3, 14, 1), [0, 0, 0]);
    const y = labelsOf(t, x);
    const p: AttackParams = { eps: 0.1, steps: 6, population: 5 };
    const before = tf.memory().numTensors;
    const g = ATTACK_STEPS.nattack!(t, x, y, p, rng(3));
    const f = [g.next(), g.next()].map((s) => (s.done ? 1 : s.value));
    expect(f[0]).toBeGreaterThan(0);
    expect(f[1]).toBeGreaterThan(f[0]!);
    g.return(undefined as never);
    expect(tf.memory().numTensors).toBe(before);
    const gen = ATTACK_STEPS.nattack!(t, x, y, p, rng(3));
    let s = gen.next();
    while (!s.done) s = gen.next();
    const plain = nattack(t, x, y, p, rng(3));
    expect(Array.from(s.value.dataSync())).toEqual(Array.from(plain.dataSync()));
    s.value.dispose();
    plain.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('nattack on a linear model', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('finds an adversarial point for every image when the closed-form optimum is clearly adversarial', () => {
    // 4x4x1 images in [0.4, 0.6]; logit 1 - logit 0 = d.x + b, label 0. The best the l_inf box can
    // do is raise d.x by eps |d|_1 (inside [0, 1] here); b = -max f - reach/4 makes every image
    // correct when clean and its optimum adversarial by at least reach/4.
    const dim = 16;
    const d = Array.from({ length: dim }, (_, j) => ((j * 7) % 5) - 2 + 0.5);
    const xs = images(6, dim, 21, [0.4, 0.6]);
    const x = tf.tensor4d(xs, [6, 4, 4, 1]);
    const eps = 0.2;
    const reach = eps * d.reduce((s, v) => s + Math.abs(v), 0);
    const fs = Array.from({ length: 6 }, (_, i) => d.reduce((s, v, j) => s + v * xs[i * dim + j]!, 0));
    const b = -Math.max(...fs) - reach / 4;
    fs.forEach((f) => expect(f + b).toBeLessThan(0));
    const t = hostLinear(
      d.map((v) => [0, v]),
      [0, b],
    );
    const adv = nattack(t, x, new Int32Array(6), { eps, steps: 200, population: 50 }, rng(1));
    const a = adv.dataSync();
    for (let i = 0; i < 6; i++) expect(d.reduce((s, v, j) => s + v * a[i * dim + j]!, b)).toBeGreaterThan(0);
    for (const v of norms(adv, x).linf) expect(v).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-6);
  });
});
