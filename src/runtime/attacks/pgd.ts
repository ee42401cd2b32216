/**
 * PGD under l_inf, l_2 or l_1, from an optional uniform random start in the budget, with
 * restarts keeping each example's highest-loss result.
 * - l_inf: x += step * sign(g), project to the eps box and [0, 1]
 * - l_2:   x += step * g / ||g||_2, project to the eps ball and [0, 1]
 * - l_1:   x += step * e, e the sign of g on its top-k fraction of coordinates with ||e||_1 = 1
 *          (a sparse steepest-ascent step), project to the l_1 ball, then [0, 1]
 */
import { tf } from '../tf.js';
import { runSteps, scaled, type Steps } from '../pace.js';
import type { Rng } from '../rng.js';
import {
  ceEach,
  l2Norms,
  lossGrad,
  oneHot,
  projectL1,
  projectL2,
  projectLinf,
  randomStart,
  selectRows,
  unstepped,
  type Attack,
  type AttackParams,
  type AttackTarget,
  type SteppedAttack,
} from './base.js';

function l1Direction(g: tf.Tensor4D, topk: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = g.shape;
    const dim = h * w * c;
    const k = Math.max(1, Math.round(topk * dim));
    const flat = tf.reshape(g, [n, dim]);
    const abs = tf.abs(flat);
    const kth = tf.min(tf.topk(abs, k).values, 1, true);
    const mask = tf.cast(tf.greaterEqual(abs, kth), 'float32');
    const e = tf.mul(tf.sign(flat), mask);
    const count = tf.maximum(tf.sum(mask, 1, true), 1);
    return tf.reshape(tf.div(e, count), g.shape) as tf.Tensor4D;
  });
}

export function pgdStep(g: tf.Tensor4D, x: tf.Tensor4D, x0: tf.Tensor4D, p: AttackParams): tf.Tensor4D {
  const eps = p.eps!;
  const step = p.step!;
  if (p.norm === 'l2') return tf.tidy(() => projectL2(tf.add(x, tf.mul(step, tf.div(g, l2Norms(g)))), x0, eps));
  if (p.norm === 'l1') {
    const moved = tf.tidy(() => tf.add(x, tf.mul(step, l1Direction(g, p.topk ?? 0.01))) as tf.Tensor4D);
    const out = projectL1(moved, x0, eps);
    moved.dispose();
    return out;
  }
  return tf.tidy(() => projectLinf(tf.add(x, tf.mul(step, tf.sign(g))), x0, eps));
}

/** One PGD run; `grad` gives the ascent gradient at x (plain, or averaged over noise for EPGD). */
export function* pgdRunSteps(x0: tf.Tensor4D, p: AttackParams, r: Rng, grad: (x: tf.Tensor4D) => tf.Tensor4D): Steps<tf.Tensor4D> {
  let x = p.random_start ? randomStart(x0, p.eps!, p.norm ?? 'linf', r) : (tf.clone(x0) as tf.Tensor4D);
  let done = false;
  try {
    for (let i = 0; i < p.steps!; i++) {
      const g = grad(x);
      try {
        const next = pgdStep(g, x, x0, p);
        x.dispose();
        x = next;
      } finally {
        g.dispose();
      }
      yield (i + 1) / p.steps!;
    }
    done = true;
    return x;
  } finally {
    if (!done) x.dispose();
  }
}

export function pgdRun(x0: tf.Tensor4D, p: AttackParams, r: Rng, grad: (x: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D {
  return runSteps(pgdRunSteps(x0, p, r, grad));
}

/** Runs each restart and keeps, per example, the result with the highest loss. */
export function* keepWorstSteps(t: AttackTarget, runs: (() => Steps<tf.Tensor4D>)[], y: Int32Array, r: Rng): Steps<tf.Tensor4D> {
  const yh = oneHot(y, t.classes);
  let best: tf.Tensor4D | undefined;
  let bestLoss: tf.Tensor1D | undefined;
  let done = false;
  try {
    for (let k = 0; k < runs.length; k++) {
      const x = yield* scaled(runs[k]!(), k / runs.length, (k + 1) / runs.length);
      if (!best) {
        best = x;
        bestLoss = tf.tidy(() => ceEach(t.logits(x, r), yh));
        continue;
      }
      const loss = tf.tidy(() => ceEach(t.logits(x, r), yh));
      const better = tf.greater(loss, bestLoss!);
      const nb = selectRows(better, x, best);
      const nl = selectRows(better, loss, bestLoss!);
      [best, x, better, loss, bestLoss!].forEach((u) => u.dispose());
      best = nb;
      bestLoss = nl;
    }
    done = true;
    return best!;
  } finally {
    yh.dispose();
    bestLoss?.dispose();
    if (!done) best?.dispose();
  }
}

export const pgdSteps: SteppedAttack = function* (t, x0, y, p, r) {
  const yh = oneHot(y, t.classes);
  try {
    const runs = Array.from({ length: p.restarts ?? 1 }, () => () => pgdRunSteps(x0, p, r, (x) => lossGrad(t, x, yh, r)));
    return runs.length === 1 ? yield* runs[0]!() : yield* keepWorstSteps(t, runs, y, r);
  } finally {
    yh.dispose();
  }
};

export const pgd: Attack = unstepped(pgdSteps);
