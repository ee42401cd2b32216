/**
 * Quantisers with the gradients attacks need to see through them (BPDA / straight-through),
 * as restated in ../shared/ALGORITHMS.md:
 *
 * - input k-bit: w = (max - min) / 2^k over the batch (or per image); values equal to max move
 *   down by w/2; q = floor((x - min)/w)*w + w/2 + min. Backward: identity.
 * - halftone: per image (x - mean)/(max - min), each channel convolved with the halftone kernel
 *   plus 1e-3, output 0.5*sign(.)+0.5. Backward: the gradient of 0.5*sigmoid(conv(.)+1e-3)+0.5
 *   (the authors' stand-in, through the per-image normalisation too), or identity.
 * - DoReFa: q_k(v) = round(v(2^k-1))/(2^k-1) with a straight-through round; weights
 *   m*(2 q_k(tanh(w)/(2m) + 1/2) - 1), m = max|tanh w|; activations q_k(clip(v, 0, 1)).
 */
import { actQuant, actQuantGrad } from '../backends/wasm-kernels/elementwise.js';
import { kernelModule } from '../backends/wasm-kernels/memory.js';
import { tf } from '../tf.js';

/**
 * A unary op with a forward value and a chosen backward pass (dy, x) -> dx. The input is saved
 * with the engine for the backward pass: a closure over it is not enough, since the forward
 * pass's tidy disposes any intermediate no kernel saved (a DoReFa activation after a residual
 * add lost its input that way and failed in the backward pass).
 */
export function withGradient(forward: (x: tf.Tensor) => tf.Tensor, backward: (dy: tf.Tensor, x: tf.Tensor) => tf.Tensor): (x: tf.Tensor) => tf.Tensor {
  const f = tf.customGrad(((a: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
    save([a]);
    return { value: forward(a), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => backward(dy, saved[0]!) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (x) => f(x) as tf.Tensor;
}

const identityGrad = (dy: tf.Tensor) => dy;
const roundSTEOp = withGradient((a) => tf.round(a), identityGrad);

/** round() whose gradient is the identity (straight-through estimator). */
export function roundSTE(x: tf.Tensor): tf.Tensor {
  return roundSTEOp(x);
}

/** DoReFa q_k on values in [0, 1]. */
export function quantizeK(v: tf.Tensor, bits: number): tf.Tensor {
  if (bits >= 32) return v;
  const n = 2 ** bits - 1;
  return tf.div(roundSTE(tf.mul(v, n)), n);
}

export function quantizeWeights(w: tf.Tensor, bits: number): tf.Tensor {
  if (bits >= 32) return w;
  return tf.tidy(() => {
    const t = tf.tanh(w);
    const m = tf.max(tf.abs(t));
    const v = tf.add(tf.div(t, tf.mul(m, 2)), 0.5);
    return tf.mul(m, tf.sub(tf.mul(quantizeK(v, bits), 2), 1));
  });
}

const activationQuantOps = new Map<number, (x: tf.Tensor) => tf.Tensor>();

/**
 * DoReFa activations q_k(clip(a, 0, 1)) as one op: the straight-through gradient is dy where
 * 0 <= a <= 1 and 0 elsewhere (the gradient of the clip; rounding passes it through). One op
 * instead of four keeps the backward pass to a mask and a multiply.
 */
export function quantizeActivations(a: tf.Tensor, bits: number): tf.Tensor {
  if (bits >= 32) return tf.clipByValue(a, 0, 1);
  let op = activationQuantOps.get(bits);
  if (!op) {
    const n = 2 ** bits - 1;
    // On wasm, one kernel each way; elsewhere the same arithmetic from stock ops.
    const own = (x: tf.Tensor) => kernelModule() !== undefined && x.dtype === 'float32';
    op = withGradient(
      (x) => (own(x) ? actQuant(x, n) : tf.div(tf.round(tf.mul(tf.clipByValue(x, 0, 1), n)), n)),
      (dy, x) => (own(x) ? actQuantGrad(x, dy) : tf.mul(dy, tf.cast(tf.logicalAnd(tf.greaterEqual(x, 0), tf.lessEqual(x, 1)), 'float32'))),
    );
    activationQuantOps.set(bits, op);
  }
  return op(a);
}

/** min/max over the whole batch, or per image (broadcastable to x). */
function range(x: tf.Tensor4D, perImage: boolean): [tf.Tensor, tf.Tensor] {
  return perImage ? [tf.min(x, [1, 2, 3], true), tf.max(x, [1, 2, 3], true)] : [tf.min(x), tf.max(x)];
}

/** The k-bit input quantiser's forward value (no gradient defined). */
export function inputQuantValue(x: tf.Tensor4D, bits: number, perImage: boolean): tf.Tensor4D {
  return tf.tidy(() => {
    const [lo, hi] = range(x, perImage);
    const w = tf.maximum(tf.div(tf.sub(hi, lo), 2 ** bits), 1e-12);
    const atMax = tf.greaterEqual(x, hi);
    const xs = tf.where(atMax, tf.sub(x, tf.div(w, 2)), x);
    return tf.add(tf.add(tf.mul(tf.floor(tf.div(tf.sub(xs, lo), w)), w), tf.div(w, 2)), lo) as tf.Tensor4D;
  });
}

/** k-bit input quantisation with an identity backward pass (BPDA). */
export function inputQuant(x: tf.Tensor4D, bits: number, perImage: boolean): tf.Tensor4D {
  return withGradient((a) => inputQuantValue(a as tf.Tensor4D, bits, perImage), identityGrad)(x) as tf.Tensor4D;
}

export const HALFTONE_KERNEL = [
  [-1, -2, -1],
  [-2, 16, -2],
  [-1, -2, -1],
];

/**
 * conv(normalise(x)) + 1e-3, channel by channel. Each channel is convolved as its own
 * one-channel image (channels moved to the batch axis) with a plain conv2d: the same sums as a
 * depthwise conv, and it has gradients on every backend (wasm has no depthwise backward).
 */
function halftoneResponse(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const mean = tf.mean(x, [1, 2, 3], true);
  const lo = tf.min(x, [1, 2, 3], true);
  const hi = tf.max(x, [1, 2, 3], true);
  const xn = tf.div(tf.sub(x, mean), tf.maximum(tf.sub(hi, lo), 1e-12)) as tf.Tensor4D;
  const k = tf.tensor4d(HALFTONE_KERNEL.flat(), [3, 3, 1, 1]);
  const planes = c === 1 ? xn : (tf.reshape(tf.transpose(xn, [0, 3, 1, 2]), [n * c, h, w, 1]) as tf.Tensor4D);
  const r = tf.conv2d(planes, k, 1, 'same');
  const out = c === 1 ? r : tf.transpose(tf.reshape(r, [n, c, h, w]), [0, 2, 3, 1]);
  return tf.add(out, 1e-3) as tf.Tensor4D;
}

export function halftoneValue(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.add(tf.mul(tf.sign(halftoneResponse(x)), 0.5), 0.5) as tf.Tensor4D);
}

/** The authors' differentiable stand-in for halftoning. */
export function halftoneStandIn(x: tf.Tensor4D): tf.Tensor4D {
  return tf.add(tf.mul(tf.sigmoid(halftoneResponse(x)), 0.5), 0.5) as tf.Tensor4D;
}

const stopGradient = withGradient(
  (a) => tf.clone(a),
  (dy) => tf.zerosLike(dy),
);

/**
 * Halftone with BPDA. With the sigmoid stand-in s: s(x) + stopGradient(ht(x) - s(x)), whose value
 * is exactly ht(x) (ht is 0, 1/2 or 1 and s lies in [1/2, 1], so both float operations are exact)
 * and whose gradient is s's. (TF.js cannot take a gradient inside a custom gradient.)
 */
export function halftone(x: tf.Tensor4D, bpda: 'sigmoid' | 'identity'): tf.Tensor4D {
  if (bpda === 'identity') return withGradient((a) => halftoneValue(a as tf.Tensor4D), identityGrad)(x) as tf.Tensor4D;
  const s = halftoneStandIn(x);
  return tf.add(s, stopGradient(tf.sub(halftoneValue(x), s))) as tf.Tensor4D;
}
