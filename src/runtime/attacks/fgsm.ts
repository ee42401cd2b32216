/** FGSM: x' = clip01(x + eps * sign(grad_x L)). */
import { tf } from '../tf.js';
import { clip01, lossGrad, oneHot, type Attack, type SteppedAttack } from './base.js';

export const fgsm: Attack = (t, x, y, p, r) =>
  tf.tidy(() => {
    const g = lossGrad(t, x, oneHot(y, t.classes), r);
    return clip01(tf.add(x, tf.mul(p.eps!, tf.sign(g))));
  });

/** One step: nothing to pace. */
// eslint-disable-next-line require-yield -- a one-step attack has no step boundary to yield at
export const fgsmSteps: SteppedAttack = function* (t, x, y, p, r) {
  return fgsm(t, x, y, p, r);
};
