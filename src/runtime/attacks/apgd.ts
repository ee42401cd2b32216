/**
 * APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks"), untargeted on the cross-entropy or the DLR loss (`apgd`), and
 * targeted on the targeted DLR loss over the top `targets` classes (`apgdt`), under l_inf, l_2 and
 * l_1 ("Mind the box", Croce & Hein 2021).
 *
 * Written after fra31/auto-attack, autoattack/autopgd_base.py (APGDAttack.attack_single_run,
 * APGDAttack.perturb with best_loss=False, APGDAttack_targeted.perturb, L1_projection, dlr_loss,
 * dlr_loss_targeted, check_oscillation), and following it in these details:
 * - start: l_inf x + eps * t / ||t||_inf with t uniform in [-1, 1]; l_2 x + eps * t / ||t||_2 with t
 *   standard normal; l_1 x + t projected (as below) with t standard normal; then clipped to [0, 1];
 * - l_inf, l_2: initial step 2 * eps per image; momentum 0.75 (none on the first step):
 *   z = P(x_k + step * s(g)), x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1})), s = sign for
 *   l_inf, g / ||g||_2 for l_2; P the reference's clip to the box (l_inf) or its radial shrink to
 *   the ball then clip to [0, 1] (l_2);
 * - checkpoints after n_iter_2 = max(int(0.22 N), 1) iterations, then windows shrinking by
 *   max(int(0.03 N), 1) down to max(int(0.06 N), 1) (for N = 100: 22, 41, 57, 70, 80, 87, 93, 99);
 *   at each, an image's step is halved, and it restarts from its best point and that point's
 *   gradient, when at most rho * window of the window's steps increased the loss (the reference's
 *   `<=`; the first window's first step is compared with 0, as the reference's loss_steps[-1],
 *   still zero then, is), or when its step was not halved at the last checkpoint and its best loss
 *   did not increase since;
 * - l_1: no momentum; initial step eps; every max(int(0.04 N), 1) iterations the sparsity of the
 *   best point sets topk = sparsity / dim / 1.5, and the step goes back to eps (restarting from the
 *   best point) when the sparsity fell below 0.95 of the last one, else is divided by 1.5 (kept in
 *   [eps / 10, eps]); the step moves step / k along the signs of the k largest gradient
 *   coordinates (ties included), then the point is projected onto the l_1 ball intersected with
 *   the [0, 1] box;
 * - per image the best (highest-loss) point is kept (it is where the search restarts); the
 *   result is, per image, the last iterate that was misclassified in the first run (restart,
 *   target) that misclassified one, and the clean image where none did, or where the clean image
 *   is already misclassified (those are not attacked); restarts and targets attack only the
 *   images not yet fooled;
 * - apgdt: target class c = 2..targets+1 is the c-th highest logit of the clean image, re-ranked
 *   over the images still robust at each run; loss -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2).
 * Deliberate differences: the l_1 projection finds its threshold by walking the sorted
 * breakpoints instead of a binary search over them (the same point up to rounding); `targets` is
 * capped at classes - 1 (the reference fails beyond); random numbers are TF.js's seeded streams,
 * drawn from the attack's rng, not torch's.
 * - `eot` (eot_iter): each step's gradient is the mean of `eot` passes, each drawing its own noise
 *   from the rng; the loss and predictions are the last pass's (as the reference's);
 * - `largereps` (use_largereps, l_1 only; ignored under l_inf and l_2, where the reference
 *   asserts): each run is decr_eps_pgd: from x + N(0, 1) projected to the 3 eps ball, runs of
 *   ceil(0.3 N), ceil(0.3 N) and the remaining iterations at 3 eps, 2 eps and eps, each from the
 *   last one's best point projected to its budget (topk and sparsity from that point); only the
 *   last run's adversarial points count.
 */
import { runSteps, scaled, type Steps } from '../pace.js';
import type { Rng } from '../rng.js';
import { tf } from '../tf.js';
import { ceEach, clip01, oneHot, projectLinf, selectRows, unstepped, type Attack, type AttackParams, type AttackTarget, type SteppedAttack } from './base.js';

export type ApgdLoss = 'ce' | 'dlr' | 'dlr-targeted';

/** Row indices of each row's logits sorted from the highest (stable: the first index wins ties). */
function ranked(z: ArrayLike<number>, n: number, c: number): Int32Array[] {
  return Array.from({ length: n }, (_, i) => {
    const idx = Array.from({ length: c }, (_, j) => j);
    idx.sort((a, b) => z[i * c + b]! - z[i * c + a]!);
    return Int32Array.from(idx);
  });
}

/** A one-hot [n, c] mask with a 1 at column cols[i] of row i. */
function mask(cols: ArrayLike<number>, n: number, c: number): tf.Tensor2D {
  const m = new Float32Array(n * c);
  for (let i = 0; i < n; i++) m[i * c + cols[i]!] = 1;
  return tf.tensor2d(m, [n, c]);
}

/**
 * Per-example loss on logits: cross-entropy; DLR -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3);
 * targeted DLR -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2) (pi: classes by decreasing logit).
 * The ranking is read on the host and enters as constant masks (as a sort's indices do).
 */
export function apgdLoss(kind: ApgdLoss, logits: tf.Tensor2D, y: Int32Array, target?: Int32Array): tf.Tensor1D {
  const [n, c] = logits.shape;
  if (kind === 'ce') return tf.tidy(() => ceEach(logits, oneHot(y, c)));
  const need = kind === 'dlr' ? 3 : 4;
  if (c < need) throw new Error(`the ${kind} loss needs at least ${need} classes (this classifier has ${c})`);
  if (kind === 'dlr-targeted' && !target) throw new Error('the targeted DLR loss needs target classes');
  const order = ranked(logits.dataSync(), n, c);
  const at = (k: number) => Int32Array.from(order, (o) => o[k]!);
  return tf.tidy(() => {
    const pick = (cols: ArrayLike<number>) => tf.sum(tf.mul(logits, mask(cols, n, c)), 1);
    const zy = pick(y);
    const top = pick(at(0));
    const third = pick(at(2));
    if (kind === 'dlr') {
      const other = pick(Int32Array.from(order, (o, i) => (o[0] === y[i] ? o[1]! : o[0]!)));
      return tf.neg(tf.div(tf.sub(zy, other), tf.add(tf.sub(top, third), 1e-12))) as tf.Tensor1D;
    }
    const den = tf.add(tf.sub(top, tf.mul(0.5, tf.add(third, pick(at(3))))), 1e-12);
    return tf.neg(tf.div(tf.sub(zy, pick(target!)), den)) as tf.Tensor1D;
  });
}

/** The DLR loss (untargeted) per example. */
export const dlrLoss = (logits: tf.Tensor2D, y: Int32Array) => apgdLoss('dlr', logits, y);
/** The targeted DLR loss per example. */
export const dlrTargetedLoss = (logits: tf.Tensor2D, y: Int32Array, target: Int32Array) => apgdLoss('dlr-targeted', logits, y, target);

/**
 * The iteration counts after which l_inf and l_2 APGD checks its step sizes: the reference's
 * counter (first window max(int(0.22 N), 1), each next one max(int(0.03 N), 1) shorter, down to
 * max(int(0.06 N), 1)), i.e. the paper's w_j = ceil(p_j N).
 */
export function apgdCheckpoints(nIter: number): number[] {
  const decr = Math.max(Math.floor(0.03 * nIter), 1);
  const least = Math.max(Math.floor(0.06 * nIter), 1);
  const out: number[] = [];
  for (let k = Math.max(Math.floor(0.22 * nIter), 1), at = k; at <= nIter; k = Math.max(k - decr, least), at += k) out.push(at);
  return out;
}

/** l_1 APGD's checkpoints: every max(int(0.04 N), 1) iterations. */
export function apgdL1Checkpoints(nIter: number): number[] {
  const k = Math.max(Math.floor(0.04 * nIter), 1);
  return Array.from({ length: Math.floor(nIter / k) }, (_, j) => (j + 1) * k);
}

/**
 * The reference's L1_projection, row by row: the change `delta` to a perturbation `d` of the
 * clean point `x` such that x + d + delta is the Euclidean projection of x + d onto
 * {v : ||v - x||_1 <= eps, 0 <= v <= 1} (x in the box). Signs are kept: coordinate i's magnitude
 * |d_i| shrinks by clip(alpha, lo_i, |d_i|), lo_i what the box alone demands, alpha >= 0 the
 * threshold that makes the l_1 norm eps (0, the box clip alone, when that is within eps).
 */
export function projectL1BoxRows(x: ArrayLike<number>, d: ArrayLike<number>, n: number, dim: number, eps: number): Float32Array {
  const out = new Float32Array(n * dim);
  const lo = new Float64Array(dim);
  const hi = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    let kept = 0; // the l_1 norm after the box clip alone
    for (let j = 0; j < dim; j++) {
      const v = x[o + j]! + d[o + j]!;
      hi[j] = Math.abs(d[o + j]!);
      lo[j] = Math.min(hi[j]!, Math.max(0, v - 1, -v));
      kept += hi[j]! - lo[j]!;
    }
    const alpha = kept <= eps ? 0 : threshold(lo, hi, kept - eps);
    for (let j = 0; j < dim; j++) out[o + j] = -Math.sign(d[o + j]!) * Math.min(Math.max(alpha, lo[j]!), hi[j]!);
  }
  return out;
}

/**
 * The alpha >= 0 with sum_j (clip(alpha, lo_j, hi_j) - lo_j) = extra (0 < extra <= sum (hi - lo)).
 * Walks the breakpoints in ascending order (at equal values the lo_j first): the lo_j and hi_j
 * sorted apart as typed arrays and merged, which is the order of one sort of (value, kind) pairs.
 */
function threshold(lo: Float64Array, hi: Float64Array, extra: number): number {
  let m = 0;
  for (let j = 0; j < lo.length; j++) if (hi[j]! > lo[j]!) m++;
  const los = new Float64Array(m);
  const his = new Float64Array(m);
  for (let j = 0, k = 0; j < lo.length; j++) {
    if (!(hi[j]! > lo[j]!)) continue;
    los[k] = lo[j]!;
    his[k++] = hi[j]!;
  }
  los.sort();
  his.sort();
  // g(alpha) = sum (clip - lo) is 0 up to the first breakpoint, then rises with slope = #open.
  let g = 0;
  let slope = 0;
  let prev = m ? los[0]! : 0;
  for (let a = 0, b = 0; a < m || b < m;) {
    const opens = a < m && los[a]! <= his[b]!; // his[b] is defined while b < m, and a < m before b ends
    const v = opens ? los[a++]! : his[b++]!;
    const next = g + slope * (v - prev);
    if (next >= extra && slope > 0) return prev + (extra - g) / slope;
    g = next;
    prev = v;
    slope += opens ? 1 : -1;
  }
  return prev;
}

/** Per-image l_2 norms [n, 1, 1, 1] as the reference: no floor inside the root. */
function l2(d: tf.Tensor): tf.Tensor {
  return tf.sqrt(tf.sum(tf.square(d), [1, 2, 3], true));
}

/** The reference's l_2 projection: shrink radially to the ball (x + d/(||d||+1e-12) min(eps, ||d||)), then clip. */
function projectL2Ref(v: tf.Tensor, x0: tf.Tensor, eps: number): tf.Tensor4D {
  const d = tf.sub(v, x0);
  const r = l2(d);
  return clip01(tf.add(x0, tf.mul(tf.div(d, tf.add(r, 1e-12)), tf.minimum(r, eps))));
}

/** What one APGD run attacks: clean images, labels, targets (apgdt), and its settings. */
export interface ApgdRun {
  x0: tf.Tensor4D;
  y: Int32Array;
  target?: Int32Array;
  loss: ApgdLoss;
  eps: number;
  norm: 'linf' | 'l2' | 'l1';
  steps: number;
  rho: number;
  /** Gradient passes averaged per step (the reference's eot_iter; 1 if absent). */
  eot?: number;
  /** l_1: the reference's use_largereps schedule (3 eps, 2 eps, eps; see largeRepsSchedule). */
  largereps?: boolean;
}

/** A run's result: the best point and loss per image, which images were fooled, and where. */
export interface ApgdResult {
  best: tf.Tensor4D;
  lossBest: Float32Array;
  fooled: Uint8Array;
  adv: tf.Tensor4D;
}

/**
 * The loss per image, its gradient and the predictions, as the reference's eot_iter loop: the
 * gradient is the mean over `eot` forward and backward passes (each drawing its own noise from
 * r); the loss and the predictions are those of the last pass (the reference keeps the last
 * pass's logits and loss_indiv, it does not average them).
 */
export function apgdEvaluate(t: AttackTarget, x: tf.Tensor4D, run: ApgdRun, r: Rng): { loss: Float32Array; pred: Int32Array; grad: tf.Tensor4D } {
  let loss: ArrayLike<number> = [];
  let pred: ArrayLike<number> = [];
  const once = () =>
    tf.tidy(
      () =>
        tf.grad((z: tf.Tensor) => {
          const logits = t.logits(z as tf.Tensor4D, r);
          const each = apgdLoss(run.loss, logits, run.y, run.target);
          loss = each.dataSync();
          pred = tf.argMax(logits, 1).dataSync();
          return tf.sum(each) as tf.Scalar;
        })(x) as tf.Tensor4D,
    );
  const eot = run.eot ?? 1;
  let grad = once();
  for (let k = 1; k < eot; k++) {
    const g = once();
    const sum = tf.add(grad, g) as tf.Tensor4D;
    grad.dispose();
    g.dispose();
    grad = sum;
  }
  if (eot > 1) {
    const mean = tf.div(grad, eot) as tf.Tensor4D;
    grad.dispose();
    grad = mean;
  }
  return { loss: Float32Array.from(loss), pred: Int32Array.from(pred), grad };
}

/** The reference's random start (see the header), clipped to [0, 1]. */
function apgdStart(run: ApgdRun, r: Rng): tf.Tensor4D {
  const seed = Math.floor(r() * 2 ** 31);
  const { x0, eps } = run;
  if (run.norm === 'l1') {
    const [n, h, w, c] = x0.shape;
    const t = tf.randomNormal(x0.shape, 0, 1, 'float32', seed);
    try {
      const delta = projectL1BoxRows(x0.dataSync(), t.dataSync(), n, h * w * c, eps);
      return tf.tidy(() => clip01(tf.add(tf.add(x0, t), tf.tensor4d(delta, x0.shape))));
    } finally {
      t.dispose();
    }
  }
  return tf.tidy(() => {
    if (run.norm === 'linf') {
      const t = tf.randomUniform(x0.shape, -1, 1, 'float32', seed);
      return clip01(tf.add(x0, tf.mul(eps, tf.div(t, tf.add(tf.max(tf.abs(t), [1, 2, 3], true), 1e-12)))));
    }
    const t = tf.randomNormal(x0.shape, 0, 1, 'float32', seed);
    return clip01(tf.add(x0, tf.mul(eps, tf.div(t, tf.add(l2(t), 1e-12)))));
  });
}

/** One run's state: tensors (freed by dispose) and per-image host values. */
class RunState {
  x: tf.Tensor4D;
  old: tf.Tensor4D;
  best: tf.Tensor4D;
  adv: tf.Tensor4D;
  grad: tf.Tensor4D;
  gradBest: tf.Tensor4D;
  lossBest: Float32Array;
  fooled: Uint8Array;
  step: Float32Array;
  /** The loss after each iteration (l_inf, l_2: the oscillation count reads it). */
  losses: Float32Array[] = [];
  /** l_inf, l_2: halved at the last checkpoint (1 before the first), best loss then. */
  reduced: Uint8Array;
  lossAtCheck: Float32Array;
  /** l_1: the fraction of coordinates moved, and the sparsity at the last checkpoint. */
  topk: Float32Array;
  sparsity: Float32Array;

  constructor(x: tf.Tensor4D, first: { loss: Float32Array; pred: Int32Array; grad: tf.Tensor4D }, run: ApgdRun) {
    const n = run.y.length;
    const [, h, w, c] = run.x0.shape;
    this.x = x;
    this.old = tf.clone(x);
    this.best = tf.clone(x);
    this.adv = tf.clone(x);
    this.grad = first.grad;
    this.gradBest = tf.clone(first.grad);
    this.lossBest = Float32Array.from(first.loss);
    this.fooled = Uint8Array.from(first.pred, (v, i) => (v === run.y[i] ? 0 : 1));
    this.step = new Float32Array(n).fill((run.norm === 'l1' ? 1 : 2) * run.eps);
    this.reduced = new Uint8Array(n).fill(1);
    this.lossAtCheck = Float32Array.from(first.loss);
    this.topk = new Float32Array(n).fill(0.2);
    this.sparsity = new Float32Array(n).fill(h * w * c);
  }

  /** Replaces a tensor field, freeing the old value. */
  set(field: 'x' | 'old' | 'best' | 'adv' | 'grad' | 'gradBest', v: tf.Tensor4D): void {
    if (this[field] !== v) this[field].dispose();
    this[field] = v;
  }

  /** Rows where mask[i] take `from`'s row (fields: which tensors, in order of `from`). */
  take(mask: Uint8Array, pairs: Array<['x' | 'best' | 'adv' | 'grad' | 'gradBest', tf.Tensor4D]>): void {
    if (!mask.some((m) => m)) return;
    for (const [field, from] of pairs) this.set(field, selectRows(mask, from, this[field]));
  }

  dispose(keep: tf.Tensor[] = []): void {
    for (const v of [this.x, this.old, this.best, this.adv, this.grad, this.gradBest]) if (!keep.includes(v)) v.dispose();
  }
}

/** l_inf, l_2: the step with momentum (a = 1 on the first iteration, then 0.75). */
function momentumStep(s: RunState, run: ApgdRun, i: number): tf.Tensor4D {
  return tf.tidy(() => {
    const n = run.y.length;
    const step = tf.tensor4d(s.step, [n, 1, 1, 1]);
    const a = i > 0 ? 0.75 : 1;
    const project = (v: tf.Tensor) => (run.norm === 'linf' ? projectLinf(v, run.x0, run.eps) : projectL2Ref(v, run.x0, run.eps));
    const dir = run.norm === 'linf' ? tf.sign(s.grad) : tf.div(s.grad, tf.add(l2(s.grad), 1e-12));
    const z = project(tf.add(s.x, tf.mul(step, dir)));
    const moved = tf.add(tf.add(s.x, tf.mul(tf.sub(z, s.x), a)), tf.mul(tf.sub(s.x, s.old), 1 - a));
    return project(moved);
  });
}

/**
 * l_1: move step / k along the signs of the k largest |gradient| coordinates (the threshold is
 * the sorted magnitudes' entry at int((1 - topk) dim), ties included), then project onto the l_1
 * ball intersected with the box. Computed on the host (a sort per image).
 */
function l1Step(s: RunState, run: ApgdRun): tf.Tensor4D {
  const [n, h, w, c] = run.x0.shape;
  const dim = h * w * c;
  const g = s.grad.dataSync();
  const x = s.x.dataSync();
  const x0 = run.x0.dataSync();
  const du = new Float32Array(n * dim);
  const mags = new Float32Array(dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let j = 0; j < dim; j++) mags[j] = Math.abs(g[o + j]!);
    mags.sort();
    // As the reference's float32 arithmetic: (1 - topk) * dim, truncated, kept in [0, dim - 1].
    const at = Math.min(Math.max(Math.trunc(Math.fround(Math.fround(1 - s.topk[i]!) * dim)), 0), dim - 1);
    const thr = mags[at]!;
    let count = 0;
    for (let j = 0; j < dim; j++) if (Math.abs(g[o + j]!) >= thr && g[o + j] !== 0) count++;
    const move = s.step[i]! / (count + 1e-10);
    for (let j = 0; j < dim; j++) {
      const gj = g[o + j]!;
      du[o + j] = x[o + j]! + (Math.abs(gj) >= thr ? Math.sign(gj) * move : 0) - x0[o + j]!;
    }
  }
  const dp = projectL1BoxRows(x0, du, n, dim, run.eps);
  for (let k = 0; k < du.length; k++) du[k] = Math.min(1, Math.max(0, x0[k]! + du[k]! + dp[k]!));
  return tf.tensor4d(du, run.x0.shape);
}

/**
 * The images whose step halves at the l_inf, l_2 checkpoint after iteration i (0-based), over the
 * last `window` iterations (losses[k]: the losses after iteration k): at most rho * window of its
 * steps raised the loss (before the first iteration the reference compares with 0), or its step
 * was not halved at the last checkpoint (`reduced`; all 1 before the first) and its best loss is
 * no higher than then (`lossAtCheck`).
 */
export function halvings(
  losses: Float32Array[],
  i: number,
  window: number,
  rho: number,
  last: { reduced: Uint8Array; lossAtCheck: Float32Array; lossBest: Float32Array },
): Uint8Array {
  return Uint8Array.from(last.reduced, (reduced, e) => {
    let up = 0;
    for (let c = 0; c < window; c++) {
      const prev = i - c - 1 >= 0 ? losses[i - c - 1]![e]! : 0; // the reference's loss_steps[-1], still 0
      if (losses[i - c]![e]! > prev) up++;
    }
    const stalled = !reduced && last.lossAtCheck[e]! >= last.lossBest[e]!;
    return up <= window * rho || stalled ? 1 : 0;
  });
}

/** l_inf, l_2 checkpoint: halve, and restart those images from their best point and its gradient. */
function checkStep(s: RunState, run: ApgdRun, i: number, window: number): void {
  const halve = halvings(s.losses, i, window, run.rho, s);
  halve.forEach((h, e) => h && (s.step[e] = s.step[e]! / 2));
  s.reduced = halve;
  s.lossAtCheck = Float32Array.from(s.lossBest);
  s.take(halve, [
    ['x', s.best],
    ['grad', s.gradBest],
  ]);
}

/** l_1 checkpoint: adapt topk to the best point's sparsity, and the step (see the header). */
function checkL1(s: RunState, run: ApgdRun): void {
  const n = run.y.length;
  const [, h, w, c] = run.x0.shape;
  const dim = h * w * c;
  const d = tf.tidy(() => tf.sum(tf.cast(tf.notEqual(tf.sub(s.best, run.x0), 0), 'float32'), [1, 2, 3]).dataSync());
  const back = new Uint8Array(n);
  for (let e = 0; e < n; e++) {
    const sp = d[e]!;
    back[e] = sp / s.sparsity[e]! < 0.95 ? 1 : 0;
    s.topk[e] = sp / dim / 1.5;
    const next = back[e] ? run.eps : s.step[e]! / 1.5;
    s.step[e] = Math.min(Math.max(next, run.eps / 10), run.eps);
    s.sparsity[e] = sp;
  }
  s.take(back, [
    ['x', s.best],
    ['grad', s.gradBest],
  ]);
}

/**
 * The reference's start from a given point (x_init): clipped to [0, 1]; under l_1, topk and the
 * last sparsity come from the point's own sparsity (L0_norm(x_adv - x) / dim / 1.5, and L0).
 */
function fromInit(s: RunState, run: ApgdRun): void {
  if (run.norm !== 'l1') return;
  const [, h, w, c] = run.x0.shape;
  const l0 = tf.tidy(() => tf.sum(tf.cast(tf.notEqual(tf.sub(s.x, run.x0), 0), 'float32'), [1, 2, 3]).dataSync());
  l0.forEach((v, e) => {
    s.topk[e] = v / (h * w * c) / 1.5;
    s.sparsity[e] = v;
  });
}

/**
 * One APGD run (the reference's attack_single_run) over a batch, yielding the fraction done after
 * each iteration; from a random start, or from `init` (not taken). The caller owns the result's
 * tensors.
 */
export function* apgdRunSteps(t: AttackTarget, run: ApgdRun, r: Rng, init?: tf.Tensor4D): Steps<ApgdResult> {
  const start = init ? clip01(init) : apgdStart(run, r);
  let first;
  try {
    first = apgdEvaluate(t, start, run, r);
  } catch (e) {
    start.dispose();
    throw e;
  }
  const s = new RunState(start, first, run);
  if (init) fromInit(s, run);
  const checks = new Set(run.norm === 'l1' ? apgdL1Checkpoints(run.steps) : apgdCheckpoints(run.steps));
  let lastCheck = 0;
  let done = false;
  try {
    for (let i = 0; i < run.steps; i++) {
      const next = run.norm === 'l1' ? l1Step(s, run) : momentumStep(s, run, i);
      s.set('old', s.x);
      s.x = next;
      const ev = apgdEvaluate(t, s.x, run, r);
      s.set('grad', ev.grad);
      const wrong = Uint8Array.from(ev.pred, (v, e) => (v === run.y[e] ? 0 : 1));
      const better = Uint8Array.from(ev.loss, (v, e) => (v > s.lossBest[e]! ? 1 : 0));
      wrong.forEach((w, e) => (s.fooled[e] ||= w));
      s.take(wrong, [['adv', s.x]]);
      s.take(better, [
        ['best', s.x],
        ['gradBest', s.grad],
      ]);
      better.forEach((b, e) => b && (s.lossBest[e] = ev.loss[e]!));
      s.losses.push(ev.loss);
      if (checks.has(i + 1)) {
        if (run.norm === 'l1') checkL1(s, run);
        else checkStep(s, run, i, i + 1 - lastCheck);
        lastCheck = i + 1;
      }
      yield (i + 1) / run.steps;
    }
    done = true;
    return { best: s.best, lossBest: s.lossBest, fooled: s.fooled, adv: s.adv };
  } finally {
    s.dispose(done ? [s.best, s.adv] : []);
  }
}

/**
 * The reference's use_largereps schedule for N iterations at budget eps: 3 eps, 2 eps, then eps,
 * for ceil(0.3 N), ceil(0.3 N) and the rest of the N iterations (for N = 100: 30, 30, 40).
 */
export function largeRepsSchedule(eps: number, nIter: number): Array<{ eps: number; steps: number }> {
  const a = Math.ceil(0.3 * nIter);
  if (nIter - 2 * a < 0) throw new Error(`largereps needs at least 2 steps (steps=${nIter})`);
  return [
    { eps: 3 * eps, steps: a },
    { eps: 2 * eps, steps: a },
    { eps, steps: nIter - 2 * a },
  ];
}

/** x + delta, delta the reference's L1_projection of x - x0 onto the l_1 ball of radius eps within the box. */
function projectL1Box(x: tf.Tensor4D, x0: tf.Tensor4D, eps: number): tf.Tensor4D {
  const [n, h, w, c] = x0.shape;
  const d = tf.sub(x, x0);
  try {
    const delta = projectL1BoxRows(x0.dataSync(), d.dataSync(), n, h * w * c, eps);
    return tf.tidy(() => tf.add(x, tf.tensor4d(delta, x0.shape)) as tf.Tensor4D);
  } finally {
    d.dispose();
  }
}

/**
 * The reference's decr_eps_pgd (l_1 only): from x + a standard normal draw projected to the 3 eps
 * ball, runs at 3 eps, 2 eps and eps (largeRepsSchedule), each from the previous run's best point
 * projected to its budget. The result is the last run's: only points within eps count.
 */
export function* largeRepsSteps(t: AttackTarget, run: ApgdRun, r: Rng): Steps<ApgdResult> {
  const plan = largeRepsSchedule(run.eps, run.steps);
  const noise = tf.randomNormal(run.x0.shape, 0, 1, 'float32', Math.floor(r() * 2 ** 31));
  const sum = tf.add(run.x0, noise) as tf.Tensor4D;
  noise.dispose();
  let init = projectL1Box(sum, run.x0, plan[0]!.eps);
  sum.dispose();
  let res: ApgdResult | undefined;
  let done = 0;
  let finished = false;
  try {
    for (const [k, stage] of plan.entries()) {
      const projected = projectL1Box(init, run.x0, stage.eps);
      init.dispose();
      init = projected;
      const part = apgdRunSteps(t, { ...run, ...stage }, r, init);
      res = yield* scaled(part, done / run.steps, (done + stage.steps) / run.steps);
      done += stage.steps;
      init.dispose();
      init = res.best;
      if (k < plan.length - 1) res.adv.dispose();
    }
    finished = true;
    return res!;
  } finally {
    if (!finished) init.dispose();
  }
}

type Settings = Pick<ApgdRun, 'eps' | 'norm' | 'steps' | 'rho' | 'eot' | 'largereps'>;
const settings = (p: AttackParams): Settings => ({
  eps: p.eps ?? 8 / 255,
  norm: p.norm ?? 'linf',
  steps: p.steps ?? 100,
  rho: p.rho ?? 0.75,
  eot: p.eot ?? 1,
  // The reference's decr_eps_pgd asserts l_1: the schedule is read under l_1 only.
  largereps: (p.norm ?? 'linf') === 'l1' && p.largereps === true,
});

/**
 * One run over the images still robust (robust[i] = 1): those it fools are marked and their
 * adversarial rows written into `out` (the batch's pixels).
 */
function* attackRemaining(
  t: AttackTarget,
  b: { x0: tf.Tensor4D; y: Int32Array; robust: Uint8Array; out: Float32Array },
  make: (x: tf.Tensor4D, y: Int32Array) => ApgdRun,
  r: Rng,
): Steps<void> {
  const idx = Int32Array.from(Array.from(b.robust).flatMap((v, i) => (v ? [i] : [])));
  if (idx.length === 0) return;
  const [, h, w, c] = b.x0.shape;
  const dim = h * w * c;
  const xs = tf.tidy(() => tf.gather(b.x0, tf.tensor1d(idx, 'int32')) as tf.Tensor4D);
  try {
    const run = make(
      xs,
      Int32Array.from(idx, (i) => b.y[i]!),
    );
    const res = yield* run.largereps ? largeRepsSteps(t, run, r) : apgdRunSteps(t, run, r);
    const adv = res.adv.dataSync();
    res.fooled.forEach((f, j) => {
      if (!f) return;
      b.robust[idx[j]!] = 0;
      b.out.set(adv.subarray(j * dim, (j + 1) * dim), idx[j]! * dim);
    });
    res.best.dispose();
    res.adv.dispose();
  } finally {
    xs.dispose();
  }
}

/** The images the classifier gets right when clean: the only ones attacked. */
function cleanCorrect(t: AttackTarget, x0: tf.Tensor4D, y: Int32Array, r: Rng): Uint8Array {
  const pred = tf.tidy(() => tf.argMax(t.logits(x0, r), 1).dataSync());
  return Uint8Array.from(pred, (v, i) => (v === y[i] ? 1 : 0));
}

/** APGD-CE or APGD-DLR (`loss`), with `restarts` runs on the images not yet fooled. */
export const apgdSteps: SteppedAttack = function* (t, x0, y, p, r) {
  const s = settings(p);
  const loss = p.loss ?? 'ce';
  const b = { x0, y, robust: cleanCorrect(t, x0, y, r), out: Float32Array.from(x0.dataSync()) };
  const runs = p.restarts ?? 1;
  for (let k = 0; k < runs; k++) {
    yield* scaled(
      attackRemaining(t, b, (xs, ys) => ({ x0: xs, y: ys, loss, ...s }), r),
      k / runs,
      (k + 1) / runs,
    );
  }
  return tf.tensor4d(b.out, x0.shape);
};

/**
 * APGD-T: for c = 2..targets+1 (targets at most classes - 1), `restarts` runs on the targeted DLR
 * loss towards each still-robust image's c-th highest clean logit.
 */
export const apgdtSteps: SteppedAttack = function* (t, x0, y, p, r) {
  const s = settings(p);
  const targets = Math.min(p.targets ?? 9, t.classes - 1);
  const b = { x0, y, robust: cleanCorrect(t, x0, y, r), out: Float32Array.from(x0.dataSync()) };
  const runs = p.restarts ?? 1;
  const total = targets * runs;
  for (let c = 2; c <= targets + 1; c++) {
    for (let k = 0; k < runs; k++) {
      const make = (xs: tf.Tensor4D, ys: Int32Array): ApgdRun => {
        const z = tf.tidy(() => t.logits(xs, r).dataSync());
        const target = Int32Array.from(ranked(z, ys.length, t.classes), (o) => o[c - 1]!);
        return { x0: xs, y: ys, target, loss: 'dlr-targeted', ...s };
      };
      const at = (c - 2) * runs + k;
      yield* scaled(attackRemaining(t, b, make, r), at / total, (at + 1) / total);
    }
  }
  return tf.tensor4d(b.out, x0.shape);
};

export const apgd: Attack = unstepped(apgdSteps);
export const apgdt: Attack = unstepped(apgdtSteps);
/** A single run to the end (the reference's attack_single_run), for tests and callers that want the best point. */
export const apgdRun = (t: AttackTarget, run: ApgdRun, r: Rng): ApgdResult => runSteps(apgdRunSteps(t, run, r));
