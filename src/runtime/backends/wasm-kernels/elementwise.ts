/**
 * Elementwise kernels and row sums: Add and Multiply of two same-shaped tensors or of a tensor and a
 * per-channel vector (evaluation-mode batch norm), the ReLU gradient (Step, Cast and Multiply as shipped), Sum
 * over leading axes (bias gradients), Identity without a copy, and the kernels called outside the
 * op registry (DoReFa activations and their gradient, the SGD step).
 */
import { tf } from '../../tf.js';
import { bothThreads, callDirect, grainFor, k, off, offsetOf, stock, threads, type KernelArgs, type TensorInfo, type WasmBackend } from './memory.js';

export const RELU_GRAD = 'TrendReluGrad';

const size = (shape: number[]) => shape.reduce((p, q) => p * q, 1);

/**
 * Float32 Add or Multiply (op 0 or 1 of kernels.c's binary_*: one IEEE operation per element, as
 * the shipped kernels, so the same bits) when both inputs have one shape, or one is a vector over
 * the other's last axis (shape [C] or [1, ..., 1, C]); otherwise the shipped kernel, whose general
 * broadcasting loop took a fifth of an attack step on a batch-norm network. Large tensors are split
 * across the threads in chunks of rows.
 */
export function binary(name: 'Add' | 'Multiply', op: 0 | 1): (args: KernelArgs) => TensorInfo {
  return (args) => {
    const b = args.backend as WasmBackend;
    const { a, b: bb } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== 'float32' || bb.dtype !== 'float32') return stock(name, args);
    if (tf.util.arraysEqual(a.shape, bb.shape)) {
      const n = size(a.shape);
      const out = b.makeOutput(a.shape, 'float32');
      threads().runChunks('binary_same', () => [off(b, a), off(b, bb), off(b, out), op], n, grainFor(n, 1, 16));
      return out;
    }
    // the per-channel vector is the smaller input (either side: both operations commute)
    const [big, v] = size(a.shape) >= size(bb.shape) ? [a, bb] : [bb, a];
    const C = big.shape[big.shape.length - 1];
    const vectorOverLast = C !== undefined && size(v.shape) === C && v.shape.length <= big.shape.length && v.shape[v.shape.length - 1] === C;
    if (!vectorOverLast || C < 4) return stock(name, args);
    const rows = size(big.shape) / C;
    const out = b.makeOutput(big.shape, 'float32');
    threads().runChunks('binary_channels', () => [off(b, big), off(b, v), off(b, out), C, op], rows, grainFor(rows, C, 4));
    return out;
  };
}

export function reluGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const dx = b.makeOutput(x.shape, 'float32');
  bothThreads(
    'relu_backward',
    x.shape.reduce((a, c) => a * c, 1),
    1,
    (a, e) => [off(b, x) + 4 * a, off(b, dy) + 4 * a, off(b, dx) + 4 * a, e - a],
  );
  return dx;
}

/** Sum over every axis but the last (bias gradients) in one pass; other reductions as shipped. */
export function sum(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { x } = args.inputs as { x: TensorInfo };
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(args.attrs.axis as number | number[], x.shape).sort((p, q) => p - q);
  const leading = rank >= 2 && x.dtype === 'float32' && axes.length === rank - 1 && axes.every((a, i) => a === i);
  if (!leading) return stock('Sum', args);
  const c = x.shape[rank - 1]!;
  const m = x.shape.slice(0, -1).reduce((p, q) => p * q, 1);
  const out = b.makeOutput(args.attrs.keepDims ? [...new Array(rank - 1).fill(1), c] : [c], 'float32');
  k().sum_rows(off(b, x), off(b, out), m, c);
  return out;
}

/** Identity shares the data (as the cpu backend does) instead of copying it. */
export function identity({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { x } = inputs as { x: TensorInfo };
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** DoReFa activation quantisation with `levels` = 2^k - 1, and its straight-through gradient. */
export function actQuant(x: tf.Tensor, levels: number): tf.Tensor {
  return callDirect([x.shape], ([y]) => k().act_quant(offsetOf(x), y!, x.size, levels))[0]!;
}

export function actQuantGrad(x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  return callDirect([x.shape], ([dx]) => k().act_quant_backward(offsetOf(x), offsetOf(dy), dx!, x.size))[0]!;
}

/**
 * One SGD step for a weight w with gradient g and velocity v, as new tensors (w', v'): never in
 * place, since XNNPACK caches packed weights by tensor.
 */
export function sgdStep(w: tf.Tensor, g: tf.Tensor, v: tf.Tensor, lr: number, mu: number, wd: number): [tf.Tensor, tf.Tensor] {
  const [wo, vo] = callDirect([w.shape, w.shape], ([wo, vo]) => k().sgd_step(offsetOf(w), offsetOf(g), offsetOf(v), wo!, vo!, w.size, lr, mu, wd));
  return [wo!, vo!];
}
