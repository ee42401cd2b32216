/**
 * Training methods: the loss of one minibatch. Adversarial examples are made outside the
 * gradient tape (model in evaluation mode); the loss is computed in training mode.
 *   standard     CE(f(x))
 *   adversarial  mix * CE(f(x_adv)) + (1 - mix) * CE(f(x))
 *   avg          mean over attacks of CE(f(x_i))
 *   max          per example, the largest CE(f(x_i)) over attacks
 *   eat          one attack per batch, drawn with weight 1 - its running robust accuracy (E-AT)
 *   ramp         CE(f(x_best)) + lambda * KL(p_src || p_tgt) over examples f classifies correctly
 *                under x_src; x_best is the higher-loss of the pair (src, tgt) (RAMP)
 */
import type { AttackParams as AttackSpec, MethodParams } from '../../compiler/contract.js';
import { num } from '../../compiler/jsonsafe.js';
import { ceEach, type AttackParams, type AttackTarget } from '../attacks/base.js';
import { ATTACK_STEPS } from '../attacks/index.js';
import { modelTarget } from '../eval/classifier.js';
import type { Model } from '../models/model.js';
import type { ForwardCtx } from '../models/net.js';
import { runSteps, type Steps } from '../pace.js';
import type { Rng } from '../rng.js';
import { tf } from '../tf.js';

/** An attack and a training method as train and attack nodes hold them (src/compiler/contract.ts). */
export type AttackSpecJson = AttackSpec;
export type MethodJson = MethodParams;

/** Attack parameters as numbers (rationals from the DAG become floats here, at the edge). */
export function attackParams(p: Record<string, unknown>): AttackParams {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) out[k] = typeof v === 'string' && /^-?\d+(\/\d+)?$/.test(v) ? num(v) : v;
  return out as AttackParams;
}

/** An attack in steps (drive it with `paced` from ../pace.ts to yield and stop between steps). */
export function attackSteps(spec: AttackSpecJson, t: AttackTarget, x: tf.Tensor4D, y: Int32Array, r: Rng): Steps<tf.Tensor4D> {
  const impl = ATTACK_STEPS[spec.attack];
  if (!impl) throw new Error(`unknown attack ${spec.attack}`);
  return impl(t, x, y, attackParams(spec.params), r);
}

export function runAttack(spec: AttackSpecJson, t: AttackTarget, x: tf.Tensor4D, y: Int32Array, r: Rng): tf.Tensor4D {
  return runSteps(attackSteps(spec, t, x, y, r));
}

/** Mean softmax cross-entropy. */
export function ce(logits: tf.Tensor2D, yh: tf.Tensor2D): tf.Scalar {
  return tf.mean(ceEach(logits, yh)) as tf.Scalar;
}

/** KL(p || q) per example from logits. */
export function klEach(pLogits: tf.Tensor2D, qLogits: tf.Tensor2D): tf.Tensor1D {
  const lp = tf.logSoftmax(pLogits);
  const lq = tf.logSoftmax(qLogits);
  return tf.sum(tf.mul(tf.exp(lp), tf.sub(lp, lq)), 1) as tf.Tensor1D;
}

/**
 * RAMP's loss from the logits of the pair: mean over the batch of the larger CE of the two,
 * plus lambda times the KL(p_src || p_tgt) averaged over the examples whose x_src is classified
 * correctly (0 when there are none).
 */
export function rampLoss(srcLogits: tf.Tensor2D, tgtLogits: tf.Tensor2D, yh: tf.Tensor2D, lambda: number): tf.Scalar {
  return tf.tidy(() => {
    const worst = tf.maximum(ceEach(srcLogits, yh), ceEach(tgtLogits, yh));
    // The mask is a constant for the gradient: built from host values, off the tape
    // (Equal has no gradient in TF.js, and none is wanted).
    const pred = tf.argMax(srcLogits, 1).dataSync();
    const label = tf.argMax(yh, 1).dataSync();
    const correct = tf.tensor1d(Float32Array.from(pred, (p, i) => (p === label[i] ? 1 : 0)));
    const kl = tf.div(tf.sum(tf.mul(klEach(srcLogits, tgtLogits), correct)), tf.maximum(tf.sum(correct), 1));
    return tf.add(tf.mean(worst), tf.mul(kl, lambda)) as tf.Scalar;
  });
}

export interface MethodState {
  /** E-AT: running robust accuracy per attack. */
  robust: number[];
}

export interface BatchWork {
  /** Builds the loss; called inside the gradient tape. */
  loss: (fwd: (x: tf.Tensor4D) => tf.Tensor2D) => tf.Scalar;
  /** Tensors made outside the tape, freed after the step. */
  held: tf.Tensor[];
}

export function prepareBatch(method: MethodJson, model: Model, x: tf.Tensor4D, y: Int32Array, yh: tf.Tensor2D, r: Rng, state: MethodState): BatchWork {
  return runSteps(prepareBatchSteps(method, model, x, y, yh, r, state));
}

/** The batch's work in steps (the attacks' steps); stopped early, it frees the examples made so far. */
export function* prepareBatchSteps(
  method: MethodJson,
  model: Model,
  x: tf.Tensor4D,
  y: Int32Array,
  yh: tf.Tensor2D,
  r: Rng,
  state: MethodState,
): Steps<BatchWork> {
  const target = modelTarget(model);
  const held: tf.Tensor4D[] = [];
  let done = false;
  const attack = function* (spec: AttackSpecJson) {
    const xa = yield* attackSteps(spec, target, x, y, r);
    held.push(xa);
    return xa;
  };
  try {
    let work: BatchWork;
    switch (method.name) {
      case 'standard':
        work = { loss: (f) => ce(f(x), yh), held: [] };
        break;
      case 'adversarial': {
        const xa = yield* attack(method.attack);
        const mix = num(method.mix);
        work = {
          loss: (f) => (mix >= 1 ? ce(f(xa), yh) : (tf.add(tf.mul(ce(f(xa), yh), mix), tf.mul(ce(f(x), yh), 1 - mix)) as tf.Scalar)),
          held: [xa],
        };
        break;
      }
      case 'avg': {
        const xs: tf.Tensor4D[] = [];
        for (const a of method.attacks) xs.push(yield* attack(a));
        work = { loss: (f) => tf.div(tf.addN(xs.map((xi) => ce(f(xi), yh))), xs.length) as tf.Scalar, held: xs };
        break;
      }
      case 'max': {
        const xs: tf.Tensor4D[] = [];
        for (const a of method.attacks) xs.push(yield* attack(a));
        work = { loss: (f) => tf.mean(tf.max(tf.stack(xs.map((xi) => ceEach(f(xi), yh))), 0)) as tf.Scalar, held: xs };
        break;
      }
      case 'eat': {
        while (state.robust.length < method.attacks.length) state.robust.push(0);
        const w = state.robust.map((a) => Math.max(0, 1 - a));
        const total = w.reduce((s, v) => s + v, 0);
        let pick = method.attacks.length - 1;
        let u = r() * (total > 0 ? total : method.attacks.length);
        for (let i = 0; i < method.attacks.length; i++) {
          u -= total > 0 ? w[i]! : 1;
          if (u < 0) {
            pick = i;
            break;
          }
        }
        const xa = yield* attack(method.attacks[pick]!);
        const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(target.logits(xa, r), 1), tf.argMax(yh, 1)), 'float32')).dataSync()[0]!);
        state.robust[pick] = 0.9 * state.robust[pick]! + 0.1 * acc;
        work = { loss: (f) => ce(f(xa), yh), held: [xa] };
        break;
      }
      case 'ramp': {
        const xs = yield* attack(method.pair[0]);
        const xt = yield* attack(method.pair[1]);
        const lambda = num(method.lambda);
        work = { loss: (f) => rampLoss(f(xs), f(xt), yh, lambda), held: [xs, xt] };
        break;
      }
    }
    done = true;
    return work;
  } finally {
    if (!done) held.forEach((t) => t.dispose());
  }
}

/** Forward in training mode with batch-norm updates collected in ctx. */
export function trainForward(model: Model, ctx: ForwardCtx): (x: tf.Tensor4D) => tf.Tensor2D {
  return (x) => model.logits(x, ctx);
}
