/**
 * DeepFool (l_2): repeatedly take the linearised minimal step towards the nearest boundary among
 * the `candidates` highest-scoring other classes; the overshoot scales the accumulated total,
 * x = x0 + (1 + overshoot) * r_tot (not each step). Examples already misclassified are left
 * alone, each stops once its label changes, and the result is clipped to [0, 1] and, if eps is
 * given, to the l_inf box (as the authors).
 */
import { tf } from '../tf.js';
import { oneHot, unstepped, type Attack, type SteppedAttack } from './base.js';

export const deepfoolSteps: SteppedAttack = function* (t, x0, y, p, r) {
  const [n, h, w, ch] = x0.shape;
  const dim = h * w * ch;
  const overshoot = p.overshoot ?? 0.02;
  const K = Math.min(p.candidates ?? 10, t.classes);
  const logits0 = tf.tidy(() => t.logits(x0, r));
  const pred0 = tf.tidy(() => tf.argMax(logits0, 1).dataSync() as Int32Array);
  const active = Uint8Array.from(pred0, (v, i) => (v === y[i] ? 1 : 0));
  // Candidate classes per example: the top-K logits at x0 other than the true class.
  const order = tf.tidy(() => tf.topk(logits0, K).indices.arraySync() as number[][]);
  const cands = order.map((o, i) => o.filter((c) => c !== y[i]).slice(0, K - 1));
  logits0.dispose();
  const rTot = new Float32Array(n * dim);
  let x = tf.clone(x0) as tf.Tensor4D;
  const yOneHot = oneHot(y, t.classes);
  const steps = p.steps ?? 50;
  let done = false;
  try {
    for (let it = 0; it < steps && active.some((a) => a); it++) {
      const pred = tf.tidy(() => tf.argMax(t.logits(x, r), 1).dataSync() as Int32Array);
      for (let i = 0; i < n; i++) if (pred[i] !== y[i]) active[i] = 0;
      if (!active.some((a) => a)) break;
      const bestPert = new Float64Array(n).fill(Infinity);
      const bestDir = new Float32Array(n * dim);
      const bestF = new Float64Array(n);
      for (let j = 0; j < K - 1; j++) {
        const cls = Int32Array.from(cands, (c, i) => c[j] ?? y[i]!);
        const [g, f] = tf.tidy(() => {
          const ck = tf.oneHot(tf.tensor1d(cls, 'int32'), t.classes);
          const diff = (z: tf.Tensor) => tf.sum(tf.mul(t.logits(z as tf.Tensor4D, r), tf.sub(ck, yOneHot))) as tf.Scalar;
          const logits = t.logits(x, r);
          return [tf.grad(diff)(x), tf.sum(tf.mul(logits, tf.sub(ck, yOneHot)), 1)];
        });
        const gd = g.dataSync() as Float32Array;
        const fd = f.dataSync() as Float32Array;
        g.dispose();
        f.dispose();
        for (let i = 0; i < n; i++) {
          if (!active[i] || cls[i] === y[i]) continue;
          let nrm = 0;
          for (let k = 0; k < dim; k++) nrm += gd[i * dim + k]! ** 2;
          nrm = Math.sqrt(nrm) + 1e-12;
          const pert = Math.abs(fd[i]!) / nrm;
          if (pert < bestPert[i]!) {
            bestPert[i] = pert;
            bestF[i] = Math.abs(fd[i]!);
            bestDir.set(gd.subarray(i * dim, (i + 1) * dim), i * dim);
          }
        }
        yield (it + (j + 1) / K) / steps; // a gradient per candidate: pace inside the iteration too
      }
      for (let i = 0; i < n; i++) {
        if (!active[i] || !Number.isFinite(bestPert[i]!)) continue;
        let nrm2 = 0;
        for (let k = 0; k < dim; k++) nrm2 += bestDir[i * dim + k]! ** 2;
        const s = (bestF[i]! + 1e-4) / (nrm2 + 1e-12);
        for (let k = 0; k < dim; k++) rTot[i * dim + k] += s * bestDir[i * dim + k]!;
      }
      const next = tf.tidy(() => {
        let z = tf.add(x0, tf.mul(1 + overshoot, tf.tensor4d(rTot, x0.shape)));
        if (p.eps !== undefined) z = tf.minimum(tf.maximum(z, tf.sub(x0, p.eps)), tf.add(x0, p.eps));
        return tf.clipByValue(z, 0, 1) as tf.Tensor4D;
      });
      x.dispose();
      x = next;
      yield (it + 1) / steps;
    }
    done = true;
    return x;
  } finally {
    yOneHot.dispose();
    if (!done) x.dispose();
  }
};

export const deepfool: Attack = unstepped(deepfoolSteps);
