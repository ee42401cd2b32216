import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { tf } from '../../src/runtime/tf.js';

/** Runs f on the cpu backend and on wasm with the same inputs; returns both results. */
async function both(f: () => tf.Tensor[]): Promise<{ cpu: Float32Array[]; wasm: Float32Array[] }> {
  await tf.setBackend('cpu');
  const cpu = tf.tidy(f).map((t) => t.dataSync() as Float32Array);
  await tf.setBackend('wasm');
  const wasm = tf.tidy(f).map((t) => t.dataSync() as Float32Array);
  return { cpu, wasm };
}

function maxRelErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(a[i]!));
  }
  return num / Math.max(den, 1e-12);
}

function data(shape: number[], seed: number): number[] {
  let s = seed;
  return Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  });
}

describe('wasm kernels agree with the cpu backend', () => {
  beforeAll(async () => {
    const c = await selectBackend('wasm');
    expect(c.description).toMatch(/trend kernels/);
  });

  const cases: Array<{ x: [number, number, number, number]; f: [number, number, number, number]; s: number; pad: 'same' | 'valid' | number }> = [
    { x: [4, 9, 9, 3], f: [3, 3, 3, 5], s: 1, pad: 'same' },
    { x: [3, 8, 7, 2], f: [3, 3, 2, 4], s: 1, pad: 'valid' },
    { x: [2, 9, 9, 3], f: [3, 3, 3, 4], s: 2, pad: 'same' },
    { x: [2, 8, 8, 3], f: [3, 3, 3, 4], s: 2, pad: 'valid' },
    { x: [2, 10, 10, 4], f: [1, 1, 4, 6], s: 2, pad: 'valid' },
    { x: [2, 7, 7, 1], f: [5, 5, 1, 3], s: 1, pad: 2 },
    // At least 8 output channels: the panel GEMM (5-row blocks, partial last panel), im2col runs
    // copied four floats at a time (runs of 3, 6 and 15 floats), and input gradients by GEMM.
    { x: [3, 10, 10, 1], f: [3, 3, 1, 16], s: 1, pad: 'same' },
    { x: [2, 11, 9, 2], f: [3, 3, 2, 12], s: 1, pad: 'same' },
    { x: [2, 9, 9, 9], f: [3, 3, 9, 10], s: 1, pad: 'valid' },
    { x: [2, 12, 12, 3], f: [5, 5, 3, 8], s: 2, pad: 'same' },
  ];
  for (const c of cases) {
    it(`conv2d gradients x=${c.x} filter=${c.f} stride=${c.s} pad=${c.pad}`, async () => {
      const x = data(c.x, 1);
      const w = data(c.f, 2);
      const { cpu, wasm } = await both(() => {
        const xt = tf.tensor4d(x, c.x);
        const wt = tf.tensor4d(w, c.f);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad))));
        return g([xt, wt]);
      });
      expect(maxRelErr(cpu[0]!, wasm[0]!)).toBeLessThan(1e-5);
      expect(maxRelErr(cpu[1]!, wasm[1]!)).toBeLessThan(1e-5);
    });
  }

  // The larger shapes (over 64K floats) run split across both threads, with an odd batch.
  for (const shape of [
    [3, 8, 8, 6],
    [5, 40, 40, 9],
  ] as Array<[number, number, number, number]>) {
    it(`max-pool and relu gradients (with ties at zero) ${shape}`, async () => {
      const x = data(shape, 3);
      const [n, h, w, c] = shape;
      const { cpu, wasm } = await both(() => {
        const xt = tf.tensor4d(x, shape);
        const weights = tf.range(0, n * (h / 2) * (w / 2) * c).reshape([n, h / 2, w / 2, c]);
        const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(tf.relu(a) as tf.Tensor4D, 2, 2, 'valid'), weights)));
        const g2 = tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.maxPool(a as tf.Tensor4D, 3, 2, 'same'))));
        return [g(xt), g2(xt)];
      });
      expect(maxRelErr(cpu[0]!, wasm[0]!)).toBeLessThan(1e-6);
      expect(maxRelErr(cpu[1]!, wasm[1]!)).toBeLessThan(1e-6);
    });
  }
  it('values (round half to even, the ends of [0, 1]) and straight-through gradients', async () => {
    const { quantizeActivations } = await import('../../src/runtime/models/quant.js');
    // Edges: exact 0 and 1, values outside, and exact halves between 2-bit levels (1/6, 1/2, 5/6 x 3 = 0.5, 1.5, 2.5).
    const edge = [-0.5, 0, 1 / 6, 0.5, 5 / 6, 1, 1.5, 0.999, 0.001];
    const x = [...edge, ...data([3, 5, 5, 2], 9).map((v) => v * 3)];
    const w = data([x.length], 10);
    for (const bits of [1, 2, 4]) {
      const { cpu, wasm } = await both(() => {
        const xt = tf.tensor1d(x);
        const y = quantizeActivations(xt, bits);
        const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(quantizeActivations(a, bits), tf.tensor1d(w))))(xt);
        return [y, g];
      });
      expect(Array.from(wasm[0]!)).toEqual(Array.from(cpu[0]!));
      // (-0 and +0 differ only in sign: dy * 0 against a masked dy.)
      expect(Array.from(wasm[1]!, (v) => v + 0)).toEqual(Array.from(cpu[1]!, (v) => v + 0));
    }
  });
});

describe("wasm Add and Multiply give the cpu backend's bits", () => {
  // Same shapes, a vector over the last axis on either side and as [1, 1, 1, C], channel counts
  // with and without a remainder of 4, and tensors large enough (over 64K floats) to be split
  // across the threads; one IEEE operation per element, so equal, not close.
  const pairs: Array<[number[], number[]]> = [
    [
      [3, 5, 5, 4],
      [3, 5, 5, 4],
    ],
    [
      [64, 28, 28, 4],
      [64, 28, 28, 4],
    ],
    [[64, 28, 28, 4], [4]],
    [[4], [64, 28, 28, 4]],
    [
      [40, 30, 30, 6],
      [1, 1, 1, 6],
    ],
    [[7, 9, 13], [13]],
    [[2, 3, 3, 1], [1]],
  ];
  for (const [sa, sb] of pairs) {
    it(`${sa} and ${sb}`, async () => {
      const a = data(sa, 21);
      const b = data(sb, 22);
      const { cpu, wasm } = await both(() => {
        const x = tf.tensor(a, sa);
        const y = tf.tensor(b, sb);
        return [tf.add(x, y), tf.mul(x, y), tf.mul(y, x)];
      });
      for (let i = 0; i < 3; i++) expect(Array.from(wasm[i]!)).toEqual(Array.from(cpu[i]!));
    });
  }
});

describe('wasm reductions and matmul agree with the cpu backend', () => {
  it('sum over leading axes, keepDims, and other axes', async () => {
    const x = data([4, 5, 6, 7], 9);
    const { cpu, wasm } = await both(() => {
      const t = tf.tensor4d(x, [4, 5, 6, 7]);
      return [tf.sum(t, [0, 1, 2]), tf.sum(t, [0, 1, 2], true), tf.sum(t, 1), tf.sum(t)];
    });
    for (let i = 0; i < 4; i++) expect(maxRelErr(cpu[i]!, wasm[i]!)).toBeLessThan(1e-5);
  });
  it('matmul with every transpose combination', async () => {
    const a = data([7, 13], 4);
    const b = data([13, 5], 5);
    const { cpu, wasm } = await both(() => {
      const A = tf.tensor2d(a, [7, 13]);
      const B = tf.tensor2d(b, [13, 5]);
      return [
        tf.matMul(A, B),
        tf.matMul(A.transpose(), B, true, false),
        tf.matMul(A, B.transpose(), false, true),
        tf.matMul(A.transpose(), B.transpose(), true, true),
      ];
    });
    for (let i = 0; i < 4; i++) expect(maxRelErr(cpu[i]!, wasm[i]!)).toBeLessThan(1e-5);
  });
});

describe('trend conv op (conv + bias + ReLU, lazy gradients) agrees with stock ops on cpu', () => {
  it('values and gradients for x, filter and bias', async () => {
    const { conv2dOp } = await import('../../src/runtime/backends/wasm-kernels/conv.js');
    const x = data([3, 9, 9, 4], 11);
    const w = data([3, 3, 4, 6], 12);
    const bias = data([6], 13);
    for (const relu of [false, true]) {
      const { cpu, wasm } = await both(() => {
        const xt = tf.tensor4d(x, [3, 9, 9, 4]);
        const wt = tf.tensor4d(w, [3, 3, 4, 6]);
        const bt = tf.tensor1d(bias);
        const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => conv2dOp(a as tf.Tensor4D, b as tf.Tensor4D, c, 1, relu);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(f(a, b, c))));
        return [f(xt, wt, bt), ...g([xt, wt, bt])];
      });
      for (let i = 0; i < 4; i++) expect(maxRelErr(cpu[i]!, wasm[i]!)).toBeLessThan(1e-5);
    }
  });
  for (const shape of [
    [2, 6, 6, 5],
    [3, 51, 49, 9],
  ] as Array<[number, number, number, number]>) {
    it(`2x2 max pool and identity ${shape}`, async () => {
      const x = data(shape, 14);
      const { cpu, wasm } = await both(() => {
        const t = tf.tensor4d(x, shape);
        return [tf.maxPool(t, 2, 2, 'valid'), tf.maxPool(t, 2, 2, 'same'), tf.clone(t)];
      });
      for (let i = 0; i < 3; i++) expect(maxRelErr(cpu[i]!, wasm[i]!)).toBe(0);
    });
  }
});

describe('training-mode batch norm kernel agrees with stock ops on cpu', () => {
  // C = 6: the per-channel path in one block of rows; C = 8 over 288 rows: four channels at a
  // time, and sums over two 256-row blocks.
  for (const shape of [
    [3, 5, 4, 6],
    [2, 12, 12, 8],
  ] as Array<[number, number, number, number]>) {
    it(`values, batch statistics and gradients for x, gamma and beta (${shape})`, async () => {
      const { batchNormTrain } = await import('../../src/runtime/backends/wasm-kernels/batch-norm.js');
      const C = shape[3];
      const x = data(shape, 21).map((v, i) => v * 3 + (i % C));
      const g = data([C], 22).map((v) => 1 + v);
      const b = data([C], 23);
      const w = data(shape, 24);
      const { cpu, wasm } = await both(() => {
        const xt = tf.tensor4d(x, shape);
        const gt = tf.tensor1d(g);
        const bt = tf.tensor1d(b);
        const wt = tf.tensor4d(w, shape);
        const r = batchNormTrain(xt, gt, bt, 1e-5);
        const grads = tf.grads((p: tf.Tensor, q: tf.Tensor, s: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(p, q, s, 1e-5).y, wt)))([xt, gt, bt]);
        return [r.y, r.mean, r.variance, ...grads];
      });
      for (let i = 0; i < 6; i++) expect(maxRelErr(cpu[i]!, wasm[i]!)).toBeLessThan(2e-5);
    });
  }
});
