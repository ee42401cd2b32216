import { beforeAll, describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/runtime/artifact.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { Model, type ModelSpec } from '../../src/runtime/models/model.js';
import { datasetOp } from '../../src/runtime/ops/dataset.js';
import { tf } from '../../src/runtime/tf.js';
import { accuracy, lrAt, train } from '../../src/runtime/training/train.js';
import { fakeContext, trainSettings } from '../helpers/runtime.js';

let toy: Artifact;

const spec = (arch: string, data: Artifact, width = 0.5): ModelSpec => {
  const s = data.summary as { mean: number[]; std: number[] };
  return { arch, width, shape: [8, 8, 1], classes: 2, input: null, weightBits: null, activationBits: null, noise: {}, mean: s.mean, std: s.std };
};
const settings = trainSettings;

describe('training', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
    toy = (await datasetOp(fakeContext({ name: 'toy', train: 800, test: 400, val: '1/10', seed: 0, shape: [8, 8, 1], classes: 2 }))).artifact;
  });

  it('the learning-rate schedule steps /10 at 60% and 80% of the epochs', () => {
    expect([0, 5, 6, 7, 8, 9].map((e) => lrAt(1, e, 10, 'step'))).toEqual([1, 1, 0.1, 0.1, 0.01, 0.01]);
    expect(lrAt(1, 9, 10, 'constant')).toBe(1);
  });

  it('a tiny model learns a separable toy set to near-perfect accuracy', async () => {
    for (const arch of ['mlp', 'cnn']) {
      const r = await train({ spec: spec(arch, toy), settings: settings(), method: { name: 'standard' }, data: toy, progress: () => {} });
      const acc = accuracy(r.model, toy.tensors.testX!, toy.tensors.testY!, 0);
      expect(acc).toBeGreaterThan(0.97);
      expect(r.history).toHaveLength(3);
      expect(r.history[0]!.loss).toBeGreaterThan(r.history[2]!.loss);
      r.model.dispose();
    }
  });

  it('seeded training is deterministic; another seed gives other weights', async () => {
    const run = async (seed: number) => {
      const r = await train({ spec: spec('cnn', toy), settings: settings({ epochs: 1, seed }), method: { name: 'standard' }, data: toy, progress: () => {} });
      const w = r.model.tensors();
      r.model.dispose();
      return w;
    };
    const a = await run(5);
    const b = await run(5);
    const c = await run(6);
    for (const k of Object.keys(a)) expect(Buffer.from(a[k]!.data.buffer).equals(Buffer.from(b[k]!.data.buffer))).toBe(true);
    expect(Buffer.from(a['p/conv1/w']!.data.buffer).equals(Buffer.from(c['p/conv1/w']!.data.buffer))).toBe(false);
  });

  it('several SGD steps with momentum on wasm track the cpu backend (no stale cached weights)', async () => {
    const { SGD } = await import('../../src/runtime/training/optimizer.js');
    const { imageBatch, labelBatch, range } = await import('../../src/runtime/training/batches.js');
    const { oneHot } = await import('../../src/runtime/attacks/base.js');
    const weights: Record<string, Float32Array[]> = {};
    for (const be of ['cpu', 'wasm']) {
      await tf.setBackend(be);
      const m = Model.create(spec('cnn', toy), 4);
      const opt = new SGD(0.9, 5e-4);
      for (let b = 0; b < 5; b++) {
        const idx = range(b * 40, b * 40 + 40);
        const yh = oneHot(labelBatch(toy.tensors.trainY!, idx), 2);
        const x = imageBatch(toy.tensors.trainX!, idx);
        const vars = m.trainable();
        const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(yh, m.logits(x, { training: true })) as tf.Scalar, vars);
        opt.step(
          vars,
          vars.map((v) => grads[v.name]!),
          0.05,
        );
        [value, x, yh, ...Object.values(grads)].forEach((t) => t.dispose());
      }
      weights[be] = m.trainable().map((v) => (v.dataSync() as Float32Array).slice());
      m.dispose();
      opt.dispose();
    }
    await tf.setBackend('wasm');
    weights.cpu!.forEach((a, i) => {
      const b = weights.wasm![i]!;
      let err = 0;
      let scale = 0;
      for (let j = 0; j < a.length; j++) {
        err = Math.max(err, Math.abs(a[j]! - b[j]!));
        scale = Math.max(scale, Math.abs(a[j]!));
      }
      expect(err / scale).toBeLessThan(1e-4);
    });
  });

  it('the same seed gives the same initial weights on the cpu and wasm backends', async () => {
    const m1 = Model.create(spec('resnet18', toy, 1 / 16), 9);
    const w1 = m1.tensors();
    await tf.setBackend('cpu');
    const m2 = Model.create(spec('resnet18', toy, 1 / 16), 9);
    const w2 = m2.tensors();
    await tf.setBackend('wasm');
    for (const k of Object.keys(w1)) expect(Array.from(w1[k]!.data)).toEqual(Array.from(w2[k]!.data));
    m1.dispose();
    m2.dispose();
  });

  it('memory stays flat across epochs and attack iterations', async () => {
    const r = await train({ spec: spec('cnn', toy), settings: settings({ epochs: 1 }), method: { name: 'standard' }, data: toy, progress: () => {} });
    const counts: number[] = [];
    const { runAttack } = await import('../../src/runtime/training/methods.js');
    const { modelTarget } = await import('../../src/runtime/eval/classifier.js');
    const { imageBatch, labelBatch, range } = await import('../../src/runtime/training/batches.js');
    const x = imageBatch(toy.tensors.testX!, range(0, 50));
    const y = labelBatch(toy.tensors.testY!, range(0, 50));
    const { rng } = await import('../../src/runtime/rng.js');
    for (let i = 0; i < 4; i++) {
      const adv = runAttack(
        { attack: 'pgd', params: { eps: '1/10', steps: 5, step: '1/50', norm: 'linf', random_start: true } },
        modelTarget(r.model),
        x,
        y,
        rng(1, 'm'),
      );
      adv.dispose();
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);
    // Training: the tensor count at the end of every epoch is the same, and nothing is left after.
    const t0 = tf.memory().numTensors;
    const perEpoch: number[] = [];
    const r2 = await train({
      spec: spec('cnn', toy),
      settings: settings({ epochs: 3 }),
      method: { name: 'adversarial', attack: { attack: 'pgd', params: { eps: '1/10', steps: 2, step: '1/20', norm: 'linf', random_start: true } }, mix: '1/2' },
      data: toy,
      progress: (p) => {
        if (p.done === p.total && p.metrics?.valAcc !== undefined) perEpoch.push(tf.memory().numTensors);
      },
    });
    expect(perEpoch).toHaveLength(3);
    expect(new Set(perEpoch).size).toBe(1);
    r2.model.dispose();
    expect(tf.memory().numTensors).toBe(t0);
    x.dispose();
    r.model.dispose();
  });
});
