import { beforeAll, describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/runtime/artifact.js';
import { norms, projectL1Rows, type AttackParams, type AttackTarget } from '../../src/runtime/attacks/base.js';
import { ATTACK_IMPLS } from '../../src/runtime/attacks/index.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { modelTarget } from '../../src/runtime/eval/classifier.js';
import { datasetOp } from '../../src/runtime/ops/dataset.js';
import { rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { imageBatch, labelBatch, range } from '../../src/runtime/training/batches.js';
import { train } from '../../src/runtime/training/train.js';
import { fakeContext, linear } from '../helpers/runtime.js';

// Class 1 wins when 0.5*x0 - 0.25*x1 + 0.75*x2 - 1*x3 > 0 (W[:,1] - W[:,0]).
const LIN = linear(
  [
    [0, 0.5],
    [0, -0.25],
    [0, 0.75],
    [0, -1],
  ],
  [0, -0.1],
);
const X = () => tf.tensor4d([0.3, 0.6, 0.2, 0.5, 0.4, 0.5, 0.5, 0.6], [2, 2, 2, 1]);
const Y = Int32Array.from([0, 0]);
const D = [0.5, -0.25, 0.75, -1];

let toy: Artifact;
let trained: AttackTarget;

describe('attacks', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
    toy = (await datasetOp(fakeContext({ name: 'toy', train: 600, test: 200, val: '1/10', seed: 0, shape: [8, 8, 1], classes: 2 }))).artifact;
    const s = toy.summary as { mean: number[]; std: number[] };
    const r = await train({
      spec: {
        arch: 'mlp',
        width: 0.25,
        shape: [8, 8, 1],
        classes: 2,
        input: null,
        weightBits: null,
        activationBits: null,
        noise: {},
        mean: s.mean,
        std: s.std,
      },
      settings: { epochs: 3, batch: 32, lr: '1/20', momentum: '9/10', wd: '0', optimizer: 'sgd', seed: 1, schedule: 'step' },
      method: { name: 'standard' },
      data: toy,
      progress: () => {},
    });
    trained = modelTarget(r.model);
  });

  const cases: Array<[string, AttackParams, 'linf' | 'l2' | 'l1']> = [
    ['fgsm', { eps: 0.1 }, 'linf'],
    ['pgd', { eps: 0.1, steps: 10, step: 0.02, norm: 'linf', random_start: true }, 'linf'],
    ['pgd', { eps: 0.8, steps: 10, step: 0.2, norm: 'l2', random_start: true }, 'l2'],
    ['pgd', { eps: 3, steps: 10, step: 0.75, norm: 'l1', random_start: true, topk: 0.05 }, 'l1'],
    ['epgd', { eps: 0.1, steps: 5, step: 0.025, m: 2, sd: 0.2, random_start: true }, 'linf'],
    ['agd', { eps: 0.1, steps: 5, step: 0.02, random_start: true }, 'linf'],
    ['deepfool', { overshoot: 0.02, steps: 20, eps: 0.1 }, 'linf'],
  ];

  for (const [name, p, norm] of cases) {
    it(`${name} (${norm}): outputs lie in [0,1] and within the budget; eps = 0 changes nothing`, () => {
      const x = imageBatch(toy.tensors.testX!, range(0, 40));
      const y = labelBatch(toy.tensors.testY!, range(0, 40));
      const adv = ATTACK_IMPLS[name]!(trained, x, y, p, rng(1));
      const a = adv.dataSync();
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...a)).toBeLessThanOrEqual(1);
      const d = norms(adv, x);
      for (const v of d[norm]) expect(v).toBeLessThanOrEqual(p.eps! * (1 + 1e-5) + 1e-6);
      const zero = ATTACK_IMPLS[name]!(trained, x, y, { ...p, eps: 0 }, rng(1));
      expect(Array.from(zero.dataSync())).toEqual(Array.from(x.dataSync()));
    });
  }

  it('CW and PGD restarts on a trained model keep the batch shape; every changed CW example is adversarial', () => {
    const x = imageBatch(toy.tensors.testX!, range(0, 30));
    const y = labelBatch(toy.tensors.testY!, range(0, 30));
    const adv = ATTACK_IMPLS.cw!(trained, x, y, { c: 1, kappa: 0, steps: 30, search: 2, lr: 0.05 }, rng(3));
    expect(adv.shape).toEqual(x.shape);
    const pred = trained.predict(adv, rng(0));
    const changed = norms(adv, x).l2;
    let fooled = 0;
    changed.forEach((d, i) => {
      if (d > 0) {
        expect(pred[i]).not.toBe(y[i]);
        fooled++;
      }
    });
    expect(fooled).toBeGreaterThan(0);
    const restarts = ATTACK_IMPLS.pgd!(trained, x, y, { eps: 0.1, steps: 3, step: 0.04, norm: 'linf', random_start: true, restarts: 3 }, rng(4));
    expect(restarts.shape).toEqual(x.shape);
  });

  it('success rises with eps (PGD l_inf on a trained model)', () => {
    const x = imageBatch(toy.tensors.testX!, range(0, 100));
    const y = labelBatch(toy.tensors.testY!, range(0, 100));
    const success = [0.02, 0.1, 0.2, 0.4].map((eps) => {
      const adv = ATTACK_IMPLS.pgd!(trained, x, y, { eps, steps: 20, step: eps / 8, norm: 'linf', random_start: false }, rng(2));
      const pred = trained.predict(adv, rng(0));
      return pred.filter((v, i) => v !== y[i]).length / y.length;
    });
    for (let i = 1; i < success.length; i++) expect(success[i]!).toBeGreaterThanOrEqual(success[i - 1]!);
    expect(success[3]!).toBeGreaterThan(success[0]! + 0.3);
  });

  it('PGD l_inf on a linear model converges to x + eps*sign(w1 - w0) (clipped)', () => {
    const adv = ATTACK_IMPLS.pgd!(LIN, X(), Y, { eps: 0.1, steps: 20, step: 0.01, norm: 'linf', random_start: false }, rng(0));
    const x = X().dataSync();
    const expected = Array.from(x, (v, i) => Math.min(1, Math.max(0, v + 0.1 * Math.sign(D[i % 4]!))));
    Array.from(adv.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
  });

  it('PGD l_2 on a linear model converges to x + eps*(w1 - w0)/||w1 - w0||', () => {
    const adv = ATTACK_IMPLS.pgd!(LIN, X(), Y, { eps: 0.2, steps: 30, step: 0.05, norm: 'l2', random_start: false }, rng(0));
    const n = Math.hypot(...D);
    const x = X().dataSync();
    Array.from(adv.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(x[i]! + (0.2 * D[i % 4]!) / n, 4));
  });

  it('DeepFool on a linear model lands (1 + overshoot) times past the closed-form boundary point', () => {
    const adv = ATTACK_IMPLS.deepfool!(LIN, X(), Y, { overshoot: 0.02, steps: 50, candidates: 2 }, rng(0));
    const x = X().dataSync();
    const n2 = D.reduce((s, v) => s + v * v, 0);
    const a = adv.dataSync();
    for (let img = 0; img < 2; img++) {
      const xi = Array.from(x.subarray(img * 4, img * 4 + 4));
      const f = D.reduce((s, d, i) => s + d * xi[i]!, -0.1); // logit1 - logit0
      // One linear step reaches the boundary exactly: r = (|f| + 1e-4)/||d||^2 d, scaled by 1.02.
      const r = D.map((d) => ((Math.abs(f) + 1e-4) / n2) * d * 1.02);
      xi.forEach((v, i) => expect(a[img * 4 + i]!).toBeCloseTo(v + r[i]!, 5));
    }
    const pred = LIN.predict(adv, rng(0));
    expect(Array.from(pred)).toEqual([1, 1]);
  });

  it('DeepFool leaves already misclassified inputs alone', () => {
    const x = tf.tensor4d([0.9, 0.1, 0.9, 0.1], [1, 2, 2, 1]); // f > 0: predicted 1, label 0
    const adv = ATTACK_IMPLS.deepfool!(LIN, x, Int32Array.from([0]), { overshoot: 0.02, steps: 10 }, rng(0));
    expect(Array.from(adv.dataSync())).toEqual(Array.from(x.dataSync()));
  });

  it('Carlini-Wagner finds misclassified points near the linear boundary', () => {
    const adv = ATTACK_IMPLS.cw!(LIN, X(), Y, { c: 1, kappa: 0, steps: 150, search: 5, lr: 0.05 }, rng(0));
    expect(Array.from(LIN.predict(adv, rng(0)))).toEqual([1, 1]);
    const x = X().dataSync();
    const dist = norms(adv, X()).l2;
    for (let img = 0; img < 2; img++) {
      const f = D.reduce((s, d, i) => s + d * x[img * 4 + i]!, -0.1);
      const boundary = Math.abs(f) / Math.hypot(...D);
      expect(dist[img]!).toBeGreaterThanOrEqual(boundary * 0.999);
      expect(dist[img]!).toBeLessThan(boundary * 1.3);
    }
  });

  it('the l_1 projection matches a hand computation', () => {
    // |(3, -1, 0.5)| onto the l1 ball of radius 2: theta = 1, giving (2, 0, 0).
    expect(Array.from(projectL1Rows(Float32Array.from([3, -1, 0.5]), 1, 3, 2))).toEqual([2, -0, 0]);
    expect(Array.from(projectL1Rows(Float32Array.from([0.5, -0.5]), 1, 2, 2))).toEqual([0.5, -0.5]);
  });
});

describe('ensemble attack directions on constructed members', () => {
  // Three linear members over 4 pixels with chosen gradient signs; one step from x, no start.
  const w = (d: number[]) =>
    linear(
      d.map((v) => [0, v]),
      [0, 0],
    );
  const m1 = w([10, 1, -1, 1]); // dominates D-AG
  const m2 = w([-1, 1, -1, -1]);
  const m3 = w([-1, 1, 1, -1]);
  const ens: AttackTarget = {
    classes: 2,
    members: [m1, m2, m3],
    logits: (x, r) => m1.logits(x, r),
    predict: (x, r) => m1.predict(x, r),
  };
  const step = (rule: string) => {
    const x = tf.tensor4d([0.5, 0.5, 0.5, 0.5], [1, 2, 2, 1]);
    const adv = ATTACK_IMPLS[rule]!(ens, x, Int32Array.from([0]), { eps: 0.1, steps: 1, step: 0.1, random_start: false }, rng(0));
    return Array.from(adv.dataSync()).map((v) => Math.round((v - 0.5) * 10));
  };
  it('D-AG follows the sign of the summed gradients (member 1 dominates)', () => expect(step('dag')).toEqual([1, 1, -1, 1]));
  it('A-GD follows the sign of the summed signs', () => expect(step('agd')).toEqual([-1, 1, -1, -1]));
  it('U-GD moves only where all members agree', () => expect(step('ugd')).toEqual([0, 1, 0, 0]));
});
