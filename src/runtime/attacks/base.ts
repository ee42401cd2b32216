/**
 * What every attack shares. An attack is a function of (target, batch, parameters, seed) with no
 * hidden state; budgets and steps are in pixel units, images in [0, 1].
 */
import { runSteps, type Steps } from '../pace.js';
import type { Rng } from '../rng.js';
import { tf } from '../tf.js';

/** Something to attack: one model, or an ensemble's members. */
export interface AttackTarget {
  /** Differentiable logits (evaluation mode; noise, if any, drawn from rng). */
  logits(x: tf.Tensor4D, rng: Rng, opts?: { smoothSd?: number }): tf.Tensor2D;
  /** Ensemble members (a model is its own single member). */
  members: AttackTarget[];
  /** The classifier's decision on a batch (majority vote for ensembles). */
  predict(x: tf.Tensor4D, rng: Rng): Int32Array;
  classes: number;
}

export interface AttackParams {
  eps?: number;
  steps?: number;
  step?: number;
  norm?: 'linf' | 'l2' | 'l1';
  random_start?: boolean;
  restarts?: number;
  topk?: number;
  c?: number;
  kappa?: number;
  search?: number;
  lr?: number;
  overshoot?: number;
  candidates?: number;
  m?: number;
  sd?: number;
  /** FAB-T: target classes, and its step's alpha_max, overshoot eta and backward step beta. */
  targets?: number;
  alpha_max?: number;
  eta?: number;
  beta?: number;
  /** Square: score queries per image and restart, and the initial fraction of pixels a square covers. */
  queries?: number;
  p_init?: number;
  /** Square: p's schedule rescaled to `queries` (default true); AutoAttack's composite sets false (not a language parameter). */
  resc_schedule?: boolean;
  /** NAttack: samples per NES step and the search distribution's sd (in arctanh space). */
  population?: number;
  sigma?: number;
  /** APGD: the loss (apgdt's is the targeted DLR; its `targets` as FAB-T's), and the step-halving threshold rho. */
  loss?: 'ce' | 'dlr';
  rho?: number;
  /** APGD: gradient passes averaged per step (eot_iter), and l_1's 3/2/1 eps schedule (use_largereps). */
  eot?: number;
  largereps?: boolean;
  /** AutoAttack: which of the reference's versions ('standard', 'rand'). */
  version?: 'standard' | 'rand';
}

export type Attack = (t: AttackTarget, x: tf.Tensor4D, y: Int32Array, p: AttackParams, r: Rng) => tf.Tensor4D;

/**
 * An attack in steps (see ../pace.ts): a generator that yields the fraction of its work done after
 * each step and returns the adversarial batch. Closed early, it frees every tensor it holds.
 */
export type SteppedAttack = (t: AttackTarget, x: tf.Tensor4D, y: Int32Array, p: AttackParams, r: Rng) => Steps<tf.Tensor4D>;

/** The synchronous form of a stepped attack. */
export function unstepped(a: SteppedAttack): Attack {
  return (t, x, y, p, r) => runSteps(a(t, x, y, p, r));
}

export function oneHot(y: Int32Array, classes: number): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.tensor1d(y, 'int32'), classes) as tf.Tensor2D);
}

/** Summed softmax cross-entropy: per-example gradients do not depend on the batch size. */
export function ceSum(logits: tf.Tensor2D, yh: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.sum(tf.mul(yh, tf.logSoftmax(logits)))) as tf.Scalar;
}

export function ceEach(logits: tf.Tensor2D, yh: tf.Tensor2D): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(yh, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
}

/** Gradient of the summed cross-entropy of one target with respect to the input. */
export function lossGrad(t: AttackTarget, x: tf.Tensor4D, yh: tf.Tensor2D, r: Rng, smoothSd?: number): tf.Tensor4D {
  return tf.grad((z: tf.Tensor) => ceSum(t.logits(z as tf.Tensor4D, r, smoothSd ? { smoothSd } : undefined), yh))(x) as tf.Tensor4D;
}

/**
 * Per-example choice: row i of `a` where mask[i], else row i of `b`. (tf.where broadcasts a
 * rank-1 condition along the LAST axis, numpy style, so the mask is reshaped to [n, 1, ..., 1].)
 */
export function selectRows<T extends tf.Tensor>(mask: tf.Tensor | Uint8Array, a: T, b: T): T {
  return tf.tidy(() => {
    const m = mask instanceof Uint8Array ? tf.tensor1d(mask, 'bool') : tf.cast(mask, 'bool');
    return tf.where(tf.reshape(m, [a.shape[0]!, ...a.shape.slice(1).map(() => 1)]), a, b) as T;
  });
}

export function clip01(x: tf.Tensor): tf.Tensor4D {
  return tf.clipByValue(x, 0, 1) as tf.Tensor4D;
}

export function projectLinf(x: tf.Tensor, x0: tf.Tensor, eps: number): tf.Tensor4D {
  return clip01(tf.minimum(tf.maximum(x, tf.sub(x0, eps)), tf.add(x0, eps)));
}

/** Per-example l_2 norms, shaped [n, 1, 1, 1] for broadcasting. */
export function l2Norms(d: tf.Tensor): tf.Tensor {
  return tf.sqrt(tf.add(tf.sum(tf.square(d), [1, 2, 3], true), 1e-24));
}

export function projectL2(x: tf.Tensor, x0: tf.Tensor, eps: number): tf.Tensor4D {
  const d = tf.sub(x, x0);
  const scale = tf.minimum(1, tf.div(eps, l2Norms(d)));
  return clip01(tf.add(x0, tf.mul(d, scale)));
}

/**
 * Euclidean projection of each row of d onto the l_1 ball of radius eps (Duchi et al. 2008),
 * done on the host: it needs a sort per example.
 */
export function projectL1Rows(d: Float32Array, n: number, dim: number, eps: number): Float32Array {
  const out = new Float32Array(d.length);
  const abs = new Float32Array(dim);
  if (eps <= 0) return out; // the ball is the single point 0
  for (let i = 0; i < n; i++) {
    const row = d.subarray(i * dim, (i + 1) * dim);
    let l1 = 0;
    for (let j = 0; j < dim; j++) l1 += Math.abs(row[j]!);
    if (l1 <= eps) {
      out.set(row, i * dim);
      continue;
    }
    for (let j = 0; j < dim; j++) abs[j] = Math.abs(row[j]!);
    const sorted = Float32Array.from(abs).sort().reverse();
    let cum = 0;
    let theta = 0;
    for (let j = 0; j < dim; j++) {
      cum += sorted[j]!;
      const t = (cum - eps) / (j + 1);
      if (sorted[j]! - t > 0) theta = t;
      else break;
    }
    for (let j = 0; j < dim; j++) out[i * dim + j] = Math.sign(row[j]!) * Math.max(0, abs[j]! - theta);
  }
  return out;
}

export function projectL1(x: tf.Tensor4D, x0: tf.Tensor4D, eps: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const diff = tf.sub(x, x0);
  let p: Float32Array;
  try {
    p = projectL1Rows(diff.dataSync() as Float32Array, n, h * w * c, eps);
  } finally {
    diff.dispose(); // (this difference once leaked a tensor per l_1 step)
  }
  return tf.tidy(() => clip01(tf.add(x0, tf.tensor4d(p, x.shape))));
}

/** Uniform random start in the budget: the l_inf box, the l_2 ball, or the l_1 ball. */
export function randomStart(x0: tf.Tensor4D, eps: number, norm: 'linf' | 'l2' | 'l1', r: Rng): tf.Tensor4D {
  const seed = Math.floor(r() * 2 ** 31);
  return tf.tidy(() => {
    const [n, h, w, c] = x0.shape;
    const dim = h * w * c;
    if (norm === 'linf') return clip01(tf.add(x0, tf.randomUniform(x0.shape, -eps, eps, 'float32', seed)));
    const g = tf.randomNormal(x0.shape, 0, 1, 'float32', seed);
    const radius = tf.mul(eps, tf.pow(tf.randomUniform([n, 1, 1, 1], 0, 1, 'float32', seed + 1), 1 / dim));
    if (norm === 'l2') return clip01(tf.add(x0, tf.mul(tf.div(g, l2Norms(g)), radius)));
    // l_1: random signs times a uniform point of the simplex (normalised exponentials).
    const e = tf.neg(tf.log(tf.randomUniform(x0.shape, 1e-12, 1, 'float32', seed + 2)));
    const dir = tf.mul(tf.sign(g), tf.div(e, tf.sum(e, [1, 2, 3], true)));
    return clip01(tf.add(x0, tf.mul(dir, radius)));
  });
}

/** Per-example perturbation norms (l_inf, l_2, l_1) of a batch. */
export function norms(xAdv: tf.Tensor4D, x0: tf.Tensor4D): { linf: Float32Array; l2: Float32Array; l1: Float32Array } {
  return tf.tidy(() => {
    const d = tf.sub(xAdv, x0);
    return {
      linf: tf.max(tf.abs(d), [1, 2, 3]).dataSync() as Float32Array,
      l2: tf.sqrt(tf.sum(tf.square(d), [1, 2, 3])).dataSync() as Float32Array,
      l1: tf.sum(tf.abs(d), [1, 2, 3]).dataSync() as Float32Array,
    };
  });
}

export function argmax(logits: tf.Tensor2D): Int32Array {
  return tf.tidy(() => tf.argMax(logits, 1).dataSync() as Int32Array);
}
