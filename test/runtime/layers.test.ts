import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { Model } from '../../src/runtime/models/model.js';
import { flatten, globalAvgPool, maxPool2, Net, runningStats, type BnBatchStats, type Layer, type Params } from '../../src/runtime/models/net.js';
import { plainSpec } from '../helpers/runtime.js';
import { tf } from '../../src/runtime/tf.js';

function vals(n: number, seed: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * scale);
}

/**
 * Compares the analytic input gradient of sum(w * layer(x)) with central differences. A sampled
 * coordinate where the one-sided differences disagree sits on a kink (ReLU, max-pool tie) within
 * the step, where finite differences say nothing: it is skipped (and counted).
 */
function checkLayer(layer: Layer, P: Params, shape: number[], training = false, h = 5e-3): number {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = vals(n, 1, 1);
  const out = tf.tidy(() => layer(P, tf.tensor(x, shape), { training }).shape);
  const w = tf.tensor(
    vals(
      out.reduce((a, b) => a * b, 1),
      2,
    ),
    out,
  );
  const f = (t: tf.Tensor) => tf.sum(tf.mul(layer(P, t, { training }), w)) as tf.Scalar;
  const g = tf.tidy(() => tf.grad(f)(tf.tensor(x, shape)).dataSync());
  let worst = 0;
  let compared = 0;
  const f0 = tf.tidy(() => f(tf.tensor(x, shape)).dataSync()[0]!);
  for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 40))) {
    const p = Float32Array.from(x);
    const m = Float32Array.from(x);
    p[i]! += h;
    m[i]! -= h;
    const fp = tf.tidy(() => f(tf.tensor(p, shape)).dataSync()[0]!);
    const fm = tf.tidy(() => f(tf.tensor(m, shape)).dataSync()[0]!);
    const fwd = (fp - f0) / h;
    const bwd = (f0 - fm) / h;
    if (Math.abs(fwd - bwd) > 2e-2 * Math.max(1, Math.abs(fwd))) continue;
    const num = (fp - fm) / (2 * h);
    worst = Math.max(worst, Math.abs(num - g[i]!) / Math.max(1, Math.abs(num)));
    compared++;
  }
  w.dispose();
  expect(compared).toBeGreaterThan(10);
  return worst;
}

function params(net: Net, seed = 3): Params {
  return new Map(
    net.decls.map((d, i) => [
      d.name,
      tf.tensor(
        d.init.kind === 'ones'
          ? new Float32Array(d.shape.reduce((a, b) => a * b, 1)).fill(1)
          : vals(
              d.shape.reduce((a, b) => a * b, 1),
              seed + i,
              0.5,
            ),
        d.shape,
      ),
    ]),
  );
}

describe('layer gradients match finite differences (wasm backend, trend kernels)', () => {
  beforeAll(async () => {
    expect((await selectBackend('wasm')).description).toMatch(/trend kernels/);
  });

  it('convolution with bias (stride 1 and 2)', () => {
    for (const stride of [1, 2]) {
      const net = new Net({});
      const conv = net.conv('c', 3, 5, 3, stride, { bias: true });
      expect(checkLayer(conv, params(net), [2, 6, 6, 3])).toBeLessThan(2e-2);
    }
  });

  it('convolution fused with ReLU', () => {
    const net = new Net({});
    const conv = net.convAct('c', 2, 4, 3, 1, { bias: true });
    expect(checkLayer(conv, params(net), [2, 5, 5, 2])).toBeLessThan(2e-2);
  });

  it('dense, max pool, global average pool, flatten', () => {
    const net = new Net({});
    const dense = net.dense('d', 12, 7);
    const P = params(net);
    expect(checkLayer((p, x, c) => dense(p, flatten(p, x, c), c), P, [3, 2, 2, 3])).toBeLessThan(2e-2);
    expect(checkLayer(maxPool2, P, [2, 4, 4, 3])).toBeLessThan(2e-2);
    expect(checkLayer(globalAvgPool, P, [2, 3, 3, 4])).toBeLessThan(2e-2);
  });

  it('batch norm in training mode (batch statistics) and in evaluation mode', () => {
    const net = new Net({});
    const bn = net.bn('b', 3);
    const P = params(net);
    expect(checkLayer(bn, P, [4, 3, 3, 3], true)).toBeLessThan(2e-2);
    expect(checkLayer(bn, P, [4, 3, 3, 3], false)).toBeLessThan(2e-2);
  });

  it('a whole model: logits with respect to the pixel-space input', () => {
    const spec = plainSpec('resnet18', 1 / 16, [8, 8, 1], 3);
    const model = Model.create(spec, 7);
    const layer: Layer = (_P, x) => model.logits(x as tf.Tensor4D, { training: false });
    expect(checkLayer(layer, new Map(), [2, 8, 8, 1], false, 2e-3)).toBeLessThan(3e-2);
    model.dispose();
  });
});

describe('batch-norm running statistics', () => {
  it('a training forward keeps each layer’s batch mean and variance; runningStats averages them in (hand-computed)', () => {
    const net = new Net({});
    const bn = net.bn('b', 2);
    const P = params(net);
    P.get('b/mean')!.dispose();
    P.get('b/var')!.dispose();
    P.set('b/mean', tf.tensor1d([1, 2]));
    P.set('b/var', tf.tensor1d([3, 4]));
    // 5 values per channel: channel 0 is 1..5 (mean 3, biased variance 2), channel 1 is 2, 4, .., 10 (mean 6, variance 8).
    const x = tf.tensor4d([1, 2, 2, 4, 3, 6, 4, 8, 5, 10], [5, 1, 1, 2]);
    const updates: BnBatchStats[] = [];
    tf.tidy(() => void bn(P, x, { training: true, updates }));
    expect(updates.map((u) => [u.layer, u.n])).toEqual([['b', 5]]);
    expect(Array.from(updates[0]!.mean.dataSync())).toEqual([3, 6]);
    expect(Array.from(updates[0]!.variance.dataSync())).toEqual([2, 8]);
    const before = tf.memory().numTensors;
    const out = runningStats(P, updates);
    // 0.9 old + 0.1 batch, the batch variance unbiased (x 5/4).
    expect(out.map((o) => o.name)).toEqual(['b/mean', 'b/var']);
    expect(Array.from(out[0]!.value.dataSync())).toEqual([0.9 * 1 + 0.1 * 3, 0.9 * 2 + 0.1 * 6].map(Math.fround));
    const v = Array.from(out[1]!.value.dataSync());
    [0.9 * 3 + 0.1 * 2.5, 0.9 * 4 + 0.1 * 10].forEach((want, i) => expect(v[i]).toBeCloseTo(want, 6));
    // The batch statistics are disposed, the two results are the caller's.
    expect(tf.memory().numTensors).toBe(before);
    expect(updates[0]!.mean.isDisposed && updates[0]!.variance.isDisposed).toBe(true);
    out.forEach((o) => o.value.dispose());
    x.dispose();
  });
});
