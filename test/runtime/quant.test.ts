import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backends/select.js';
import {
  halftoneStandIn,
  halftoneValue,
  HALFTONE_KERNEL,
  inputQuant,
  inputQuantValue,
  quantizeActivations,
  quantizeWeights,
} from '../../src/runtime/models/quant.js';
import { tf } from '../../src/runtime/tf.js';

const arr = (t: tf.Tensor) => Array.from(t.dataSync());

/** Central finite differences of a scalar function of one tensor. */
function numericGrad(f: (x: tf.Tensor) => tf.Scalar, x: Float32Array, shape: number[], h = 1e-3): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const p = Float32Array.from(x);
    const m = Float32Array.from(x);
    p[i]! += h;
    m[i]! -= h;
    const fp = tf.tidy(() => f(tf.tensor(p, shape)).dataSync()[0]!);
    const fm = tf.tidy(() => f(tf.tensor(m, shape)).dataSync()[0]!);
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

describe('quantisers against hand-computed values', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it('2-bit input quantisation over the batch', () => {
    // min -1, max 3: w = 4/4 = 1; 3 (the max) moves down by w/2 to 2.5.
    const x = tf.tensor4d([-1, 0, 0.4, 1.2, 2.9, 3], [1, 1, 6, 1]);
    // q = floor((x - min)/w) * w + w/2 + min
    expect(arr(inputQuantValue(x, 2, false))).toEqual([-0.5, 0.5, 0.5, 1.5, 2.5, 2.5]);
  });

  it('per-image statistics differ from batch statistics', () => {
    const x = tf.tensor4d([0, 1, 10, 12], [2, 1, 2, 1]);
    // per image: [0,1] -> w = 0.5: 0 -> 0.25, 1 -> 0.75; [10,12] -> w = 1: 10 -> 10.5, 12 -> 11.5
    expect(arr(inputQuantValue(x, 1, true))).toEqual([0.25, 0.75, 10.5, 11.5]);
    // batch: [0,12], w = 6: 0 -> 3, 1 -> 3, 10 -> 9, 12 -> 9
    expect(arr(inputQuantValue(x, 1, false))).toEqual([3, 3, 9, 9]);
  });

  it('DoReFa weights: 1 bit gives +-max|tanh w|, 2 bits four levels', () => {
    const w = tf.tensor1d([-2, -0.1, 0.3, 1]);
    const m = Math.tanh(2);
    const q1 = arr(quantizeWeights(w, 1));
    expect(q1.map((v) => Math.abs(Math.abs(v) - m) < 1e-6)).toEqual([true, true, true, true]);
    expect(q1.map(Math.sign)).toEqual([-1, -1, 1, 1]);
    // 2 bits: v = tanh(w)/(2m) + 1/2 quantised to {0, 1/3, 2/3, 1}, then m*(2q - 1)
    const expected = [-2, -0.1, 0.3, 1].map((x) => {
      const v = Math.tanh(x) / (2 * m) + 0.5;
      return m * (2 * (Math.round(v * 3) / 3) - 1);
    });
    arr(quantizeWeights(w, 2)).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6));
  });

  it('DoReFa activations clip to [0,1] and quantise', () => {
    expect(arr(quantizeActivations(tf.tensor1d([-1, 0.2, 0.5, 0.9, 2]), 2)).map((v) => +v.toFixed(6))).toEqual([
      0,
      +(1 / 3).toFixed(6),
      +(2 / 3).toFixed(6),
      1,
      1,
    ]);
  });

  it('halftone: sign of the kernel response of the normalised image', () => {
    // A 3x3 image with a bright centre: the centre responds 16*1 minus its neighbours.
    const img = [0, 0, 0, 0, 1, 0, 0, 0, 0];
    const out = arr(halftoneValue(tf.tensor4d(img, [1, 3, 3, 1])));
    // Hand computation: normalised x = (x - 1/9)/1; response r = conv(x) + 1e-3 ('same', zero pad).
    const xn = img.map((v) => v - 1 / 9);
    const r = xn.map((_, idx) => {
      const i = Math.floor(idx / 3);
      const j = idx % 3;
      let s = 1e-3;
      for (let a = -1; a <= 1; a++)
        for (let b = -1; b <= 1; b++) {
          const ii = i + a;
          const jj = j + b;
          if (ii >= 0 && ii < 3 && jj >= 0 && jj < 3) s += HALFTONE_KERNEL[a + 1]![b + 1]! * xn[ii * 3 + jj]!;
        }
      return s;
    });
    expect(out).toEqual(r.map((v) => (v > 0 ? 1 : v < 0 ? 0 : 0.5)));
  });
});

describe('gradients: stand-ins and straight-through estimators', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it('the halftone stand-in matches finite differences', () => {
    const x = Float32Array.from({ length: 2 * 4 * 4 * 1 }, (_, i) => Math.sin(i * 1.7) * 0.8);
    const shape = [2, 4, 4, 1];
    const wts = tf.tensor(
      Float32Array.from({ length: x.length }, (_, i) => Math.cos(i)),
      shape,
    );
    const f = (t: tf.Tensor) => tf.sum(tf.mul(halftoneStandIn(t as tf.Tensor4D), wts)) as tf.Scalar;
    const analytic = tf.grad(f)(tf.tensor(x, shape)).dataSync();
    const numeric = numericGrad(f, x, shape);
    for (let i = 0; i < x.length; i++) expect(analytic[i]!).toBeCloseTo(numeric[i]!, 2);
  });

  it('halftone with BPDA backpropagates the stand-in gradient', async () => {
    const { halftone } = await import('../../src/runtime/models/quant.js');
    const x = tf.tensor4d(
      Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)),
      [1, 4, 4, 1],
    );
    const w = tf.tensor4d(
      Float32Array.from({ length: 16 }, (_, i) => Math.cos(i)),
      [1, 4, 4, 1],
    );
    const viaBpda = tf
      .grad((t: tf.Tensor) => tf.sum(tf.mul(halftone(t as tf.Tensor4D, 'sigmoid'), w)))(x)
      .dataSync();
    const viaStandIn = tf
      .grad((t: tf.Tensor) => tf.sum(tf.mul(halftoneStandIn(t as tf.Tensor4D), w)))(x)
      .dataSync();
    expect(Array.from(viaBpda)).toEqual(Array.from(viaStandIn));
    const viaIdentity = tf
      .grad((t: tf.Tensor) => tf.sum(tf.mul(halftone(t as tf.Tensor4D, 'identity'), w)))(x)
      .dataSync();
    expect(Array.from(viaIdentity)).toEqual(Array.from(w.dataSync()));
  });

  it('input quantisation passes gradients straight through', () => {
    const x = tf.tensor4d([0.1, 0.5, 0.9, 0.3], [1, 2, 2, 1]);
    const w = tf.tensor4d([1, -2, 3, 0.5], [1, 2, 2, 1]);
    expect(arr(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(inputQuant(t as tf.Tensor4D, 2, false), w)))(x))).toEqual([1, -2, 3, 0.5]);
  });

  it('DoReFa weight gradient: straight-through rounding, plus the path through m = max|tanh w|', () => {
    const ws = [-1.5, -0.2, 0.4, 0.9];
    const g = arr(tf.grad((t: tf.Tensor) => tf.sum(quantizeWeights(t, 2)))(tf.tensor1d(ws)));
    // wq_i = m (2 q_i - 1), q_i = round(3 v_i)/3 (gradient 1), v_i = t_i/(2m) + 1/2, t = tanh w.
    // d wq_i / d t_i = 1; d wq_i / d m = (2 q_i - 1) - t_i/m = 2 (q_i - v_i); m depends on the
    // largest |t_j| only, with d m / d w_j = sign(t_j)(1 - t_j^2).
    const t = ws.map(Math.tanh);
    const m = Math.max(...t.map(Math.abs));
    const j = t.findIndex((v) => Math.abs(v) === m);
    const viaM = t.reduce((s, ti) => {
      const v = ti / (2 * m) + 0.5;
      return s + 2 * (Math.round(3 * v) / 3 - v);
    }, 0);
    ws.forEach((w, i) => {
      const direct = 1 - Math.tanh(w) ** 2;
      const expected = i === j ? direct + viaM * Math.sign(t[j]!) * (1 - t[j]! ** 2) : direct;
      expect(g[i]!).toBeCloseTo(expected, 5);
    });
  });

  it('DoReFa activation gradient is 1 inside [0,1] and 0 outside', () => {
    expect(arr(tf.grad((t: tf.Tensor) => tf.sum(quantizeActivations(t, 3)))(tf.tensor1d([-0.5, 0.2, 0.7, 1.5])))).toEqual([0, 1, 1, 0]);
  });

  it('a quantiser whose input no kernel saves still has it in the backward pass', async () => {
    // As after a ResNet block's residual add: variableGrads' forward tidy disposes every
    // intermediate that no kernel saved, so the quantiser must save its input itself.
    for (const backend of ['cpu', 'wasm']) {
      await selectBackend(backend);
      const v = tf.variable(tf.tensor1d([-0.5, 0.2, 0.7, 1.5]));
      const { grads, value } = tf.variableGrads(() => tf.sum(quantizeActivations(tf.add(v, 0.1), 2)) as tf.Scalar);
      expect(arr(Object.values(grads)[0]!), backend).toEqual([0, 1, 1, 0]);
      tf.dispose([v, value, ...Object.values(grads)]);
    }
    await selectBackend('cpu');
  });
});

describe('halftone on colour images, and every quantiser on the wasm backend', () => {
  it('on a 3-channel image: per-image normalisation, then the kernel over each channel alone', async () => {
    await selectBackend('cpu');
    const x = tf.tensor4d(
      Float32Array.from({ length: 2 * 5 * 5 * 3 }, (_, i) => (Math.sin(i * 0.37) + 1) / 2),
      [2, 5, 5, 3],
    );
    const all = halftoneStandIn(x).arraySync() as number[][][][];
    // Normalisation is per image over all channels (mean, min and max of the whole image); the
    // 3x3 kernel then runs over each channel alone. Computed by hand below.
    const d = x.arraySync() as number[][][][];
    for (let n = 0; n < 2; n++) {
      const flat = d[n]!.flat(2);
      const mean = flat.reduce((a, b) => a + b, 0) / flat.length;
      const range = Math.max(...flat) - Math.min(...flat);
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < 5; i++)
          for (let j = 0; j < 5; j++) {
            let s = 1e-3;
            for (let a = -1; a <= 1; a++)
              for (let b = -1; b <= 1; b++) {
                const ii = i + a;
                const jj = j + b;
                if (ii >= 0 && ii < 5 && jj >= 0 && jj < 5) s += HALFTONE_KERNEL[a + 1]![b + 1]! * ((d[n]![ii]![jj]![c]! - mean) / range);
              }
            expect(all[n]![i]![j]![c]!).toBeCloseTo(0.5 / (1 + Math.exp(-s)) + 0.5, 5);
          }
      }
    }
  });

  it('input gradients through input (bits, halftone), weight and activation quantisers agree between wasm and cpu', async () => {
    const { Model } = await import('../../src/runtime/models/model.js');
    const variants = [
      { input: { kind: 'bits' as const, bits: 1, stats: 'batch' as const, bpda: 'sigmoid' as const } },
      { input: { kind: 'halftone' as const, stats: 'batch' as const, bpda: 'sigmoid' as const } },
      { weightBits: 2 },
      { activationBits: 2 },
    ];
    for (const shape of [
      [8, 8, 1],
      [8, 8, 3],
    ] as Array<[number, number, number]>) {
      const x = Float32Array.from({ length: 4 * shape[0] * shape[1] * shape[2] }, (_, i) => (Math.sin(i * 0.7) + 1) / 2);
      for (const v of variants) {
        const spec = {
          arch: 'cnn',
          width: 0.25,
          shape,
          classes: 3,
          input: null,
          weightBits: null,
          activationBits: null,
          noise: {},
          mean: shape.map(() => 0.5).slice(0, shape[2]),
          std: shape.map(() => 0.25).slice(0, shape[2]),
          ...v,
        };
        const grads: Float32Array[] = [];
        for (const be of ['cpu', 'wasm'] as const) {
          await selectBackend(be);
          const m = Model.create(spec, 4);
          const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(m.logits(t as tf.Tensor4D, { training: false }), tf.tensor2d([[1, -1, 0.5]]))))(
            tf.tensor4d(x, [4, ...shape]),
          );
          grads.push(g.dataSync() as Float32Array);
          m.dispose();
        }
        const scale = Math.max(...grads[0]!.map(Math.abs));
        expect(scale).toBeGreaterThan(0);
        grads[1]!.forEach((g, i) => expect(Math.abs(g - grads[0]![i]!)).toBeLessThan(1e-3 * scale + 1e-6));
      }
    }
  });
});
