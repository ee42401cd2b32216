/**
 * Ensemble attacks (TREND paper): per step, with g_i member i's gradient, s_i = sign(g_i), N members:
 *   dag   sign(sum g_i)                          (direction of the average gradient)
 *   agd   sign(sum s_i)                          (average gradient direction)
 *   ugd   sign(sum s_i) where all N signs agree, 0 elsewhere
 *   empir sign(sum of g_i over members whose prediction equals the ensemble's vote)
 * then an l_inf PGD step, projection and clip. For a single model every variant is PGD.
 */
import { tf } from '../tf.js';
import { lossGrad, oneHot, projectLinf, randomStart, unstepped, type Attack, type AttackTarget, type SteppedAttack } from './base.js';
import type { Rng } from '../rng.js';

export type EnsembleRule = 'dag' | 'agd' | 'ugd' | 'empir';

export function direction(rule: EnsembleRule, t: AttackTarget, x: tf.Tensor4D, yh: tf.Tensor2D, r: Rng): tf.Tensor4D {
  const gs = t.members.map((m) => lossGrad(m, x, yh, r));
  const n = gs.length;
  const out = tf.tidy(() => {
    if (rule === 'dag') return tf.sign(tf.addN(gs));
    const s = tf.addN(gs.map((g) => tf.sign(g)));
    if (rule === 'agd') return tf.sign(s);
    if (rule === 'ugd') return tf.mul(tf.sign(s), tf.cast(tf.equal(tf.abs(s), n), 'float32'));
    // empir: members agreeing with the ensemble's vote, per example.
    const vote = tf.tensor1d(t.predict(x, r), 'int32');
    const masked = t.members.map((m, i) => {
      const pm = tf.argMax(m.logits(x, r), 1);
      const agree = tf.reshape(tf.cast(tf.equal(pm, vote), 'float32'), [-1, 1, 1, 1]);
      return tf.mul(gs[i]!, agree);
    });
    return tf.sign(tf.addN(masked));
  }) as tf.Tensor4D;
  gs.forEach((g) => g.dispose());
  return out;
}

export function ensembleSteps(rule: EnsembleRule): SteppedAttack {
  return function* (t, x0, y, p, r) {
    const yh = oneHot(y, t.classes);
    let x = p.random_start ? randomStart(x0, p.eps!, 'linf', r) : (tf.clone(x0) as tf.Tensor4D);
    let done = false;
    try {
      for (let i = 0; i < p.steps!; i++) {
        const d = direction(rule, t, x, yh, r);
        try {
          const next = tf.tidy(() => projectLinf(tf.add(x, tf.mul(p.step!, d)), x0, p.eps!));
          x.dispose();
          x = next;
        } finally {
          d.dispose();
        }
        yield (i + 1) / p.steps!;
      }
      done = true;
      return x;
    } finally {
      yh.dispose();
      if (!done) x.dispose();
    }
  };
}

export function ensembleAttack(rule: EnsembleRule): Attack {
  return unstepped(ensembleSteps(rule));
}
