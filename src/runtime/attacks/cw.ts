/**
 * Carlini-Wagner l_2: x = (tanh(w) + 1)/2, minimise ||x - x0||^2 + c * max(Z_y - max_{j != y} Z_j, -kappa)
 * with Adam, binary search on c per example (rounds `search`, from `c`), keeping the smallest
 * successful perturbation. An example counts as adversarial when max_{j != y} Z_j - Z_y >= kappa;
 * examples never fooled are returned unchanged.
 */
import { tf } from '../tf.js';
import type { Rng } from '../rng.js';
import { oneHot, selectRows, unstepped, type Attack, type AttackTarget, type SteppedAttack } from './base.js';

const toX = (w: tf.Tensor) => tf.div(tf.add(tf.tanh(w), 1), 2) as tf.Tensor4D;

/** Logits at x: (the true class's logit, the largest other logit). */
function realOther(t: AttackTarget, x: tf.Tensor4D, yh: tf.Tensor2D, r: Rng): [tf.Tensor, tf.Tensor] {
  const logits = t.logits(x, r);
  return [tf.sum(tf.mul(logits, yh), 1), tf.max(tf.sub(logits, tf.mul(yh, 1e9)), 1)];
}

/** One Adam step on w; returns the new (w, m, v) and, at the new point, the l2^2 distances and margins. */
function adamStep(
  t: AttackTarget,
  x0: tf.Tensor4D,
  yh: tf.Tensor2D,
  cT: tf.Tensor,
  s: { w: tf.Tensor; m: tf.Tensor; v: tf.Tensor },
  o: { it: number; lr: number; kappa: number },
  r: Rng,
): tf.Tensor[] {
  return tf.tidy(() => {
    const f = (z: tf.Tensor) => {
      const x = toX(z);
      const [real, other] = realOther(t, x, yh, r);
      const hinge = tf.maximum(tf.sub(real, other), -o.kappa);
      const dist = tf.sum(tf.square(tf.sub(x, x0)), [1, 2, 3]);
      return tf.sum(tf.add(dist, tf.mul(cT, hinge))) as tf.Scalar;
    };
    const g = tf.grad(f)(s.w);
    const mm = tf.add(tf.mul(s.m, 0.9), tf.mul(g, 0.1));
    const vv = tf.add(tf.mul(s.v, 0.999), tf.mul(tf.square(g), 0.001));
    const mh = tf.div(mm, 1 - 0.9 ** o.it);
    const vh = tf.div(vv, 1 - 0.999 ** o.it);
    const ww = tf.sub(s.w, tf.mul(o.lr, tf.div(mh, tf.add(tf.sqrt(vh), 1e-8))));
    // Evaluate the new point: distance and margin (other - real).
    const x = toX(ww);
    const [real, other] = realOther(t, x, yh, r);
    return [ww, mm, vv, tf.sum(tf.square(tf.sub(x, x0)), [1, 2, 3]), tf.sub(other, real)];
  });
}

/** The binary search on c after a round: down where the round succeeded, up where it did not. */
function nextC(c: Float64Array, lower: Float64Array, upper: Float64Array, success: Uint8Array): void {
  for (let i = 0; i < c.length; i++) {
    if (success[i]) {
      upper[i] = Math.min(upper[i]!, c[i]!);
      c[i] = (lower[i]! + upper[i]!) / 2;
    } else {
      lower[i] = Math.max(lower[i]!, c[i]!);
      c[i] = upper[i]! < 1e9 ? (lower[i]! + upper[i]!) / 2 : c[i]! * 10;
    }
  }
}

export const cwSteps: SteppedAttack = function* (t, x0, y, p, r) {
  const n = x0.shape[0];
  const kappa = p.kappa ?? 0;
  const steps = p.steps ?? 100;
  const lr = p.lr ?? 0.01;
  const yh = oneHot(y, t.classes);
  const lower = new Float64Array(n);
  const upper = new Float64Array(n).fill(1e10);
  const c = new Float64Array(n).fill(p.c ?? 1e-3);
  const bestL2 = new Float64Array(n).fill(Infinity);
  let best = tf.clone(x0) as tf.Tensor4D;
  const w0 = tf.tidy(() => tf.atanh(tf.clipByValue(tf.sub(tf.mul(x0, 2), 1), -0.999999, 0.999999)));
  const rounds = p.search ?? 9;
  // The current round's tensors, freed if the attack is stopped between steps.
  let held: tf.Tensor[] = [];
  let done = false;
  try {
    for (let round = 0; round < rounds; round++) {
      const cT = tf.tensor1d(Float32Array.from(c));
      let w = tf.clone(w0);
      let m = tf.zerosLike(w0);
      let v = tf.zerosLike(w0);
      held = [cT, w, m, v];
      const success = new Uint8Array(n);
      for (let it = 1; it <= steps; it++) {
        const [nw, nm, nv, l2, margin] = adamStep(t, x0, yh, cT, { w, m, v }, { it, lr, kappa }, r);
        w.dispose();
        m.dispose();
        v.dispose();
        [w, m, v] = [nw, nm, nv];
        held = [cT, w, m, v];
        const d = l2.dataSync();
        const mg = margin.dataSync();
        const improved: number[] = [];
        for (let i = 0; i < n; i++) {
          if (mg[i]! >= kappa && mg[i]! > 0) {
            success[i] = 1;
            if (d[i]! < bestL2[i]!) {
              bestL2[i] = d[i]!;
              improved.push(i);
            }
          }
        }
        if (improved.length) {
          const mask = new Uint8Array(n);
          for (const i of improved) mask[i] = 1;
          const nb = tf.tidy(() => selectRows(mask, toX(w), best));
          best.dispose();
          best = nb;
        }
        l2.dispose();
        margin.dispose();
        yield (round * steps + it) / (rounds * steps);
      }
      nextC(c, lower, upper, success);
      [w, m, v, cT].forEach((u) => u.dispose());
      held = [];
    }
    done = true;
    return best;
  } finally {
    held.forEach((u) => u.dispose());
    w0.dispose();
    yh.dispose();
    if (!done) best.dispose();
  }
};

export const cw: Attack = unstepped(cwSteps);
