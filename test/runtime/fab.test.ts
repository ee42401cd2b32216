// FAB-T (src/runtime/attacks/fab.ts): the box-constrained hyperplane projections against hand
// computations and brute force, the attack on linear models against closed forms (the minimal
// distance, and the exact point FAB's iteration reaches), its guarantees on a trained model
// (budget, [0, 1], misclassified images untouched, seeded reruns identical), and the language's
// `evaluate M against fabt` end to end.
import { beforeAll, describe, expect, it } from 'vitest';
import { jsonSafe } from '../../src/compiler/jsonsafe.js';
import type { Artifact } from '../../src/runtime/artifact.js';
import { norms, type AttackParams, type AttackTarget } from '../../src/runtime/attacks/base.js';
import { fabProjectL1, fabProjectL2, fabProjectLinf } from '../../src/runtime/attacks/fab.js';
import { ATTACK_IMPLS, ATTACK_STEPS } from '../../src/runtime/attacks/index.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { modelTarget } from '../../src/runtime/eval/classifier.js';
import { createOps } from '../../src/runtime/ops/registry.js';
import { datasetOp } from '../../src/runtime/ops/dataset.js';
import { normals, rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { imageBatch, labelBatch, range } from '../../src/runtime/training/batches.js';
import { train } from '../../src/runtime/training/train.js';
import { plan } from '../helpers/compile.js';
import { fakeContext, linear, trainSettings } from '../helpers/runtime.js';

type Norm = 'linf' | 'l2' | 'l1';
const PROJECT = { linf: fabProjectLinf, l2: fabProjectL2 };
const normOf = (v: ArrayLike<number>, n: Norm) =>
  n === 'linf' ? Math.max(...Array.from(v, Math.abs)) : n === 'l1' ? Array.from(v).reduce((s, x) => s + Math.abs(x), 0) : Math.hypot(...Array.from(v));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i]!, 0);

/**
 * The least norm of z - t over z in [0, 1]^k with <w, z> = b, by exhaustive search: a grid of
 * `steps` + 1 values on every coordinate but the one with the largest |w|, which is solved for.
 */
function bruteForce(t: number[], w: number[], b: number, norm: Norm, steps: number): number {
  const k = t.length;
  const j = w.reduce((m, v, i) => (Math.abs(v) > Math.abs(w[m]!) ? i : m), 0);
  const others = range(0, k).filter((i) => i !== j);
  let best = Infinity;
  // Odometer over the grid of the other coordinates.
  const s = new Array<number>(others.length).fill(0);
  for (;;) {
    let rest = b;
    let acc = 0;
    others.forEach((i, m) => {
      const z = s[m]! / steps;
      rest -= w[i]! * z;
      acc = norm === 'linf' ? Math.max(acc, Math.abs(z - t[i]!)) : acc + (z - t[i]!) ** 2;
    });
    const zj = rest / w[j]!;
    if (zj >= 0 && zj <= 1) {
      acc = norm === 'linf' ? Math.max(acc, Math.abs(zj - t[j]!)) : Math.sqrt(acc + (zj - t[j]!) ** 2);
      best = Math.min(best, acc);
    }
    let m = 0;
    while (m < s.length && s[m] === steps) s[m++] = 0;
    if (m === s.length) return best;
    s[m]!++;
  }
}

/**
 * The least l_1 norm of z - t over z in [0, 1]^k with <w, z> = b, exactly: a linear program whose
 * optimum lies at a vertex, where every coordinate but one sits at 0, 1 or t_i and that one is
 * solved for. Enumerates all of them (k 3^(k-1)); Infinity when b is out of reach.
 */
function bruteForceL1(t: number[], w: number[], b: number): number {
  const k = t.length;
  let best = Infinity;
  for (let j = 0; j < k; j++) {
    if (w[j] === 0) continue;
    for (let code = 0; code < 3 ** (k - 1); code++) {
      let rest = b;
      let cost = 0;
      for (let i = 0, c = code; i < k; i++) {
        if (i === j) continue;
        const z = [t[i]!, 0, 1][c % 3]!;
        c = Math.floor(c / 3);
        rest -= w[i]! * z;
        cost += Math.abs(z - t[i]!);
      }
      const zj = rest / w[j]!;
      if (zj >= -1e-12 && zj <= 1 + 1e-12) best = Math.min(best, cost + Math.abs(zj - t[j]!));
    }
  }
  return best;
}

// Class 1 wins when f(x) = 0.5*x0 - 0.25*x1 + 0.75*x2 - 1*x3 - 0.1 > 0.
const D = [0.5, -0.25, 0.75, -1];
const LIN = linear(
  D.map((d) => [0, d]),
  [0, -0.1],
);
const XS = [0.3, 0.6, 0.2, 0.5, 0.4, 0.5, 0.5, 0.6];
const X = () => tf.tensor4d(XS, [2, 2, 2, 1]);
const Y = Int32Array.from([0, 0]);

/**
 * FAB on a linear model, reduced to one dimension: every point it visits is x0 + c d*, d* the
 * minimal displacement to the boundary (both projections are multiples of d*), so the run is the
 * scalar recurrence below; it returns the smallest c > 1 (adversarial) visited.
 */
function linearFabScale(steps: number, o: { eta: number; beta: number; alphaMax: number }): number {
  let c = 0;
  let best = Infinity;
  for (let i = 0; i < steps; i++) {
    const a1 = Math.max(Math.abs(1 - c), 1e-8);
    const alpha = Math.min(a1 / (a1 + 1), o.alphaMax);
    c = (c + o.eta * (1 - c)) * (1 - alpha) + o.eta * alpha;
    if (c > 1) {
      best = Math.min(best, c);
      c *= o.beta;
    }
  }
  return best;
}

describe('FAB projections onto a hyperplane within the [0, 1] box', () => {
  it('hand-computed cases: box inactive, box active, hyperplane out of reach', () => {
    // <w, t> = 1.5, needed 1: l_inf moves both coordinates 1/6 down, l_2 along w.
    Array.from(fabProjectLinf([0.5, 0.5], [1, 2], 1)).forEach((v) => expect(v).toBeCloseTo(-1 / 6, 12));
    expect(Array.from(fabProjectL2([0.5, 0.5], [1, 2], 1))).toEqual([expect.closeTo(-0.1, 12), expect.closeTo(-0.2, 12)]);
    // The first coordinate can only fall 0.1: the second takes the rest (both norms).
    for (const p of [fabProjectLinf, fabProjectL2])
      expect(Array.from(p([0.1, 0.9], [1, 1], 0.2))).toEqual([expect.closeTo(-0.1, 12), expect.closeTo(-0.7, 12)]);
    // <w, z> <= 2 on the box: b = 3 is out of reach, and the result is the corner (1, 1).
    for (const p of [fabProjectLinf, fabProjectL2]) expect(Array.from(p([0.5, 0.5], [1, 1], 3))).toEqual([0.5, 0.5]);
    // Points on the hyperplane stay; a coordinate with zero weight never moves.
    for (const p of [fabProjectLinf, fabProjectL2]) {
      expect(Array.from(p([0.2, 0.7], [1, 1], 0.9)).map((v) => Math.abs(v) < 1e-12)).toEqual([true, true]);
      expect(p([0.5, 0.5, 0.5], [1, 0, 1], 0.4)[1]).toBe(0);
    }
  });

  for (const norm of ['linf', 'l2'] as const) {
    it(`${norm}: on random feasible cases in 2 and 3 dimensions, feasible and as short as brute force finds`, () => {
      const r = rng(11, `fab-proj-${norm}`);
      for (let c = 0; c < 40; c++) {
        const k = c < 20 ? 2 : 3;
        const t = Array.from({ length: k }, () => r());
        const w = Array.from(normals(k, r));
        const zStar = Array.from({ length: k }, () => r()); // a feasible point: b is reachable
        const b = dot(w, zStar);
        const d = PROJECT[norm](t, w, b);
        const z = t.map((v, i) => v + d[i]!);
        expect(Math.abs(dot(w, z) - b)).toBeLessThan(1e-9);
        for (const v of z) {
          expect(v).toBeGreaterThanOrEqual(-1e-12);
          expect(v).toBeLessThanOrEqual(1 + 1e-12);
        }
        const brute = bruteForce(t, w, b, norm, k === 2 ? 100000 : 800);
        expect(normOf(d, norm)).toBeLessThanOrEqual(brute + 1e-9);
        expect(normOf(d, norm)).toBeGreaterThan(brute - (k === 2 ? 1e-4 : 5e-3));
      }
    });
  }

  it('l1: hand-computed cases (largest |w| first, then the next; out of reach: the corner; zero weights stay)', () => {
    // <w, t> = 1.5, needed 1: only the coordinate with the largest |w| moves, by 0.5 / 2.
    expect(Array.from(fabProjectL1([0.5, 0.5], [1, 2], 1))).toEqual([0, -0.25]);
    // Needed 0.6 lower with w = (1, 3): the second coordinate can fall only 0.1 (0.3), the first takes 0.3.
    expect(Array.from(fabProjectL1([0.5, 0.1], [1, 3], 0.2))).toEqual([expect.closeTo(-0.3, 12), expect.closeTo(-0.1, 12)]);
    // A negative weight: <w, t> = -0.5 must rise to 0.3, by 0.8 through w = -2 (its coordinate falls 0.4).
    expect(Array.from(fabProjectL1([0.5, 0.5], [1, -2], 0.3)).map((v) => v + 0)).toEqual([0, expect.closeTo(-0.4, 12)]);
    // <w, z> <= 2 on the box: b = 3 is out of reach, the result is the corner (1, 1).
    expect(Array.from(fabProjectL1([0.5, 0.5], [1, 1], 3))).toEqual([0.5, 0.5]);
    // Points on the hyperplane stay; a coordinate with zero weight never moves, nor does anything when w = 0.
    expect(Array.from(fabProjectL1([0.2, 0.7], [1, 1], 0.9)).map((v) => Math.abs(v) < 1e-12)).toEqual([true, true]);
    expect(fabProjectL1([0.5, 0.5, 0.5], [1, 0, 1], 0.4)[1]).toBe(0);
    expect(Array.from(fabProjectL1([0.3, 0.6], [0, 0], 1))).toEqual([0, 0]);
  });

  it('l1: on random cases in 1 to 8 dimensions (powers of 2 included), on the hyperplane, in the box, exactly as short as the exact LP optimum', () => {
    const r = rng(12, 'fab-proj-l1');
    for (let c = 0; c < 400; c++) {
      const k = 1 + (c % 8);
      const t = Array.from({ length: k }, () => (r() < 0.15 ? Math.round(r()) : r()));
      const w = Array.from(normals(k, r), (v) => (r() < 0.1 ? 0 : v));
      // Mostly reachable b (a point of the box), sometimes anything.
      const b =
        c % 5 === 4
          ? 4 * (r() - 0.5)
          : dot(
              w,
              Array.from({ length: k }, () => r()),
            );
      const d = fabProjectL1(t, w, b);
      const z = t.map((v, i) => v + d[i]!);
      for (const v of z) {
        expect(v).toBeGreaterThanOrEqual(-1e-12);
        expect(v).toBeLessThanOrEqual(1 + 1e-12);
      }
      const brute = bruteForceL1(t, w, b);
      if (brute < Infinity) {
        expect(Math.abs(dot(w, z) - b)).toBeLessThan(1e-9);
        expect(normOf(d, 'l1')).toBeCloseTo(brute, 9);
      } else {
        // Out of reach: the box corner that moves <w, .> furthest towards b (each live coordinate at a bound).
        const towards = Math.sign(b - dot(w, t));
        z.forEach((v, i) => expect(v).toBe(w[i] === 0 ? t[i] : Math.sign(w[i]!) === towards ? 1 : 0));
      }
    }
  });
});

describe('FAB-T on linear models (closed forms)', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  for (const norm of ['linf', 'l2', 'l1'] as const) {
    it(`${norm}: lands just past the boundary at the minimal distance, where the 1-D recurrence says`, () => {
      const xs = X().dataSync();
      const eps = 1;
      for (const o of [
        { eta: 1.05, beta: 0.9, alphaMax: 0.1, steps: 100 },
        // l_1 moves only x3 (|D| largest), from 0.5 on image 0 by up to eta 0.45: eta 1.2 would hit the box.
        { eta: norm === 'l1' ? 1.1 : 1.2, beta: 0.7, alphaMax: 0.3, steps: 7 },
      ]) {
        const p: AttackParams = { eps, norm, steps: o.steps, eta: o.eta, beta: o.beta, alpha_max: o.alphaMax };
        const adv = ATTACK_IMPLS.fabt!(LIN, X(), Y, p, rng(0));
        const a = adv.dataSync();
        const scale = linearFabScale(o.steps, o);
        for (let img = 0; img < 2; img++) {
          const x0 = Array.from(xs.subarray(img * 4, img * 4 + 4));
          const f = dot(D, x0) - 0.1; // negative: class 0
          // Minimal displacement: l_inf moves every coordinate |f| / ||D||_1 along sign(D); l_2 along D;
          // l_1 only the coordinate of the largest |D| (x3), by |f| / ||D||_inf.
          const l1 = D.reduce((s, u) => s + Math.abs(u), 0);
          const top = D.reduce((m, v, i) => (Math.abs(v) > Math.abs(D[m]!) ? i : m), 0);
          const dStar = {
            linf: D.map((v) => (Math.sign(v) * -f) / l1),
            l2: D.map((v) => (v * -f) / dot(D, D)),
            l1: D.map((v, i) => (i === top ? -f / v : 0)),
          }[norm];
          const dist = { linf: -f / l1, l2: -f / Math.hypot(...D), l1: -f / Math.max(...D.map(Math.abs)) }[norm];
          const got = Array.from(a.subarray(img * 4, img * 4 + 4));
          got.forEach((v, i) => expect(v).toBeCloseTo(x0[i]! + scale * dStar[i]!, 5));
          const moved = normOf(
            got.map((v, i) => v - x0[i]!),
            norm,
          );
          expect(moved / dist).toBeGreaterThan(1);
          if (o.steps === 100) expect(moved / dist).toBeLessThan(1.01); // the defaults: within 1% of the minimum
          expect(dot(D, got) - 0.1).toBeGreaterThan(0); // adversarial
        }
        expect(LIN.predict(adv, rng(0))).toEqual(Int32Array.from([1, 1]));
      }
    });
  }

  it('a budget below the distance found leaves the images unchanged; so do images already misclassified', () => {
    const small = ATTACK_IMPLS.fabt!(LIN, X(), Y, { eps: 0.1, norm: 'linf', steps: 20 }, rng(0));
    // Image 1 needs 0.1 * 1.005 > 0.1, image 0 needs 0.18: neither counts.
    expect(Array.from(small.dataSync())).toEqual(Array.from(X().dataSync()));
    const wrong = ATTACK_IMPLS.fabt!(LIN, X(), Int32Array.from([1, 1]), { eps: 1, norm: 'l2', steps: 20 }, rng(0));
    expect(Array.from(wrong.dataSync())).toEqual(Array.from(X().dataSync()));
  });
});

describe('FAB-T on a trained model', () => {
  let toy: Artifact;
  let model: AttackTarget;
  beforeAll(async () => {
    await selectBackend('wasm');
    toy = (await datasetOp(fakeContext({ name: 'toy', train: 400, test: 100, val: '1/10', seed: 0, shape: [6, 6, 1], classes: 4 }))).artifact;
    const s = toy.summary as { mean: number[]; std: number[] };
    const r = await train({
      spec: {
        arch: 'mlp',
        width: 0.25,
        shape: [6, 6, 1],
        classes: 4,
        input: null,
        weightBits: null,
        activationBits: null,
        noise: {},
        mean: s.mean,
        std: s.std,
      },
      settings: trainSettings({ epochs: 2 }),
      method: { name: 'standard' },
      data: toy,
      progress: () => {},
    });
    model = modelTarget(r.model);
  }, 120_000);

  const batch = () => ({ x: imageBatch(toy.tensors.testX!, range(0, 30)), y: labelBatch(toy.tensors.testY!, range(0, 30)) });

  for (const [norm, eps] of [
    ['linf', 0.1],
    ['l2', 0.6],
    ['l1', 1.5],
  ] as const) {
    it(`${norm}: in [0, 1], within eps, every changed image fooled, misclassified ones untouched; reruns identical`, () => {
      const { x, y } = batch();
      const p: AttackParams = { eps, norm, steps: 15, restarts: 2, targets: 3 };
      const adv = ATTACK_IMPLS.fabt!(model, x, y, p, rng(5));
      const a = adv.dataSync();
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...a)).toBeLessThanOrEqual(1);
      const d = norms(adv, x)[norm];
      const clean = model.predict(x, rng(0));
      const pred = model.predict(adv, rng(0));
      let fooled = 0;
      d.forEach((v, i) => {
        expect(v).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-6);
        if (clean[i] !== y[i]) expect(v).toBe(0);
        if (v > 0) {
          expect(pred[i]).not.toBe(y[i]);
          fooled++;
        }
      });
      expect(fooled).toBeGreaterThan(0);
      const again = ATTACK_IMPLS.fabt!(model, x, y, p, rng(5));
      expect(Buffer.from(again.dataSync().buffer).equals(Buffer.from(a.buffer))).toBe(true);
    });
  }

  it('holds no tensors: none left after a run, nor after one stopped between steps', () => {
    const { x, y } = batch();
    const before = tf.memory().numTensors;
    ATTACK_IMPLS.fabt!(model, x, y, { eps: 0.1, norm: 'l2', steps: 3, restarts: 2, targets: 2 }, rng(2)).dispose();
    expect(tf.memory().numTensors).toBe(before);
    const g = ATTACK_STEPS.fabt!(model, x, y, { eps: 0.1, norm: 'linf', steps: 3, targets: 2 }, rng(2));
    expect(g.next().value).toBeCloseTo(1 / 6, 10);
    g.next();
    g.return(undefined as never);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('more target classes fool a superset of the images (the runs for the first targets are the same)', () => {
    const { x, y } = batch();
    const fooled = (targets: number) => {
      const adv = ATTACK_IMPLS.fabt!(model, x, y, { eps: 0.05, norm: 'linf', steps: 10, targets }, rng(1));
      return norms(adv, x).linf.map((v) => (v > 0 ? 1 : 0));
    };
    const one = fooled(1);
    const three = fooled(3);
    one.forEach((v, i) => v && expect(three[i]).toBe(1));
    expect(three.reduce((s, v) => s + v, 0)).toBeGreaterThanOrEqual(one.reduce((s, v) => s + v, 0));
  });
});

describe('fabt in the language', () => {
  it('fabt, square and autoattack take norm=l1; the l_1 autoattack key carries its code version 2', async () => {
    const dag = await plan(`dataset mnist subset train=200 test=50
train epochs=1
model m = mlp width=0.25
evaluate m against fabt norm=l1 eps=5, square norm=l1 eps=5, autoattack norm=l1 eps=5
`);
    const attacks = dag.nodes
      .filter((n) => n.op === 'robust')
      .map((n) => (n.params as { attack: { attack: string; params: { norm: string }; version?: number } }).attack);
    expect(attacks.map((a) => [a.attack, a.params.norm]).sort()).toEqual([
      ['autoattack', 'l1'],
      ['fabt', 'l1'],
      ['square', 'l1'],
    ]);
    expect(attacks.find((a) => a.attack === 'autoattack')!.version).toBe(2);
    expect(attacks.find((a) => a.attack === 'fabt')!.version).toBeUndefined();
  });

  it('evaluate MODEL against fabt norm=linf eps=0.3 runs end to end', async () => {
    await selectBackend('wasm');
    const dag = await plan(`dataset mnist subset train=200 test=50
train epochs=1
model m = mlp width=0.25
evaluate m against fabt norm=linf eps=0.3 steps=10 targets=2
`);
    const robust = dag.nodes.find((n) => n.op === 'robust')!;
    expect(robust.params).toMatchObject({ attack: { attack: 'fabt' } });
    const ops = createOps('wasm');
    const artifacts = new Map<string, Artifact>();
    for (const n of dag.nodes) {
      const inputs: Record<string, Artifact | Artifact[]> = {};
      for (const [role, v] of Object.entries(n.inputs)) inputs[role] = Array.isArray(v) ? v.map((id) => artifacts.get(id)!) : artifacts.get(v)!;
      const impl = await ops.get(n.op);
      const res = await impl({ ...fakeContext(jsonSafe(n.params), inputs), node: n, backend: 'wasm' });
      artifacts.set(n.id, res.artifact);
    }
    const out = artifacts.get(robust.id)!;
    const s = out.summary as { accuracy: number; n: number; attack: string };
    expect(s.attack).toBe('fabt');
    expect(s.n).toBe(50);
    const linf = out.tensors.normLinf!.data as Float32Array;
    for (const v of linf) expect(v).toBeLessThanOrEqual(0.3 + 1e-6);
    // Robust accuracy is the fraction classified correctly after the attack: below clean accuracy when anything was fooled.
    const correct = out.tensors.correct!.data as Uint8Array;
    linf.forEach((v, i) => v > 0 && expect(correct[i]).toBe(0));
  }, 300_000);
});
