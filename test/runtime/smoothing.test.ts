import { beforeAll, describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/runtime/artifact.js';
import { oneHot } from '../../src/runtime/attacks/base.js';
import { ATTACK_IMPLS } from '../../src/runtime/attacks/index.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { modelTarget, smoothPredict } from '../../src/runtime/eval/classifier.js';
import { Model, type ModelSpec } from '../../src/runtime/models/model.js';
import { datasetOp } from '../../src/runtime/ops/dataset.js';
import { rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { imageBatch, labelBatch, range } from '../../src/runtime/training/batches.js';
import { ce } from '../../src/runtime/training/methods.js';
import { accuracy, train } from '../../src/runtime/training/train.js';
import { noisyView } from '../../src/runtime/ops/robust.js';
import { fakeContext } from '../helpers/runtime.js';

let toy: Artifact;
let trained: Model;
const spec = (noise: ModelSpec['noise'] = {}): ModelSpec => {
  const s = toy.summary as { mean: number[]; std: number[] };
  return { arch: 'mlp', width: 0.25, shape: [8, 8, 1], classes: 2, input: null, weightBits: null, activationBits: null, noise, mean: s.mean, std: s.std };
};
const settings = { epochs: 2, batch: 32, lr: '1/20', momentum: '9/10', wd: '0', optimizer: 'sgd' as const, seed: 1, schedule: 'constant' as const };
const batch = (n: number) => [imageBatch(toy.tensors.testX!, range(0, n)), labelBatch(toy.tensors.testY!, range(0, n))] as const;

beforeAll(async () => {
  await selectBackend('wasm');
  toy = (await datasetOp(fakeContext({ name: 'toy', train: 600, test: 200, val: '1/10', seed: 0, shape: [8, 8, 1], classes: 2 }))).artifact;
  trained = (await train({ spec: spec(), settings, method: { name: 'standard' }, data: toy, progress: () => {} })).model;
});

describe('smoothed inference', () => {
  it('with sd = 0 every vote rule gives the base classifier’s prediction', () => {
    const [x] = batch(50);
    const t = modelTarget(trained);
    const base = t.predict(x, rng(0));
    for (const vote of ['prediction', 'soft', 'weighted'] as const) {
      expect(Array.from(smoothPredict(t, x, { sd: 0, m: 5, vote, average: 'probs' }, rng(1)))).toEqual(Array.from(base));
    }
  });

  it('is reproducible for a seed; noise of sd 0.5 on the normalised input changes a few decisions, never all', () => {
    const [x, y] = batch(200);
    const t = modelTarget(trained);
    const s = { sd: 0.5, m: 8, vote: 'prediction' as const, average: 'probs' as const };
    const a = smoothPredict(t, x, s, rng(4));
    expect(Array.from(smoothPredict(t, x, s, rng(4)))).toEqual(Array.from(a));
    const acc = a.filter((v, i) => v === y[i]).length / 200;
    expect(acc).toBeGreaterThan(0.8);
    // Huge noise drowns the signal: accuracy falls towards chance.
    const drowned = smoothPredict(t, x, { ...s, sd: 50, m: 4 }, rng(4));
    expect(drowned.filter((v, i) => v === y[i]).length / 200).toBeLessThan(0.75);
  });

  it('m draws are taken in chunks without changing how many are taken (m = 1 is the single noisy forward)', () => {
    const [x] = batch(4);
    const t = modelTarget(trained);
    // The accumulator sees m logit rows per image: with sd = 0 and m = 7 the soft vote equals the
    // prediction vote equals the argmax, and chunking (1024 / 4 images per chunk) needs one pass.
    const r = smoothPredict(t, x, { sd: 0, m: 7, vote: 'soft', average: 'logits' }, rng(0));
    expect(Array.from(r)).toEqual(Array.from(t.predict(x, rng(0))));
  });
});

describe('EPGD', () => {
  it('the noisy view an EOT or score-based attack sees draws the smoothing noise afresh on every pass', () => {
    const [x] = batch(20);
    const t = modelTarget(trained);
    const v = noisyView(t, 0.5);
    const r = rng(3);
    const plain = t.logits(x, rng(3)).arraySync();
    const a = v.logits(x, r);
    const b = v.logits(x, r);
    // Each pass is the base with noise of sd 0.5 on the normalised input, seeded from the stream
    // as the smoothed vote's own draws are.
    const same = t.logits(x, rng(3), { smoothSd: 0.5 });
    expect(a.arraySync()).toEqual(same.arraySync());
    expect(a.arraySync()).not.toEqual(b.arraySync());
    expect(a.arraySync()).not.toEqual(plain);
    // The view keeps the classifier's decision rule.
    expect(v.predict).toBe(t.predict);
    tf.dispose([a, b, same]);
  });

  it('with m = 1 and sd = 0 it is PGD l_inf, step for step', () => {
    const [x, y] = batch(20);
    const t = modelTarget(trained);
    const p = { eps: 0.1, steps: 5, step: 0.03, random_start: true };
    const a = ATTACK_IMPLS.epgd!(t, x, y, { ...p, m: 1, sd: 0 }, rng(2)).dataSync();
    const b = ATTACK_IMPLS.pgd!(t, x, y, { ...p, norm: 'linf' }, rng(2)).dataSync();
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('its step direction is the sign of the mean gradient over the m noise draws', () => {
    const [x, y] = batch(6);
    const t = modelTarget(trained);
    // One step from x, no random start: x + step * sign(mean_i grad_i), the draws replayed by seed.
    const adv = ATTACK_IMPLS.epgd!(t, x, y, { eps: 0.05, steps: 1, step: 0.05, m: 3, sd: 0.7, random_start: false }, rng(11)).dataSync();
    const r = rng(11);
    const yh = oneHot(y, 2);
    const grads = [0, 1, 2].map(() =>
      tf
        .grad((z: tf.Tensor) => ce(t.logits(z as tf.Tensor4D, r, { smoothSd: 0.7 }), yh))(x)
        .mul(y.length)
        .dataSync(),
    );
    const xs = x.dataSync();
    let moved = 0;
    for (let i = 0; i < xs.length; i++) {
      const g = grads[0]![i]! + grads[1]![i]! + grads[2]![i]!;
      if (Math.abs(g) < 1e-5) continue; // a saturated softmax: the sign is rounding noise
      const expected = Math.min(1, Math.max(0, xs[i]! + 0.05 * Math.sign(g)));
      expect(adv[i]).toBeCloseTo(expected, 5);
      if (Math.abs(adv[i]! - xs[i]!) > 0.01) moved++;
    }
    expect(moved).toBeGreaterThan(xs.length / 2);
  });
});

describe('noise-injection training', () => {
  it('fixed input noise: the same seed gives the same logits, another seed other logits', () => {
    const m = Model.create(spec({ input: { learned: false, sd: 0.3 } }), 1);
    const [x] = batch(5);
    const l = (s: number) => m.logits(x, { training: false, rng: rng(s) }).dataSync();
    expect(Array.from(l(1))).toEqual(Array.from(l(1)));
    expect(Array.from(l(1))).not.toEqual(Array.from(l(2)));
    m.dispose();
  });

  it('the learned noise scale gets the gradient that finite differences give', () => {
    const m = Model.create(spec({ input: { learned: true, sd: 0.25 } }), 3);
    const [x, y] = batch(16);
    const yh = oneHot(y, 2);
    const scale = m.vars.get('noise/input')!;
    const loss = () => ce(m.logits(x, { training: false, rng: rng(5) }), yh);
    const { grads } = tf.variableGrads(loss, [scale]);
    const g = grads[scale.name]!.dataSync()[0]!;
    const at = (v: number) => {
      scale.assign(tf.scalar(v));
      return loss().dataSync()[0]!;
    };
    const h = 1e-2;
    const fd = (at(0.25 + h) - at(0.25 - h)) / (2 * h);
    expect(Math.abs(g)).toBeGreaterThan(1e-4);
    expect(g).toBeCloseTo(fd, 3);
    m.dispose();
  });

  it('a model trained with learned weight and activation noise still learns, and its scales move', async () => {
    const noise = { weight: { learned: true, sd: 0.25 }, activation: { learned: true, sd: 0.25 } };
    const r = await train({ spec: spec(noise), settings, method: { name: 'standard' }, data: toy, progress: () => {} });
    expect(accuracy(r.model, toy.tensors.testX!, toy.tensors.testY!, 0)).toBeGreaterThan(0.9);
    const scales = r.model.decls.filter((d) => d.name.startsWith('noise/'));
    expect(scales.length).toBeGreaterThan(1);
    const moved = scales.filter((d) => Math.abs(r.model.vars.get(d.name)!.dataSync()[0]! - 0.25) > 1e-4);
    expect(moved.length).toBeGreaterThan(0);
    r.model.dispose();
  });
});
