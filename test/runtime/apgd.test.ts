// APGD and APGD-T (src/runtime/attacks/apgd.ts) against independent computations: the DLR losses on
// hand-written logits, the checkpoint schedule against the paper's p_j and the reference's counter,
// the l_1-ball-and-box projection against a bisection, and on linear models the closed-form
// worst case of the margin; then budgets, [0, 1], determinism, and a pipeline in the language.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  apgdCheckpoints,
  apgdL1Checkpoints,
  apgdRun,
  dlrLoss,
  dlrTargetedLoss,
  apgdLoss,
  apgdSteps,
  halvings,
  projectL1BoxRows,
  type ApgdRun,
} from '../../src/runtime/attacks/apgd.js';
import { norms, type AttackParams, type AttackTarget } from '../../src/runtime/attacks/base.js';
import { ATTACK_IMPLS } from '../../src/runtime/attacks/index.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { rng } from '../../src/runtime/rng.js';
import { jsonSafe } from '../../src/compiler/jsonsafe.js';
import { plan } from '../helpers/compile.js';
import { linear, runPipeline } from '../helpers/runtime.js';
import { tf } from '../../src/runtime/tf.js';

const vals = (t: tf.Tensor) => Array.from(t.dataSync());

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('DLR losses on hand-written logits', () => {
  const z = () => tf.tensor2d([1, 4, 2, 3, 0, 5, 1, 2, 0.5, 3], [2, 5]);

  it('untargeted: -(z_y - max other) / (z_pi1 - z_pi3)', () => {
    // Row 0 sorted: 4 3 2 1 0. y = 1 (the top): -(4 - 3)/(4 - 2) = -0.5; y = 0: -(1 - 4)/(4 - 2) = 1.5.
    // Row 1 sorted: 5 3 2 1 0.5. y = 0 (the top): -(5 - 3)/(5 - 2) = -2/3; y = 3: -(0.5 - 5)/3 = 1.5.
    expect(vals(dlrLoss(z(), Int32Array.from([1, 0])))[0]).toBeCloseTo(-0.5, 6);
    const l = vals(dlrLoss(z(), Int32Array.from([0, 3])));
    expect(l[0]).toBeCloseTo(1.5, 6);
    expect(l[1]).toBeCloseTo(1.5, 6);
    expect(vals(dlrLoss(z(), Int32Array.from([1, 0])))[1]).toBeCloseTo(-2 / 3, 6);
  });

  it('targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2)', () => {
    // Row 0: y = 1, t = 3: -(4 - 3)/(4 - (2 + 1)/2) = -0.4. Row 1: y = 0, t = 4: -(5 - 3)/(5 - (2 + 1)/2) = -4/7.
    const l = vals(dlrTargetedLoss(z(), Int32Array.from([1, 0]), Int32Array.from([3, 4])));
    expect(l[0]).toBeCloseTo(-0.4, 6);
    expect(l[1]).toBeCloseTo(-4 / 7, 6);
  });

  it('gradients flow to the ranked logits only (the masks are constants)', () => {
    // d/dz of -(z_y - z_o)/(z_1 - z_3) at row 0, y = 0: z_y = 1, z_o = z_1 = 4 (class 1), z_3 = 2 (class 2).
    // L = -(z0 - z1)/(z1 - z2): dL/dz0 = -1/2, dL/dz1 = 1/2 + (z0 - z1)/(z1 - z2)^2 = 0.5 - 0.75, dL/dz2 = -(z0 - z1)/(2^2) = 0.75.
    const g = tf.grad((x: tf.Tensor) => tf.sum(dlrLoss(x as tf.Tensor2D, Int32Array.from([0]))))(tf.tensor2d([[1, 4, 2, 3, 0]]));
    const v = vals(g);
    [-0.5, -0.25, 0.75, 0, 0].forEach((e, i) => expect(v[i]).toBeCloseTo(e, 6));
  });

  it('DLR needs 3 classes, targeted DLR 4', () => {
    expect(() => dlrLoss(tf.tensor2d([[1, 2]]), Int32Array.from([0]))).toThrow(/at least 3 classes/);
    expect(() => apgdLoss('dlr-targeted', tf.tensor2d([[1, 2, 3]]), Int32Array.from([0]), Int32Array.from([1]))).toThrow(/at least 4 classes/);
  });
});

describe('checkpoints', () => {
  it("for 100 iterations: 22, 41, 57, 70, 80, 87, 93, 99 (the paper's ceil(p_j N))", () => {
    expect(apgdCheckpoints(100)).toEqual([22, 41, 57, 70, 80, 87, 93, 99]);
    const p = [0, 0.22];
    while (p.length < 9) p.push(p.at(-1)! + Math.max(p.at(-1)! - p.at(-2)! - 0.03, 0.06));
    expect(apgdCheckpoints(100)).toEqual(p.slice(1).map((v) => Math.ceil(v * 100 - 1e-9)));
  });

  it("equal the reference's counter (counter3 == k, then k = max(k - size_decr, n_iter_min)) for other N", () => {
    for (const N of [1, 2, 5, 10, 37, 250, 1000]) {
      let k = Math.max(Math.trunc(0.22 * N), 1);
      let counter = 0;
      const at: number[] = [];
      for (let i = 0; i < N; i++) {
        counter++;
        if (counter === k) {
          at.push(i + 1);
          k = Math.max(k - Math.max(Math.trunc(0.03 * N), 1), Math.max(Math.trunc(0.06 * N), 1));
          counter = 0;
        }
      }
      expect(apgdCheckpoints(N), `N = ${N}`).toEqual(at);
    }
    expect(apgdL1Checkpoints(100)).toEqual([4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 68, 72, 76, 80, 84, 88, 92, 96, 100]);
    expect(apgdL1Checkpoints(10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('halve where at most rho of the window raised the loss, or where the step and the best loss stood still', () => {
    const f = (...v: number[]) => Float32Array.from(v);
    // Four images over six iterations; the checkpoint after iteration 5 looks at the last 4 (threshold 0.75 * 4 = 3).
    const losses = [f(1, 1, 1, 1), f(2, 2, 2, 2), f(3, 3, 3, 3), f(4, 3, 4, 4), f(5, 5, 5, 5), f(6, 6, 6, 6)];
    const last = { reduced: Uint8Array.from([1, 1, 0, 0]), lossAtCheck: f(0, 0, 6, 5), lossBest: f(6, 6, 6, 6) };
    // 0: 4 rises, halved last time: keep. 1: 3 rises (3 -> 3 is none): halve. 2: 4 rises, but not halved
    // last time and the best loss is where it was: halve. 3: the same, but the best loss rose: keep.
    expect(Array.from(halvings(losses, 5, 4, 0.75, last))).toEqual([0, 1, 1, 0]);
    expect(Array.from(halvings(losses, 5, 4, 0.5, last))).toEqual([0, 0, 1, 0]);
    // The first window compares its first loss with 0: negative (DLR) losses rising once of two
    // count 1 <= 1.5 (halve); positive ones 2 > 1.5 (keep).
    const first = { reduced: Uint8Array.from([1, 1]), lossAtCheck: f(0, 0), lossBest: f(0, 0) };
    expect(Array.from(halvings([f(-1, 1), f(-0.5, 2)], 1, 2, 0.75, first))).toEqual([1, 0]);
  });
});

/** The projection of x + d onto {||v - x||_1 <= eps} ∩ [0,1]^n by bisection on the KKT threshold. */
function bisectProjection(x: number[], d: number[], eps: number): number[] {
  const at = (lam: number) => x.map((xi, j) => Math.min(1, Math.max(0, xi + Math.sign(d[j]!) * Math.max(0, Math.abs(d[j]!) - lam))));
  const l1 = (v: number[]) => v.reduce((s, vi, j) => s + Math.abs(vi - x[j]!), 0);
  if (l1(at(0)) <= eps) return at(0);
  let lo = 0;
  let hi = Math.max(...d.map(Math.abs));
  for (let it = 0; it < 200; it++) {
    const mid = (lo + hi) / 2;
    if (l1(at(mid)) > eps) lo = mid;
    else hi = mid;
  }
  return at(hi);
}

describe('l_1 ball and box projection', () => {
  it('matches a bisection on the threshold, is feasible, and no feasible point is closer', () => {
    const r = rng(5);
    for (let trial = 0; trial < 40; trial++) {
      const dim = 1 + Math.floor(r() * 12);
      const x = Array.from({ length: dim }, () => (trial % 3 === 0 ? Math.round(r()) : r()));
      const d = Array.from({ length: dim }, () => (r() - 0.5) * 3);
      const eps = r() * 2;
      const delta = projectL1BoxRows(x, d, 1, dim, eps);
      const v = x.map((xi, j) => xi + d[j]! + delta[j]!);
      const ref = bisectProjection(x, d, eps);
      v.forEach((vi, j) => expect(vi).toBeCloseTo(ref[j]!, 5));
      expect(v.reduce((s, vi, j) => s + Math.abs(vi - x[j]!), 0)).toBeLessThanOrEqual(eps + 1e-5);
      v.forEach((vi) => expect(vi >= -1e-6 && vi <= 1 + 1e-6).toBe(true));
      // Random feasible points (convex combinations of v with box points shrunk into the ball) are never closer.
      const dist = (u: number[]) => u.reduce((s, ui, j) => s + (ui - x[j]! - d[j]!) ** 2, 0);
      for (let k = 0; k < 20; k++) {
        const u = x.map((xi) => xi + (r() - xi) * 0.5);
        const n1 = u.reduce((s, ui, j) => s + Math.abs(ui - x[j]!), 0);
        const w = n1 > eps ? eps / n1 : 1;
        const f = u.map((ui, j) => x[j]! + (ui - x[j]!) * w);
        expect(dist(f)).toBeGreaterThanOrEqual(dist(v) - 1e-6);
      }
    }
  });
});

// Class 1 wins when d . x - 0.1 > 0, d = W[:,1] - W[:,0] = (0.5, -0.25, 0.75, -1).
const D = [0.5, -0.25, 0.75, -1];
const LIN = linear(
  D.map((v) => [0, v]),
  [0, -0.1],
);
// A is not fooled at any budget below; B is at its worst case; C is misclassified when clean.
const XS = [
  [0.3, 0.6, 0.2, 0.5],
  [0.4, 0.5, 0.5, 0.6],
  [0.95, 0.05, 0.9, 0.1],
];
const X = () => tf.tensor4d(XS.flat(), [3, 2, 2, 1]);
const Y = Int32Array.from([0, 0, 0]);
const margin = (x: number[]) => D.reduce((s, d, i) => s + d * x[i]!, -0.1);
const rows = (t: tf.Tensor) => {
  const v = vals(t);
  return XS.map((_, i) => v.slice(i * 4, i * 4 + 4));
};

/** The worst case of the margin d . x over the budget and the box, in closed form. */
const WORST: Record<'linf' | 'l2' | 'l1', (x: number[], eps: number) => number[]> = {
  linf: (x, eps) => x.map((v, i) => Math.min(1, Math.max(0, v + eps * Math.sign(D[i]!)))),
  l2: (x, eps) => x.map((v, i) => v + (eps * D[i]!) / Math.hypot(...D)), // (the box is not reached in these cases)
  l1: (x, eps) => x.map((v, i) => (i === 3 ? Math.max(0, v - eps) : v)), // all of it on |d| = 1, the largest
};

describe('APGD on a linear model reaches the closed-form worst case', () => {
  const cases: Array<['linf' | 'l2' | 'l1', number, number]> = [
    ['linf', 0.15, 1e-6],
    ['l2', 0.3, 2e-4],
    ['l1', 0.3, 1e-5],
  ];
  for (const [norm, eps, tol] of cases) {
    it(`${norm}: the best point of a run is x + the worst-case perturbation; the attack returns it where it fools, x elsewhere`, () => {
      // A and B only: the best point of a single run (C too: the run itself does not look at clean predictions).
      const run: ApgdRun = { x0: X(), y: Y, loss: 'ce', eps, norm, steps: 100, rho: 0.75 };
      const res = apgdRun(LIN, run, rng(1));
      const best = rows(res.best);
      XS.forEach((x, i) => {
        const w = WORST[norm](x, eps);
        if (norm !== 'linf' && i === 2) return; // C's l_2 and l_1 worst cases meet the box: not this closed form
        best[i]!.forEach((v, j) => expect(Math.abs(v - w[j]!), `image ${i} coordinate ${j}: ${best[i]}`).toBeLessThan(tol));
      });
      // The loss it reports is the CE at that point: softplus(margin).
      [0, 1].forEach((i) => expect(res.lossBest[i]!).toBeCloseTo(Math.log1p(Math.exp(margin(WORST[norm](XS[i]!, eps)))), 2));
      expect(Array.from(res.fooled.subarray(0, 2))).toEqual([0, 1]);
      // The attack: B's result is adversarial and at the worst case; A (never fooled) and C (wrong when clean) come back unchanged.
      const adv = rows(ATTACK_IMPLS.apgd!(LIN, X(), Y, { eps, norm, steps: 100, loss: 'ce' }, rng(1)));
      expect(margin(adv[1]!)).toBeGreaterThan(0);
      adv[1]!.forEach((v, j) => expect(Math.abs(v - WORST[norm](XS[1]!, eps)[j]!)).toBeLessThan(tol));
      expect(adv[0]).toEqual(Array.from(Float32Array.from(XS[0]!)));
      expect(adv[2]).toEqual(Array.from(Float32Array.from(XS[2]!)));
    });
  }
});

/** A fixed random linear classifier with 10 classes on 4x4x1 images, and a batch for it. */
function tenClasses(seed: number): { t: AttackTarget; x: tf.Tensor4D; y: Int32Array } {
  const r = rng(seed);
  const W = Array.from({ length: 16 }, () => Array.from({ length: 10 }, () => (r() - 0.5) * 4));
  const t = linear(W, new Array(10).fill(0));
  const x = tf.tensor4d(
    Array.from({ length: 12 * 16 }, () => r()),
    [12, 4, 4, 1],
  );
  // Labels: the clean prediction for most images; three are given another label (wrong when clean).
  const y = Int32Array.from(t.predict(x, rng(0)), (v, i) => (i % 4 === 3 ? (v + 1) % 10 : v));
  return { t, x, y };
}

describe('APGD and APGD-T on a 10-class model', () => {
  const cases: Array<[string, AttackParams, 'linf' | 'l2' | 'l1']> = [
    ['apgd', { eps: 0.1, norm: 'linf', steps: 20, loss: 'ce' }, 'linf'],
    ['apgd', { eps: 0.1, norm: 'linf', steps: 20, loss: 'dlr', restarts: 2 }, 'linf'],
    ['apgd', { eps: 0.4, norm: 'l2', steps: 20, loss: 'dlr' }, 'l2'],
    ['apgd', { eps: 1, norm: 'l1', steps: 20, loss: 'ce' }, 'l1'],
    ['apgdt', { eps: 0.1, norm: 'linf', steps: 10, targets: 3 }, 'linf'],
    ['apgdt', { eps: 0.4, norm: 'l2', steps: 10, targets: 20 }, 'l2'],
    ['apgdt', { eps: 1, norm: 'l1', steps: 10, targets: 2, restarts: 2 }, 'l1'],
  ];
  for (const [name, p, norm] of cases) {
    it(`${name} ${JSON.stringify(p)}: in [0,1] and the budget, changed images fooled, wrong ones untouched, seeded reruns identical`, () => {
      const { t, x, y } = tenClasses(7);
      const before = tf.memory().numTensors;
      const adv = ATTACK_IMPLS[name]!(t, x, y, p, rng(3));
      expect(tf.memory().numTensors).toBe(before + 1);
      const a = adv.dataSync();
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...a)).toBeLessThanOrEqual(1);
      const d = norms(adv, x);
      for (const v of d[norm]) expect(v).toBeLessThanOrEqual(p.eps! * (1 + 1e-5) + 1e-6);
      const pred = t.predict(adv, rng(0));
      const clean = t.predict(x, rng(0));
      let fooled = 0;
      d.linf.forEach((v, i) => {
        if (clean[i] !== y[i]) expect(v, `image ${i} was wrong when clean`).toBe(0);
        else if (v > 0) {
          expect(pred[i], `image ${i} changed but is not adversarial`).not.toBe(y[i]);
          fooled++;
        }
      });
      expect(fooled).toBeGreaterThan(0);
      const again = ATTACK_IMPLS[name]!(t, x, y, p, rng(3));
      expect(Buffer.from(again.dataSync().buffer).equals(Buffer.from(a.buffer))).toBe(true);
    });
  }

  it('stopped between steps, it frees every tensor it holds', () => {
    const { t, x, y } = tenClasses(7);
    const before = tf.memory().numTensors;
    for (const norm of ['linf', 'l1'] as const) {
      const g = apgdSteps(t, x, y, { eps: 0.1, norm, steps: 20, restarts: 2 }, rng(3));
      for (let k = 0; k < 25; k++) g.next();
      g.return(undefined as never);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('in the language', () => {
  it('`evaluate m against apgd norm=linf eps=0.3` plans and runs, within the budget', async () => {
    const src = `dataset mnist subset train=200 test=50
train epochs=1 batch=16 lr=0.05
model m = mlp width=0.25
evaluate m against apgd norm=linf eps=0.3, apgdt norm=l2 eps=2 steps=10 targets=2
`;
    const { artifacts } = await runPipeline(src);
    const dag = await plan(src);
    const summary = (id: string) => artifacts.get(id)!.summary as Record<string, unknown>;
    const clean = summary('predict/m') as { accuracy: number; n: number };
    expect(clean.accuracy).toBeGreaterThan(0.3);
    const a = dag.nodes.find((n) => n.id === 'robust/apgd/m')!;
    // The language's defaults reach the attack: 100 steps, one restart, CE, rho 3/4.
    expect(jsonSafe(a.params)).toMatchObject({
      attack: { attack: 'apgd', params: { eps: '3/10', norm: 'linf', steps: 100, restarts: 1, loss: 'ce', rho: '3/4' } },
    });
    for (const [id, norm, eps] of [
      ['robust/apgd/m', 'linf', 0.3],
      ['robust/apgdt/m', 'l2', 2],
    ] as const) {
      const s = summary(id) as { accuracy: number; meanNorm: Record<string, number> };
      // A mostly fooled undertrained model; only the images right when clean move, each within eps.
      expect(s.accuracy, id).toBeLessThan(clean.accuracy / 2);
      expect(s.meanNorm[norm]!, id).toBeLessThanOrEqual(eps * clean.accuracy * (1 + 1e-5));
      expect(s.meanNorm[norm]!, id).toBeGreaterThan(0);
    }
  });
});

describe('on ensembles', () => {
  it('attacks a majority-vote ensemble through its soft output, judged by its vote, within the budget', async () => {
    const src = `dataset mnist subset train=200 test=50
train epochs=1 batch=16 lr=0.05
model a = mlp width=0.25
model b = mlp width=0.25 seed 2
model c = mlp width=0.25 seed 3
ensemble e = a, b, c
evaluate e against apgd eps=0.3 steps=20
`;
    const { artifacts } = await runPipeline(src);
    const clean = artifacts.get('predict/e')!.summary as { accuracy: number };
    const s = artifacts.get('robust/apgd/e')!.summary as { accuracy: number; n: number; meanNorm: Record<string, number> };
    expect(s.n).toBe(50);
    expect(s.accuracy).toBeLessThan(clean.accuracy);
    expect(s.meanNorm.linf!).toBeGreaterThan(0);
    expect(s.meanNorm.linf!).toBeLessThanOrEqual(0.3 * (1 + 1e-5));
  });
});
