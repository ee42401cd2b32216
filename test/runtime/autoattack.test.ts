// AutoAttack (src/runtime/attacks/autoattack.ts) and the APGD settings it needs (eot, largereps):
// the EOT gradient against a hand computation on a target whose noise the test draws; the
// largereps schedule against the reference's formula and as run; the composite's bookkeeping on
// stub attacks; on a trained model, the composite against each of its attacks alone, image by
// image; budgets, [0, 1], determinism, early stops; and pipelines in the language.
import { beforeAll, describe, expect, it } from 'vitest';
import { apgdEvaluate, apgdSteps, largeRepsSchedule, largeRepsSteps, type ApgdRun } from '../../src/runtime/attacks/apgd.js';
import { autoattackCounts, autoattackStages, autoattackSteps, compositeSteps, type Stage } from '../../src/runtime/attacks/autoattack.js';
import { norms, type AttackTarget, type SteppedAttack } from '../../src/runtime/attacks/base.js';
import { pSelection } from '../../src/runtime/attacks/square.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { modelTarget } from '../../src/runtime/eval/classifier.js';
import { Model } from '../../src/runtime/models/model.js';
import { paced, runSteps, type Steps } from '../../src/runtime/pace.js';
import { rng, seedFrom, type Rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { imageBatch, labelBatch, range } from '../../src/runtime/training/batches.js';
import { runPipeline } from '../helpers/runtime.js';

/**
 * Runs a long attack with a pause every 100 ms, as the operations do: a test that computes for
 * minutes without yielding starves vitest's worker RPC ("Timeout calling onTaskUpdate").
 */
let lastPause = Date.now();
const runPaced = <T>(g: Steps<T>): Promise<T> =>
  paced(g, () => {
    if (Date.now() - lastPause < 100) return;
    lastPause = Date.now();
    return new Promise<void>((r) => setImmediate(r));
  });

beforeAll(async () => {
  await selectBackend('wasm');
});

/** A target from a per-call logits function; predict is its argmax. */
function target(classes: number, logits: (x: tf.Tensor4D, r: Rng) => tf.Tensor2D): AttackTarget {
  const t: AttackTarget = {
    classes,
    members: [],
    logits,
    predict: (x, r) => tf.tidy(() => tf.argMax(logits(x, r), 1).dataSync() as Int32Array),
  };
  t.members.push(t);
  return t;
}

describe('EOT (eot_iter) in APGD', () => {
  // logits = (x * (1 + s u)) W + b on 3 pixels, u = r() drawn once per forward pass: the test knows every draw.
  const W = [
    [1, -2, 0.5, 0.3],
    [-1, 0.7, 2, -0.4],
    [0.2, 1, -1, 1.5],
  ];
  const b = [0.1, -0.2, 0.3, 0];
  const s = 0.8;
  const noisy = target(4, (x, r) => {
    const u = r();
    return tf.tidy(() => tf.add(tf.matMul(tf.mul(tf.reshape(x, [x.shape[0], 3]), 1 + s * u), tf.tensor2d(W)), tf.tensor1d(b)) as tf.Tensor2D);
  });
  const xs = [
    [0.2, 0.5, 0.9],
    [0.7, 0.1, 0.4],
  ];
  const y = Int32Array.from([2, 0]);

  /** Host: d CE(z, y) / dx for z = (x (1 + s u)) W + b, i.e. (1 + s u) W (softmax(z) - e_y); and the CE. */
  function handGrad(x: number[], yi: number, u: number): { g: number[]; ce: number } {
    const a = 1 + s * u;
    const z = [0, 1, 2, 3].map((j) => x.reduce((acc, xi, i) => acc + xi * a * W[i]![j]!, b[j]!));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e.reduce((p, v) => p + v, 0);
    const p = e.map((v) => v / sum);
    const g = x.map((_, i) => a * [0, 1, 2, 3].reduce((acc, j) => acc + W[i]![j]! * (p[j]! - (j === yi ? 1 : 0)), 0));
    return { g, ce: -Math.log(p[yi]!) };
  }

  for (const k of [1, 3, 7]) {
    it(`eot=${k}: the gradient is the mean of ${k} single-draw gradients; loss and prediction are the last draw's`, () => {
      const x = tf.tensor4d(xs.flat(), [2, 1, 3, 1]);
      const run: ApgdRun = { x0: x, y, loss: 'ce', eps: 0.1, norm: 'linf', steps: 1, rho: 0.75, eot: k };
      const ev = apgdEvaluate(noisy, x, run, rng(11, 'eot'));
      const draws = rng(11, 'eot');
      const us = Array.from({ length: k }, () => draws());
      const got = Array.from(ev.grad.dataSync());
      xs.forEach((xi, e) => {
        const mean = [0, 1, 2].map((i) => us.reduce((acc, u) => acc + handGrad(xi, y[e]!, u).g[i]!, 0) / k);
        mean.forEach((v, i) => expect(got[e * 3 + i]!).toBeCloseTo(v, 5));
        expect(ev.loss[e]!).toBeCloseTo(handGrad(xi, y[e]!, us[k - 1]!).ce, 5);
      });
      ev.grad.dispose();
      x.dispose();
    });
  }

  it('the draws differ, so eot=3 is not a single draw (the check above can fail)', () => {
    const x = tf.tensor4d(xs.flat(), [2, 1, 3, 1]);
    const run: ApgdRun = { x0: x, y, loss: 'ce', eps: 0.1, norm: 'linf', steps: 1, rho: 0.75 };
    const one = Array.from(apgdEvaluate(noisy, x, { ...run, eot: 1 }, rng(11, 'eot')).grad.dataSync());
    const three = Array.from(apgdEvaluate(noisy, x, { ...run, eot: 3 }, rng(11, 'eot')).grad.dataSync());
    expect(Math.max(...one.map((v, i) => Math.abs(v - three[i]!)))).toBeGreaterThan(1e-3);
  });

  it('every step of a run makes eot passes (plus the start and the clean check)', () => {
    let calls = 0;
    const counting = target(4, (x) => {
      calls++;
      return tf.tidy(() => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], 3]), tf.tensor2d(W)), tf.tensor1d(b)) as tf.Tensor2D);
    });
    const x = tf.tensor4d(xs.flat(), [2, 1, 3, 1]);
    const y = counting.predict(x, rng(0)); // right when clean, so both images are attacked
    for (const eot of [1, 4]) {
      calls = 0;
      // Clean check: 1 pass; the run: (steps + 1) evaluations of eot passes each.
      runSteps(apgdSteps(counting, x, y, { eps: 0.01, steps: 5, eot }, rng(1))).dispose();
      expect(calls).toBe(1 + 6 * eot);
    }
  });
});

describe('largereps (use_largereps, l_1)', () => {
  // The reference: epss = [3, 2, 1] * eps; iters = ceil(.3 N), ceil(.3 N), then N - their sum.
  const reference = (eps: number, n: number) => {
    const a = Math.ceil(0.3 * n);
    return [
      { eps: 3 * eps, steps: a },
      { eps: 2 * eps, steps: a },
      { eps, steps: n - 2 * a },
    ];
  };
  it('the schedule: 30/30/40 for 100 iterations, and the reference formula elsewhere', () => {
    expect(largeRepsSchedule(10, 100)).toEqual([
      { eps: 30, steps: 30 },
      { eps: 20, steps: 30 },
      { eps: 10, steps: 40 },
    ]);
    expect(largeRepsSchedule(5, 7)).toEqual([
      { eps: 15, steps: 3 },
      { eps: 10, steps: 3 },
      { eps: 5, steps: 1 },
    ]);
    for (const n of [2, 3, 5, 10, 33, 50, 99, 1000]) expect(largeRepsSchedule(12, n), `N=${n}`).toEqual(reference(12, n));
    expect(() => largeRepsSchedule(1, 1)).toThrow(/at least 2 steps/);
  });

  it('as run: each stage evaluates its points within its own budget, then only eps counts', () => {
    // Record each logits call's largest l_1 distance from the clean images.
    const W = tf.randomNormal([16, 4], 0, 1, 'float32', 3);
    const x0 = tf.randomUniform([3, 4, 4, 1], 0.2, 0.8, 'float32', 4) as tf.Tensor4D;
    const dists: number[] = [];
    const t = target(4, (x) => {
      dists.push(tf.tidy(() => tf.max(tf.sum(tf.abs(tf.sub(x, x0)), [1, 2, 3])).dataSync()[0]!));
      return tf.matMul(tf.reshape(x, [x.shape[0], 16]), W) as tf.Tensor2D;
    });
    const y = Int32Array.from([0, 1, 2]);
    const eps = 0.5;
    const res = runSteps(largeRepsSteps(t, { x0, y, loss: 'ce', eps, norm: 'l1', steps: 10, rho: 0.75, largereps: true }, rng(2)));
    // Stages of 3, 3, 4 iterations: 4, 4 and 5 evaluations (the start of each, then one per step).
    expect(dists.length).toBe(13);
    const tol = 1e-4;
    dists.slice(0, 4).forEach((d) => expect(d).toBeLessThanOrEqual(3 * eps + tol));
    expect(Math.max(...dists.slice(0, 4))).toBeGreaterThan(2 * eps + tol); // the first stage does use 3 eps
    dists.slice(4, 8).forEach((d) => expect(d).toBeLessThanOrEqual(2 * eps + tol));
    expect(Math.max(...dists.slice(4, 8))).toBeGreaterThan(eps + tol);
    dists.slice(8).forEach((d) => expect(d).toBeLessThanOrEqual(eps + tol));
    for (const v of [res.adv, res.best]) norms(v, x0).l1.forEach((d) => expect(d).toBeLessThanOrEqual(eps + tol));
    res.adv.dispose();
    res.best.dispose();
  });

  it('apgd reads largereps under l_1 only (the reference asserts l_1)', () => {
    let calls = 0;
    const W = tf.randomNormal([16, 4], 0, 1, 'float32', 3);
    const t = target(4, (x) => {
      calls++;
      return tf.matMul(tf.reshape(x, [x.shape[0], 16]), W) as tf.Tensor2D;
    });
    const x = tf.fill([2, 4, 4, 1], 0.5) as tf.Tensor4D;
    const y = Int32Array.from(t.predict(x, rng(0)));
    const count = (norm: 'l1' | 'linf', largereps: boolean) => {
      calls = 0;
      runSteps(apgdSteps(t, x, y, { eps: 0.01, norm, steps: 10, largereps }, rng(1))).dispose();
      return calls;
    };
    expect(count('l1', false)).toBe(1 + 11);
    expect(count('l1', true)).toBe(1 + 13);
    expect(count('linf', true)).toBe(count('linf', false));
  });
});

/**
 * Stub attacks on 1x2x1 images [feature, id/100]: the target's class is 1 when the feature is
 * above 0.5. A stub records the ids it is given and flips the feature of the ids it "fools".
 */
function stub(name: string, fools: number[], seen: number[][]): Stage {
  const attack: SteppedAttack = function* (_t, x) {
    const v = Float32Array.from(x.dataSync());
    const ids: number[] = [];
    for (let j = 0; j < x.shape[0]; j++) {
      const id = Math.round(v[j * 2 + 1]! * 100);
      ids.push(id);
      if (fools.includes(id)) v[j * 2] = 1 - v[j * 2]!;
    }
    seen.push(ids);
    yield 1;
    return tf.tensor4d(v, x.shape);
  };
  return { name, attack, params: {}, weight: 1 };
}

describe('the composite on stub attacks', () => {
  const feature = [0.2, 0.8, 0.3, 0.9, 0.1, 0.7];
  const x = () =>
    tf.tensor4d(
      feature.flatMap((f, i) => [f, i / 100]),
      [6, 1, 2, 1],
    );
  // Image 4 is misclassified when clean (label 1, feature 0.1).
  const y = Int32Array.from([0, 1, 0, 1, 1, 1]);
  const t = target(2, (z) =>
    tf.tidy(() => tf.concat([tf.fill([z.shape[0], 1], 0.5), tf.reshape(tf.slice(z, [0, 0, 0, 0], [-1, 1, 1, 1]), [-1, 1])], 1) as tf.Tensor2D),
  );

  it('each attack sees only the images still robust; a fooled image keeps its adversarial point', () => {
    const seen: number[][] = [];
    const stages = [stub('a', [1, 3], seen), stub('b', [2, 1], seen), stub('c', [0], seen), stub('d', [5], seen)];
    const res = runSteps(compositeSteps(stages, t, x(), y, rng(0)));
    expect(seen).toEqual([[0, 1, 2, 3, 5], [0, 2, 5], [0, 5], [5]]);
    expect(res.robust).toEqual({
      clean: 5,
      after: [
        { name: 'a', robust: 3 },
        { name: 'b', robust: 2 },
        { name: 'c', robust: 1 },
        { name: 'd', robust: 0 },
      ],
    });
    const out = res.adv.dataSync();
    // Fooled images carry the flipped feature; the clean-misclassified one stays clean.
    expect(Array.from({ length: 6 }, (_, i) => +out[i * 2]!.toFixed(3))).toEqual([0.8, 0.2, 0.7, 0.1, 0.1, 0.3]);
    res.adv.dispose();
  });

  it('stops once nothing is robust; an empty stage list returns the clean batch', () => {
    const seen: number[][] = [];
    const res = runSteps(compositeSteps([stub('a', [0, 1, 2, 3, 5], seen), stub('b', [], seen)], t, x(), y, rng(0)));
    expect(seen).toEqual([[0, 1, 2, 3, 5]]);
    expect(res.robust.after.map((a) => a.robust)).toEqual([0, 0]);
    res.adv.dispose();
    const none = runSteps(compositeSteps([], t, x(), y, rng(0)));
    expect(Array.from(none.adv.dataSync())).toEqual(Array.from(x().dataSync()));
    none.adv.dispose();
  });
});

describe('the stages (set_version)', () => {
  const names = (p: Parameters<typeof autoattackStages>[0]) => autoattackStages(p).map((s) => [s.name, s.params]);
  it('standard, l_inf and l_2: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000 queries, p_init 0.8)', () => {
    for (const norm of ['linf', 'l2'] as const) {
      expect(names({ eps: 0.1, norm })).toEqual([
        ['apgd-ce', { eps: 0.1, norm, steps: 100, rho: 0.75, loss: 'ce', restarts: 1 }],
        ['apgd-t', { eps: 0.1, norm, steps: 100, rho: 0.75, targets: 9, restarts: 1 }],
        ['fab-t', { eps: 0.1, norm, steps: 100, restarts: 1, targets: 9, alpha_max: 0.1, eta: 1.05, beta: 0.9 }],
        ['square', { eps: 0.1, norm, queries: 5000, p_init: 0.8, restarts: 1, resc_schedule: false }],
      ]);
    }
  });
  it("Square's schedule as AutoAttack runs it (resc_schedule=False): p halves on the raw iteration", () => {
    // The reference's intervals (10, 50], (50, 200], ... on `it` itself; rescaled, on int(it / 5000 * 10000).
    expect(pSelection(30, 5000, 0.8, false)).toBeCloseTo(0.4, 12);
    expect(pSelection(30, 5000, 0.8)).toBeCloseTo(0.2, 12);
    expect(pSelection(4999, 5000, 0.8, false)).toBeCloseTo(0.8 / 128, 12);
    expect(pSelection(4999, 5000, 0.8)).toBeCloseTo(0.8 / 512, 12);
  });
  it('standard, l_1: APGD-CE (5 restarts) and APGD-T (5 targets), both with largereps, then FAB-T (9 targets) and Square (5000 queries) under l_1', () => {
    expect(names({ eps: 10, norm: 'l1', version: 'standard' })).toEqual([
      ['apgd-ce', { eps: 10, norm: 'l1', steps: 100, rho: 0.75, loss: 'ce', restarts: 5, largereps: true }],
      ['apgd-t', { eps: 10, norm: 'l1', steps: 100, rho: 0.75, targets: 5, restarts: 1, largereps: true }],
      ['fab-t', { eps: 10, norm: 'l1', steps: 100, restarts: 1, targets: 9, alpha_max: 0.1, eta: 1.05, beta: 0.9 }],
      ['square', { eps: 10, norm: 'l1', queries: 5000, p_init: 0.8, restarts: 1, resc_schedule: false }],
    ]);
  });
  it('rand: APGD-CE and APGD-DLR with EOT 20, one restart', () => {
    expect(names({ eps: 0.1, norm: 'l2', version: 'rand' })).toEqual([
      ['apgd-ce', { eps: 0.1, norm: 'l2', steps: 100, rho: 0.75, loss: 'ce', restarts: 1, eot: 20 }],
      ['apgd-dlr', { eps: 0.1, norm: 'l2', steps: 100, rho: 0.75, loss: 'dlr', restarts: 1, eot: 20 }],
    ]);
  });
});

describe('on a trained model', () => {
  let t: AttackTarget;
  let x: tf.Tensor4D;
  let y: Int32Array;
  const N = 8;

  beforeAll(async () => {
    const { artifacts } = await runPipeline(`dataset mnist subset train=200 test=50
train epochs=1 batch=16 lr=0.05
model m = mlp width=0.25
`);
    t = modelTarget(Model.fromArtifact(artifacts.get('train/m')!));
    const data = artifacts.get([...artifacts.keys()].find((k) => k.startsWith('dataset'))!)!;
    x = imageBatch(data.tensors.testX!, range(0, N));
    y = labelBatch(data.tensors.testY!, range(0, N));
  }, 120_000);

  const fooledBy = (adv: tf.Tensor4D, ys: Int32Array) => Array.from(t.predict(adv, rng(0)), (v, i) => (v === ys[i] ? 0 : 1));

  // One image per call (the robust op with batch=1): each attack alone then sees the very image
  // and stream it sees inside the composite, so the composite's fooled set must be the union of
  // the attacks' own, and its robust accuracy no higher than any of theirs. l_1 on fewer images
  // (its APGD runs 5 restarts at 3 budgets), at a budget where APGD-CE leaves some robust.
  for (const [norm, eps, count] of [
    ['linf', 0.04, N],
    ['l1', 2, 3],
  ] as const)
    it(`${norm}: image by image, the composite fools exactly the images some attack alone fools (same seed)`, async () => {
      await unionCheck(norm, eps, count);
    }, 300_000);

  async function unionCheck(norm: 'linf' | 'l1', eps: number, count: number): Promise<void> {
    const stages = autoattackStages({ eps, norm });
    const clean = fooledBy(x, y)
      .map((f) => 1 - f)
      .slice(0, count);
    const alone = stages.map(() => new Array<number>(count).fill(0));
    const composite: number[] = [];
    for (let i = 0; i < count; i++) {
      const xi = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
      const yi = y.subarray(i, i + 1);
      const adv = await runPaced(autoattackSteps(t, xi, yi, { eps, norm }, rng(5, `img${i}`)));
      composite.push(clean[i]! && fooledBy(adv, yi)[0]!);
      norms(adv, xi)[norm].forEach((d) => expect(d).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-6));
      adv.dispose();
      const seed = seedFrom(rng(5, `img${i}`));
      for (const [k, st] of stages.entries()) {
        const a = await runPaced(st.attack(t, xi, yi, st.params, rng(seed, 'autoattack')));
        alone[k]![i] = clean[i]! && fooledBy(a, yi)[0]!;
        a.dispose();
      }
      xi.dispose();
    }
    const union = composite.map((_, i) => (alone.some((a) => a[i]) ? 1 : 0));
    expect(composite).toEqual(union);
    const robust = (f: number[]) => clean.reduce((s, c, i) => s + (c && !f[i] ? 1 : 0), 0);
    for (const a of alone) expect(robust(composite)).toBeLessThanOrEqual(robust(a));
    // The budget leaves the first attack something to miss, so the later ones are exercised.
    expect(alone[0]!.reduce((s, v) => s + v, 0)).toBeLessThan(clean.reduce((s, v) => s + v, 0));
  }

  it('on a batch: each attack is called on the images still robust only', async () => {
    const sizes: number[][] = [];
    const counting: AttackTarget = { ...t, logits: (z, r, o) => (sizes.at(-1)!.push(z.shape[0]), t.logits(z, r, o)) };
    counting.members = [counting];
    const stages = autoattackStages({ eps: 0.04, norm: 'linf' }).map((st) => ({
      ...st,
      attack: ((tt, xs, ys, p, r) => (sizes.push([]), st.attack(tt, xs, ys, p, r))) as SteppedAttack,
    }));
    const res = await runPaced(compositeSteps(stages, counting, x, y, rng(1)));
    const before = [res.robust.clean, ...res.robust.after.map((a) => a.robust)];
    expect(sizes.length).toBe(before.slice(0, -1).filter((n) => n > 0).length);
    sizes.forEach((s, k) => expect(Math.max(...s), res.robust.after[k]!.name).toBe(before[k]));
    res.adv.dispose();
  }, 300_000);

  // l_2 and l_1 at budgets where an image outlasts APGD-CE (so the later attacks' outputs are
  // checked too; l_inf is, image by image, above); l_inf at one where APGD-CE fools all (cheap, for
  // the rerun). The full l_2 chain on a robust image is slow, so it is not rerun.
  for (const [norm, eps, rerun] of [
    ['linf', 0.1, true],
    ['l2', 0.5, false],
    ['l1', 3, true],
  ] as const) {
    it(`${norm}: within eps=${eps} and [0, 1]${rerun ? '; seeded runs byte-identical' : ''}; counts by attack`, async () => {
      const p = { eps, norm, version: 'standard' as const };
      // The images right when clean (all attacked), at most 4.
      const right = Array.from(t.predict(x, rng(0)))
        .flatMap((v, i) => (v === y[i] ? [i] : []))
        .slice(0, 4);
      const x4 = tf.gather(x, right) as tf.Tensor4D;
      const y4 = Int32Array.from(right, (i) => y[i]!);
      const adv = await runPaced(autoattackSteps(t, x4, y4, p, rng(3)));
      const d = norms(adv, x4)[norm];
      d.forEach((v) => expect(v).toBeLessThanOrEqual(eps * (1 + 1e-5)));
      const v = adv.dataSync();
      expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...v)).toBeLessThanOrEqual(1);
      const counts = autoattackCounts.get(adv)!;
      expect(counts.clean).toBe(right.length);
      expect(counts.after.map((a) => a.name)).toEqual(['apgd-ce', 'apgd-t', 'fab-t', 'square']);
      if (norm !== 'linf') expect(counts.after[0]!.robust).toBeGreaterThan(0);
      if (rerun) {
        const again = await runPaced(autoattackSteps(t, x4, y4, p, rng(3)));
        expect(Buffer.from(again.dataSync().buffer).equals(Buffer.from(v.buffer))).toBe(true);
        again.dispose();
      }
      adv.dispose();
      x4.dispose();
    }, 300_000);
  }

  it('stopped between steps, it frees every tensor it holds', () => {
    const before = tf.memory().numTensors;
    for (const [version, norm, k] of [
      ['standard', 'linf', 150],
      ['standard', 'l1', 60],
      ['rand', 'linf', 30],
    ] as const) {
      const g = autoattackSteps(t, x, y, { eps: 0.02, norm, version }, rng(3));
      for (let i = 0; i < k; i++) g.next();
      g.return(undefined as never);
    }
    expect(tf.memory().numTensors).toBe(before);
  }, 300_000);
});

describe('in the language', () => {
  it('`evaluate m against autoattack norm=linf eps=0.3`, a union over norms, and version=rand on randomized classifiers', async () => {
    const src = `dataset mnist subset train=200 test=50
train epochs=1 batch=16 lr=0.05
model m = mlp width=0.25
model at = mlp width=0.25 train adversarial attack=linf
model ramp = mlp width=0.25 train ramp
model nz = mlp width=0.25 noise input 0.5
smooth s = m sd=0.25 m=4
evaluate m against autoattack norm=linf eps=0.3 with images=8
attack aa_linf = autoattack norm=linf eps=0.3
attack aa_l1 = autoattack norm=l1 eps=10
evaluate at, ramp against aa_linf, aa_l1 with images=6 union
evaluate nz, s against autoattack version=rand norm=linf eps=0.3 with images=4
`;
    const { ids, artifacts, extras } = await runPipeline(src);
    const summary = (id: string) => artifacts.get(id)!.summary as Record<string, unknown>;
    const clean = summary('predict/m') as { accuracy: number };
    expect(clean.accuracy).toBeGreaterThan(0.3);
    const robustIds = ids.filter((id) => id.startsWith('robust/'));
    expect(robustIds.length).toBe(1 + 4 + 2);
    for (const id of robustIds) {
      const s = summary(id) as { accuracy: number; n: number; attack: string; meanNorm: Record<string, number> };
      expect(s.attack, id).toBe('autoattack');
      const l1 = id.includes('l1');
      const budget = l1 ? 10 : 0.3; // (ids name the attack: aa_l1 or aa_linf)
      // Only images right when clean move, each within the budget.
      expect(s.meanNorm[l1 ? 'l1' : 'linf']!, id).toBeLessThanOrEqual(budget * (1 + 1e-5));
      expect(s.accuracy, id).toBeLessThanOrEqual(0.5);
    }
    // The plain model at eps=0.3 is broken outright.
    const onM = robustIds.find((id) => id.endsWith('/m'))!;
    expect((summary(onM) as { accuracy: number }).accuracy).toBe(0);
    // Robust accuracy after each attack, in the node's extra metadata: clean first, never rising,
    // ending at the summary's accuracy (deterministic classifiers).
    for (const id of robustIds.filter((i) => !i.endsWith('/nz') && !i.endsWith('/s'))) {
      const after = extras.get(id)!.robustAfter as Record<string, number>;
      expect(Object.keys(after), id).toEqual(['clean', 'apgd-ce', 'apgd-t', 'fab-t', 'square']);
      const v = Object.values(after);
      v.slice(1).forEach((a, k) => expect(a, id).toBeLessThanOrEqual(v[k]!));
      expect(v.at(-1), id).toBeCloseTo((summary(id) as { accuracy: number }).accuracy, 9);
    }
    expect(Object.keys(extras.get(robustIds.find((id) => id.endsWith('/nz'))!)!.robustAfter as object)).toEqual(['clean', 'apgd-ce', 'apgd-dlr']);
    const unions = ids.filter((id) => id.startsWith('union/'));
    expect(unions.length).toBe(2);
    for (const id of unions) {
      const u = summary(id) as { union: number; perAttack: number[] };
      expect(u.union).toBeLessThanOrEqual(Math.min(...u.perAttack));
    }
  }, 600_000);
});
