/**
 * AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
 * of diverse parameter-free attacks"): a fixed sequence of attacks, each run only on the images
 * still robust after the ones before it; an image one of them fools keeps that adversarial point.
 *
 * Written after fra31/auto-attack, autoattack/autoattack.py (AutoAttack.__init__, set_version,
 * run_standard_evaluation), and following it in these details:
 * - version `standard`, l_inf and l_2: APGD-CE (100 iterations, 1 restart, rho 0.75), APGD-T (100
 *   iterations, 9 target classes, 1 restart), FAB-T (100 iterations, 9 target classes, 1
 *   restart, alpha_max 0.1, eta 1.05, beta 0.9), Square (5000 queries, p_init 0.8, 1 restart,
 *   resc_schedule off: p halves on the raw iteration count, not the count rescaled to 10000);
 * - version `standard`, l_1: APGD-CE with 5 restarts and largereps, APGD-T with 5 target classes,
 *   largereps and 1 restart (see apgd.ts for the 3 eps, 2 eps, eps schedule), then FAB-T and
 *   Square under l_1 with the same settings as above (FAB-T 9 targets, 1 restart; Square 5000
 *   queries, p_init 0.8, resc_schedule off);
 * - version `rand`: APGD-CE and APGD-DLR, 1 restart each, every step's gradient averaged over 20
 *   passes (eot_iter = 20), each pass drawing the target's noise anew;
 * - the images attacked first are those the target classifies correctly when clean; after each
 *   attack, its output is classified once more (t.predict, the reference's get_logits argmax) and
 *   the images now misclassified leave the robust set and keep that output; the others keep the
 *   clean image;
 * - every attack starts from the same seed (the reference sets each one's seed to the same value):
 *   here each gets a fresh copy of one stream drawn from the attack's rng.
 * Deliberate differences:
 * - the reference runs each attack over all the robust images in chunks of bs; here the robust
 *   operation hands the composite `batch` images at a time and all attacks run on one chunk before
 *   the next (each image's outcome differs only through where it sits in the random draws);
 * - the reference's checks (randomized model, logit range, number of classes) only print
 *   warnings, and are left out; the number of target classes is capped at classes - 1.
 */
import { scaled, type Steps } from '../pace.js';
import { rng, seedFrom, type Rng } from '../rng.js';
import { tf } from '../tf.js';
import { apgdSteps, apgdtSteps } from './apgd.js';
import { unstepped, type Attack, type AttackParams, type AttackTarget, type SteppedAttack } from './base.js';
import { fabtSteps } from './fab.js';
import { squareSteps } from './square.js';

/** One attack of the sequence: its name (as the reference's attacks_to_run), implementation and settings. */
export interface Stage {
  name: string;
  attack: SteppedAttack;
  params: AttackParams;
  /** Its share of the progress bar (rough cost in gradient passes per image). */
  weight: number;
}

/** The reference's attacks for a version and norm, with set_version's settings. */
export function autoattackStages(p: AttackParams): Stage[] {
  const eps = p.eps ?? 8 / 255;
  const norm = p.norm ?? 'linf';
  const apgd = { eps, norm, steps: 100, rho: 0.75 };
  if ((p.version ?? 'standard') === 'rand') {
    return [
      { name: 'apgd-ce', attack: apgdSteps, params: { ...apgd, loss: 'ce', restarts: 1, eot: 20 }, weight: 2000 },
      { name: 'apgd-dlr', attack: apgdSteps, params: { ...apgd, loss: 'dlr', restarts: 1, eot: 20 }, weight: 2000 },
    ];
  }
  const l1 = norm === 'l1';
  return [
    l1
      ? { name: 'apgd-ce', attack: apgdSteps, params: { ...apgd, loss: 'ce', restarts: 5, largereps: true }, weight: 500 }
      : { name: 'apgd-ce', attack: apgdSteps, params: { ...apgd, loss: 'ce', restarts: 1 }, weight: 100 },
    l1
      ? { name: 'apgd-t', attack: apgdtSteps, params: { ...apgd, targets: 5, restarts: 1, largereps: true }, weight: 500 }
      : { name: 'apgd-t', attack: apgdtSteps, params: { ...apgd, targets: 9, restarts: 1 }, weight: 900 },
    { name: 'fab-t', attack: fabtSteps, params: { eps, norm, steps: 100, restarts: 1, targets: 9, alpha_max: 0.1, eta: 1.05, beta: 0.9 }, weight: 1800 },
    { name: 'square', attack: squareSteps, params: { eps, norm, queries: 5000, p_init: 0.8, restarts: 1, resc_schedule: false }, weight: 1700 },
  ];
}

/** What a composite run found: the adversarial batch, and how many images were robust after each attack. */
export interface CompositeResult {
  adv: tf.Tensor4D;
  /** Images classified correctly when clean, then still robust after each stage (in order). */
  robust: { clean: number; after: Array<{ name: string; robust: number }> };
}

/** Indices i with flags[i] set. */
const where = (flags: Uint8Array) => Int32Array.from(Array.from(flags).flatMap((v, i) => (v ? [i] : [])));

/**
 * Runs `stages` in order on the images still robust (run_standard_evaluation's loop), yielding the
 * fraction done. Each stage gets a fresh stream of the same seed, drawn once from r; the robust
 * set is judged by t.predict on a stream of its own.
 */
export function* compositeSteps(stages: Stage[], t: AttackTarget, x0: tf.Tensor4D, y: Int32Array, r: Rng): Steps<CompositeResult> {
  const seed = seedFrom(r);
  const check = rng(seed, 'autoattack/check');
  const [, h, w, c] = x0.shape;
  const dim = h * w * c;
  const robust = Uint8Array.from(t.predict(x0, check), (v, i) => (v === y[i] ? 1 : 0));
  const clean = robust.reduce((s, v) => s + v, 0);
  const out = Float32Array.from(x0.dataSync());
  const after: Array<{ name: string; robust: number }> = [];
  const total = stages.reduce((s, st) => s + st.weight, 0);
  let done = 0;
  for (const st of stages) {
    const idx = where(robust);
    if (idx.length > 0) {
      const xs = tf.tidy(() => tf.gather(x0, tf.tensor1d(idx, 'int32')) as tf.Tensor4D);
      try {
        const ys = Int32Array.from(idx, (i) => y[i]!);
        const adv = yield* scaled(st.attack(t, xs, ys, st.params, rng(seed, 'autoattack')), done / total, (done + st.weight) / total);
        try {
          const pred = t.predict(adv, check);
          const rows = adv.dataSync();
          pred.forEach((v, j) => {
            if (v === ys[j]) return;
            robust[idx[j]!] = 0;
            out.set(rows.subarray(j * dim, (j + 1) * dim), idx[j]! * dim);
          });
        } finally {
          adv.dispose();
        }
      } finally {
        xs.dispose();
      }
    }
    done += st.weight;
    after.push({ name: st.name, robust: robust.reduce((s, v) => s + v, 0) });
    yield done / total;
  }
  return { adv: tf.tensor4d(out, x0.shape), robust: { clean, after } };
}

/**
 * The robust counts of the last composite runs, by their result tensor (read by whoever ran the
 * attack, e.g. to report the robust accuracy after each stage; entries go with the tensor).
 */
export const autoattackCounts = new WeakMap<tf.Tensor, CompositeResult['robust']>();

/** AutoAttack, `version` standard or rand, at `eps` under `norm`. */
export const autoattackSteps: SteppedAttack = function* (t, x0, y, p, r) {
  const res = yield* compositeSteps(autoattackStages(p), t, x0, y, r);
  autoattackCounts.set(res.adv, res.robust);
  return res.adv;
};

export const autoattack: Attack = unstepped(autoattackSteps);
