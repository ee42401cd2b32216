// Square Attack: the reference's schedule and shapes, the query budget, scores only, the budget and
// [0, 1], closed forms on linear models, determinism, interruption, and the language end to end.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/runtime/artifact.js';
import { norms, type AttackParams, type AttackTarget } from '../../src/runtime/attacks/base.js';
import { ATTACK_IMPLS, ATTACK_STEPS } from '../../src/runtime/attacks/index.js';
import { eta, etaRectangles, pSelection, roundHalfEven, scoreQuery, squareRun, squareSide } from '../../src/runtime/attacks/square.js';
import { jsonSafe } from '../../src/compiler/jsonsafe.js';
import type { OpName, OpParams } from '../../src/compiler/contract.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { createOps } from '../../src/runtime/ops/registry.js';
import { rng, type Rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { range } from '../../src/runtime/training/batches.js';
import { plan } from '../helpers/compile.js';

/** Logits x W + b computed on the host from the batch's values: no gradient can flow through them. */
function hostLinear(W: number[][], b: number[]): AttackTarget {
  const t: AttackTarget = {
    classes: b.length,
    members: [],
    logits: (x) => {
      const v = x.dataSync();
      const n = x.shape[0];
      const dim = v.length / n;
      const out = new Float32Array(n * b.length);
      for (let i = 0; i < n; i++)
        for (let c = 0; c < b.length; c++) {
          let s = b[c]!;
          for (let j = 0; j < dim; j++) s += v[i * dim + j]! * W[j]![c]!;
          out[i * b.length + c] = s;
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

/** Per image, the logit rows queried at points within `radius` of it (l_inf, l_2 or l_1); rows near no image fail. */
function counting(t: AttackTarget, x: Float32Array, dim: number, radius: number, norm: 'linf' | 'l2' | 'l1'): { target: AttackTarget; counts: number[] } {
  const n = x.length / dim;
  const counts = new Array<number>(n).fill(0);
  const target: AttackTarget = {
    ...t,
    logits: (xb, r) => {
      const v = xb.dataSync();
      for (let k = 0; k < xb.shape[0]; k++) {
        const near = [];
        for (let i = 0; i < n; i++) {
          let d = 0;
          for (let j = 0; j < dim; j++) {
            const e = Math.abs(v[k * dim + j]! - x[i * dim + j]!);
            d = norm === 'linf' ? Math.max(d, e) : norm === 'l1' ? d + e : d + e * e;
          }
          if ((norm === 'l2' ? Math.sqrt(d) : d) <= radius * (1 + 1e-5) + 1e-6) near.push(i);
        }
        expect(near.length).toBe(1);
        counts[near[0]!]!++;
      }
      return t.logits(xb, r);
    },
  };
  target.members = [target];
  return { target, counts };
}

/** Seeded uniform images [n, h, w, c]; unless in a range, some pixels at exactly 0 and 1 so that clipping matters. */
function images(n: number, h: number, w: number, c: number, seed: number, range?: [number, number]): tf.Tensor4D {
  const r = rng(seed, 'images');
  const v = Float32Array.from({ length: n * h * w * c }, (_, i) =>
    range ? range[0] + (range[1] - range[0]) * r() : i % 17 === 0 ? 0 : i % 19 === 0 ? 1 : r(),
  );
  return tf.tensor4d(v, [n, h, w, c]);
}

/** The target's clean decisions (argmax of its logits), used as labels so that every image starts correct. */
function labelsOf(t: AttackTarget, x: tf.Tensor4D): Int32Array {
  return tf.tidy(() => tf.argMax(t.logits(x, rng(0)), 1).dataSync() as Int32Array);
}

function randomW(dim: number, classes: number, seed: number, scale: number): number[][] {
  const r = rng(seed, 'W');
  return Array.from({ length: dim }, () => Array.from({ length: classes }, () => scale * (2 * r() - 1)));
}

/** A binary linear model: logit 1 - logit 0 = d.x + b. */
function binary(d: number[], b: number): AttackTarget {
  return hostLinear(
    d.map((v) => [0, v]),
    [0, b],
  );
}

const square = (t: AttackTarget, x: tf.Tensor4D, y: Int32Array, p: AttackParams, r: Rng) => ATTACK_IMPLS.square!(t, x, y, p, r);

describe('square: the reference schedule and shapes', () => {
  it('p_selection matches autoattack/square.py (values printed by the reference function)', () => {
    const its = [0, 5, 6, 25, 26, 100, 101, 250, 251, 500, 501, 1000, 1001, 2000, 2001, 3000, 3001, 4000, 4001, 4999];
    const ref = [0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.00625, 0.00625, 0.003125, 0.003125, 0.0015625, 0.0015625];
    expect(its.map((i) => pSelection(i, 5000, 0.8))).toEqual(ref);
    // Its side on 28x28x1 (int(round(sqrt(p * 784))), at least 1), from the same run.
    expect(its.map((i) => squareSide(i, 5000, 0.8, 28, 28, 'linf'))).toEqual([25, 25, 18, 18, 13, 13, 9, 9, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 1, 1]);
    const ref200 = [
      0.3, 0.0375, 0.01875, 0.009375, 0.009375, 0.009375, 0.0046875, 0.0046875, 0.0046875, 0.0046875, 0.0046875, 0.0046875, 0.00234375, 0.00234375, 0.00234375,
      0.00234375, 0.00234375, 0.00234375, 0.001171875, 0.001171875, 0.001171875, 0.001171875, 0.001171875, 0.0005859375, 0.0005859375, 0.0005859375,
      0.0005859375, 0.0005859375, 0.0005859375,
    ];
    expect(Array.from({ length: 29 }, (_, k) => pSelection(7 * k, 200, 0.3))).toEqual(ref200);
    expect(Array.from({ length: 7 }, (_, i) => pSelection(i, 7, 0.05))).toEqual([
      0.05, 0.0015625, 0.00078125, 0.000390625, 0.000390625, 0.0001953125, 9.765625e-5,
    ]);
  });

  it("rounds halves to even (Python's round) and keeps the l_2 side odd, at least 3, at most the image", () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.49, 2.51].map(roundHalfEven)).toEqual([0, 2, 2, 4, 2, 3]);
    // p = 0.8 on 28x28: sqrt(627.2) = 25.04 -> 25 (odd already); p = 0.4: 17.7 -> 18 -> 19.
    expect(squareSide(0, 5000, 0.8, 28, 28, 'l2')).toBe(25);
    expect(squareSide(6, 5000, 0.8, 28, 28, 'l2')).toBe(19);
    expect(squareSide(4999, 5000, 0.8, 28, 28, 'l2')).toBe(3);
    expect(squareSide(0, 5000, 0.8, 4, 4, 'l2')).toBe(4); // min(5, 4): the reference's cap
    // l_1 sizes its squares as l_2 does.
    for (const it of [0, 6, 30, 700, 4999]) expect(squareSide(it, 5000, 0.8, 28, 28, 'l1', false)).toBe(squareSide(it, 5000, 0.8, 28, 28, 'l2', false));
  });

  it('eta_rectangles and eta match hand computations', () => {
    // 3x3: the centre gets 1 + 1/4, the ring 1/4; norm sqrt(1.5625 + 8/16).
    const z = Math.sqrt(2.0625);
    Array.from(etaRectangles(3, 3)).forEach((v, i) => expect(v).toBeCloseTo((i === 4 ? 1.25 : 0.25) / z, 12));
    // eta(3): top row = rectangles(1, 3) = (.25, 1.25, .25)/|.|, then -rectangles(2, 3) = -(.25 .25 .25; .25 1.25 .25)/|.|,
    // the whole renormalised (each half has unit norm, so divided by sqrt(2)).
    const top = [0.25, 1.25, 0.25].map((v) => v / Math.sqrt(1.6875));
    const bottom = [0.25, 0.25, 0.25, 0.25, 1.25, 0.25].map((v) => -v / Math.sqrt(1.875));
    const want = [...top, ...bottom].map((v) => v / Math.sqrt(2));
    const kept = eta(3, () => 0.25); // rand <= 0.5: not transposed
    Array.from(kept).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 12));
    const turned = eta(3, () => 0.75);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(turned[j * 3 + i]).toBeCloseTo(want[i * 3 + j]!, 12);
  });

  it('l_1: eta_rectangles weigh 1/(k+1)^4 and eta has unit l_1 norm (hand computations)', () => {
    // 3x3: the centre 1 + 1/16, the ring 1/16; l_1 norm 1.0625 + 8/16.
    Array.from(etaRectangles(3, 3, 'l1')).forEach((v, i) => expect(v).toBeCloseTo((i === 4 ? 1.0625 : 0.0625) / 1.5625, 12));
    // eta(3): top (1/16, 17/16, 1/16)/(19/16); bottom -(1/16 1/16 1/16; 1/16 17/16 1/16)/(22/16); halves of
    // unit l_1 norm each, so the whole is divided by 2.
    const top = [1, 17, 1].map((v) => v / 19 / 2);
    const bottom = [1, 1, 1, 1, 17, 1].map((v) => -v / 22 / 2);
    Array.from(eta(3, () => 0.25, 'l1')).forEach((v, i) => expect(v).toBeCloseTo([...top, ...bottom][i]!, 12));
    for (const s of [3, 5, 8, 25]) expect(Array.from(eta(s, () => 0.75, 'l1')).reduce((a, v) => a + Math.abs(v), 0)).toBeCloseTo(1, 12);
  });
});

describe('square: budget, queries, scores only', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  const [n, h, w, c] = [6, 6, 6, 3];
  const dim = h * w * c;

  for (const [norm, eps] of [
    ['linf', 0.05],
    ['l2', 0.5],
    ['l1', 2],
  ] as const) {
    it(`${norm}: never more than 1 + restarts * queries logit rows per image; all of them when no image can be fooled`, () => {
      const x = images(n, h, w, c, 1);
      const xs = x.dataSync() as Float32Array;
      // Robust: class 0's bias dominates every perturbation in the budget (labels 0).
      const strong = hostLinear(randomW(dim, 4, 2, 0.001), [10, 0, 0, 0]);
      const a = counting(strong, xs, dim, eps, norm);
      const adv = square(a.target, x, new Int32Array(n), { eps, norm, queries: 30, p_init: 0.8, restarts: 2 }, rng(3));
      expect(a.counts).toEqual(new Array(n).fill(1 + 2 * 30));
      expect(Array.from(adv.dataSync())).toEqual(Array.from(xs)); // nothing fooled: returned unchanged
      // Foolable: counts stay within the budget, and images that fall early stop querying.
      const weak = hostLinear(randomW(dim, 4, 4, 1), [0, 0, 0, 0]);
      const b = counting(weak, xs, dim, eps * 8, norm);
      square(b.target, x, labelsOf(weak, x), { eps: eps * 8, norm, queries: 40, p_init: 0.8, restarts: 3 }, rng(5));
      for (const k of b.counts) expect(k).toBeLessThanOrEqual(1 + 3 * 40);
      expect(Math.min(...b.counts)).toBeLessThan(1 + 3 * 40);
    });

    it(`${norm}: outputs lie in [0, 1] and within eps; only scores are used (a target with no gradient path works)`, () => {
      const x = images(n, h, w, c, 7);
      const t = hostLinear(randomW(dim, 4, 8, 1), [0, 0, 0, 0]);
      const y = labelsOf(t, x);
      // The same target defeats any attack that asks for a gradient.
      expect(() => ATTACK_IMPLS.pgd!(t, x, y, { eps, norm, steps: 1, step: eps }, rng(0))).toThrow();
      const adv = square(t, x, y, { eps, norm, queries: 100, p_init: 0.8, restarts: 1 }, rng(9));
      const a = adv.dataSync();
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...a)).toBeLessThanOrEqual(1);
      for (const v of norms(adv, x)[norm]) expect(v).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-6);
      expect(Array.from(norms(adv, x)[norm]).some((v) => v > 0)).toBe(true); // it attacked something
      const zero = square(t, x, y, { eps: 0, norm, queries: 20, p_init: 0.8, restarts: 1 }, rng(9));
      expect(Array.from(zero.dataSync())).toEqual(Array.from(x.dataSync()));
    });

    it(`${norm}: a seeded run is byte-identical to a rerun; another seed differs`, () => {
      const x = images(n, h, w, c, 11);
      const t = hostLinear(randomW(dim, 4, 12, 1), [0, 0, 0, 0]);
      const y = labelsOf(t, x);
      const p: AttackParams = { eps, norm, queries: 50, p_init: 0.8, restarts: 2 };
      const run = (s: number) => Buffer.from((square(t, x, y, p, rng(s)).dataSync() as Float32Array).buffer).toString('base64');
      expect(run(1)).toBe(run(1));
      expect(run(1)).not.toBe(run(2));
    });
  }

  it('stopped after two steps it frees every tensor; run to the end it equals the synchronous attack', async () => {
    const x = images(n, h, w, c, 13);
    const t = hostLinear(randomW(dim, 4, 14, 1), [0, 0, 0, 0]);
    const y = labelsOf(t, x);
    const p: AttackParams = { eps: 0.05, norm: 'linf', queries: 20, p_init: 0.8, restarts: 2 };
    const before = tf.memory().numTensors;
    const g = ATTACK_STEPS.square!(t, x, y, p, rng(3));
    const f = [g.next(), g.next()].map((s) => (s.done ? 1 : s.value));
    expect(f[0]).toBeGreaterThan(0);
    expect(f[1]).toBeGreaterThan(f[0]!);
    g.return(undefined as never);
    expect(tf.memory().numTensors).toBe(before);
    const seen: number[] = [];
    const gen = ATTACK_STEPS.square!(t, x, y, p, rng(3));
    let s = gen.next();
    for (; !s.done; s = gen.next()) seen.push(s.value);
    expect(Array.from(s.value.dataSync())).toEqual(Array.from(square(t, x, y, p, rng(3)).dataSync()));
    expect(seen.every((v, i) => v > 0 && v <= 1 && (i === 0 || v >= seen[i - 1]!))).toBe(true);
  });
});

describe('square on linear models: the closed-form optimum decides', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  // 8x8x1 images in [0.4, 0.6]; logit 1 - logit 0 = d.x + b, label 0. d is 0 on the border: the
  // reference's windows never reach the last row and column (their corner is int(rand * (h - s)))
  // and its l_2 start leaves the first ones at 0, so the search could not reach an optimum there.
  const dim = 64;
  const border = (j: number) => j < 8 || j >= 56 || j % 8 === 0 || j % 8 === 7;
  const d = Array.from({ length: dim }, (_, j) => (border(j) ? 0 : ((j * 7) % 5) - 2 + 0.5));
  const x = images(5, 8, 8, 1, 21, [0.4, 0.6]);
  const xs = x.dataSync();
  const y = new Int32Array(5);
  const fs = Array.from({ length: 5 }, (_, i) => d.reduce((s, v, j) => s + v * xs[i * dim + j]!, 0));
  const fmax = Math.max(...fs);
  const logit = (a: ArrayLike<number>, i: number, b: number) => d.reduce((s, v, j) => s + v * a[i * dim + j]!, b);

  for (const [norm, eps] of [
    ['linf', 0.2],
    ['l2', 1],
  ] as const) {
    // The most the budget can raise d.x (x + eps sign(d), or x + eps d/|d|, inside [0, 1] here).
    const reach = norm === 'linf' ? eps * d.reduce((s, v) => s + Math.abs(v), 0) : eps * Math.hypot(...d);
    it(`${norm}: finds an adversarial point when the optimum is adversarial`, () => {
      // b = -fmax - reach/4: every image is correct when clean, and its optimum beats the boundary by
      // reach - reach/4 - (fmax - f_i) > 0.
      const b = -fmax - reach / 4;
      fs.forEach((f) => expect(f + b).toBeLessThan(0));
      fs.forEach((f) => expect(f + reach + b).toBeGreaterThan(reach / 4));
      const adv = square(binary(d, b), x, y, { eps, norm, queries: 3000, p_init: 0.8, restarts: 1 }, rng(1));
      const a = adv.dataSync();
      for (let i = 0; i < 5; i++) expect(logit(a, i, b)).toBeGreaterThan(0);
      for (const v of norms(adv, x)[norm]) expect(v).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-6);
    });

    it(`${norm}: never claims success when even the optimum is not adversarial`, () => {
      // b = -fmax - 1.02 reach: the optimum of every image stays on the correct side.
      const b = -fmax - 1.02 * reach;
      fs.forEach((f) => expect(f + reach + b).toBeLessThan(0));
      const adv = square(binary(d, b), x, y, { eps, norm, queries: 500, p_init: 0.8, restarts: 2 }, rng(1));
      expect(Array.from(adv.dataSync())).toEqual(Array.from(xs));
    });
  }
});

describe('square l_1 on linear models: the exact l_1 optimum decides', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  // As above (8x8x1 in [0.4, 0.6], d 0 on the border). The most an l_1 budget can raise d.x within
  // the box: greedily, the largest |d_j| first, each coordinate as far as the box lets it.
  const dim = 64;
  const border = (j: number) => j < 8 || j >= 56 || j % 8 === 0 || j % 8 === 7;
  const d = Array.from({ length: dim }, (_, j) => (border(j) ? 0 : ((j * 7) % 5) - 2 + 0.5));
  const eps = 2;
  const x = images(4, 8, 8, 1, 21, [0.4, 0.6]);
  const xs = x.dataSync();
  const reach = (i: number) => {
    let left = eps;
    let gain = 0;
    for (const j of range(0, dim).sort((a, b) => Math.abs(d[b]!) - Math.abs(d[a]!))) {
      const room = Math.min(left, d[j]! > 0 ? 1 - xs[i * dim + j]! : xs[i * dim + j]!);
      gain += room * Math.abs(d[j]!);
      left -= room;
    }
    return gain;
  };
  const one = (i: number) => tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
  const f = (a: ArrayLike<number>, off = 0) => d.reduce((s, v, j) => s + v * a[off + j]!, 0);

  it('finds an adversarial point within the budget when the optimum beats the boundary by 60% of its reach', () => {
    for (let i = 0; i < 4; i++) {
      const b = -f(xs, i * dim) - 0.4 * reach(i);
      const adv = square(binary(d, b), one(i), new Int32Array(1), { eps, norm: 'l1', queries: 2000, p_init: 0.8, resc_schedule: false }, rng(i));
      expect(f(adv.dataSync()) + b, `image ${i}`).toBeGreaterThan(0);
      expect(norms(adv, one(i)).l1[0]).toBeLessThanOrEqual(eps * (1 + 1e-5));
    }
  });

  it('never claims success when even the optimum is not adversarial', () => {
    for (let i = 0; i < 4; i++) {
      const b = -f(xs, i * dim) - 1.02 * reach(i);
      const adv = square(binary(d, b), one(i), new Int32Array(1), { eps, norm: 'l1', queries: 300, p_init: 0.8, restarts: 2 }, rng(i));
      expect(Array.from(adv.dataSync())).toEqual(Array.from(one(i).dataSync()));
    }
  });
});

describe('square l_1 replays the reference', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('fed the same uniform draws, autoattack/square.py (L1) ends at the same margins (printed by the reference)', () => {
    // 6 images 10x10x3, 4 classes, logits x W (W in NHWC order), eps 2, 79 updates, p_init 0.8, raw
    // schedule. The reference ran attack_single_run on the same case (NCHW, the same W) with
    // torch.rand replaced by this stream's values in order (random_int, random_choice and eta's
    // transposition all draw from it, in the order trend draws them), n_queries = 79.
    const [n, h, w, c, k] = [6, 10, 10, 3, 4];
    const dim = h * w * c;
    const g0 = rng(7, 'data');
    const x = Float32Array.from({ length: n * dim }, (_, i) => (i % 13 === 0 ? 0 : i % 11 === 0 ? 1 : g0()));
    const W = Array.from({ length: dim }, () => Array.from({ length: k }, () => (2 * g0() - 1) * 0.3));
    const t = hostLinear(W, [0, 0, 0, 0]);
    const y = labelsOf(t, tf.tensor4d(x, [n, h, w, c]));
    const g = { h, w, c, dim };
    const run = squareRun(scoreQuery(t, g, rng(0)), x, y, g, { eps: 2, norm: 'l1', queries: 80, p_init: 0.8, resc_schedule: false }, rng(3, 'sq'));
    let step = run.next();
    while (!step.done) step = run.next();
    const ref = [-0.014544, 0.944487, 0.945732, 0.246591, -0.046571, -0.009459];
    Array.from(step.value.margin).forEach((m, i) => expect(Math.abs(m - ref[i]!), `image ${i}`).toBeLessThan(2e-5));
    // The reference's points all lie on the sphere of radius eps (1 - 1e-6) (1.999997 to 1.999998).
    const best = tf.tensor4d(step.value.best, [n, h, w, c]);
    norms(best, tf.tensor4d(x, [n, h, w, c])).l1.forEach((v) => expect(v).toBeCloseTo(2, 4));
  });
});

describe('square in the language', () => {
  it('evaluate MODEL against square norm=linf eps=0.3 queries=200 runs end to end', async () => {
    await selectBackend('wasm');
    const src = `dataset mnist subset train=200 test=50
train epochs=1
model m = mlp width=0.25
evaluate m against square norm=linf eps=0.3 queries=200, nattack eps=0.3 steps=3 population=10
smooth s = m sd=1/4 m=4 seed=1
evaluate s against square norm=l2 eps=2 queries=20
`;
    const dag = await plan(src);
    const ops = createOps('wasm');
    const arts = new Map<string, Artifact>();
    for (const n of dag.nodes) {
      const impl = await ops.get(n.op);
      const inputs: Record<string, Artifact | Artifact[]> = {};
      for (const [role, v] of Object.entries(n.inputs)) inputs[role] = Array.isArray(v) ? v.map((id) => arts.get(id)!) : arts.get(v)!;
      const res = await impl({
        node: n,
        params: jsonSafe(n.params) as OpParams<OpName>,
        inputs,
        progress: () => {},
        log: () => {},
        backend: 'wasm',
        signal: new AbortController().signal,
      });
      arts.set(n.id, res.artifact);
    }
    const robust = dag.nodes.filter((n) => n.op === 'robust');
    const attackOf = (n: (typeof robust)[number]) => (n.params as { attack: { attack: string } }).attack.attack;
    expect(robust.map(attackOf).sort()).toEqual(['nattack', 'square', 'square']);
    // Against the smoothed classifier too (queried through its base's logits, judged by its vote).
    const smoothed = robust.find((n) => (n.params as { target: { kind: string } }).target.kind === 'smooth')!;
    expect(attackOf(smoothed)).toBe('square');
    const sl2 = arts.get(smoothed.id)!.tensors.normL2!.data as Float32Array;
    for (const v of sl2) expect(v).toBeLessThanOrEqual(2 * (1 + 1e-5) + 1e-6);
    expect((arts.get(smoothed.id)!.summary as { n: number }).n).toBe(50);
    robust.splice(robust.indexOf(smoothed), 1);
    const sq = robust.find((n) => attackOf(n) === 'square')!;
    expect((sq.params as { attack: { params: Record<string, unknown> } }).attack.params).toMatchObject({ norm: 'linf', queries: 200 });
    const predict = dag.nodes.find((n) => n.op === 'predict' && (n.params as { classifier: { kind: string } }).classifier.kind === 'model')!;
    const clean = (arts.get(predict.id)!.summary as { accuracy: number }).accuracy;
    for (const n of robust) {
      const s = arts.get(n.id)!.summary as { accuracy: number; n: number; meanNorm: { linf: number } };
      expect(s.n).toBe(50);
      expect(s.accuracy).toBeLessThanOrEqual(clean);
      const linf = arts.get(n.id)!.tensors.normLinf!.data as Float32Array;
      for (const v of linf) expect(v).toBeLessThanOrEqual(0.3 * (1 + 1e-5) + 1e-6);
    }
    // An MLP barely trained on 200 images falls to 200 queries at eps 0.3 on most images.
    const acc = (arts.get(sq.id)!.summary as { accuracy: number }).accuracy;
    expect(acc).toBeLessThan(clean);
  }, 600_000);
});
