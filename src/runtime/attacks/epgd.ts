/**
 * EPGD (expectation PGD): each l_inf PGD step follows the gradient of the mean loss over m
 * Gaussian noise draws on the normalised input (the smoothed classifier's noise).
 */
import { tf } from '../tf.js';
import { lossGrad, oneHot, unstepped, type Attack, type SteppedAttack } from './base.js';
import { pgdRunSteps } from './pgd.js';

export const epgdSteps: SteppedAttack = function* (t, x0, y, p, r) {
  const yh = oneHot(y, t.classes);
  const m = p.m ?? 8;
  const sd = p.sd ?? 0;
  try {
    return yield* pgdRunSteps(x0, { ...p, norm: 'linf' }, r, (x) => {
      let acc = lossGrad(t, x, yh, r, sd);
      for (let i = 1; i < m; i++) {
        const g = lossGrad(t, x, yh, r, sd);
        const s = tf.add(acc, g) as tf.Tensor4D;
        acc.dispose();
        g.dispose();
        acc = s;
      }
      const mean = tf.div(acc, m) as tf.Tensor4D;
      acc.dispose();
      return mean;
    });
  } finally {
    yh.dispose();
  }
};

export const epgd: Attack = unstepped(epgdSteps);
