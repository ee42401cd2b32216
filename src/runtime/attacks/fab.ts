/**
 * FAB-T: the targeted Fast Adaptive Boundary attack (Croce and Hein 2020, "Minimally distorted
 * adversarial examples with a fast adaptive boundary attack") under l_inf, l_2 or l_1, as
 * AutoAttack runs it, counted against a budget eps.
 *
 * Follows fra31/auto-attack, autoattack/fab_base.py (FABAttack.perturb with targeted=True and
 * attack_single_run), fab_pt.py (get_diff_logits_grads_batch_targeted) and fab_projections.py
 * (projection_linf, projection_l2, projection_l1):
 * - For each target rank k = 2 .. targets + 1 (the k-th highest logit at the clean image, so the
 *   highest-scoring classes other than the label), and for each restart, one run on the images
 *   still classified correctly. Restart 0 starts at the clean image, later ones at
 *   x0 + (eps / 2) * u / ||u|| (u uniform in [-1, 1]^d for l_inf, standard normal for l_2 and
 *   l_1; the norm is the attack's), clipped to [0, 1]. A run's result counts only where it is misclassified and within eps.
 * - A run repeats `steps` times: linearise f = z_target - z_label at x (one forward pass): the
 *   hyperplane <w, z> = b with w = grad f, b = <w, x> - f. Project both the current point x and
 *   the original x0 onto that hyperplane intersected with the [0, 1] box (minimal l_p
 *   displacement d1, d2; where the box keeps the hyperplane out of reach, the box point closest
 *   to it), then x = clip01((x + eta d1) (1 - alpha) + (x0 + eta d2) alpha) with
 *   alpha = min(max(||d1|| / (||d1|| + ||d2||), 0), alpha_max) (norms at least 1e-8). Where the
 *   new x is misclassified (any class other than the label), it is kept if nearer to x0 than the
 *   run's best, and x steps back: x = x0 + beta (x - x0). Every norm above (alpha's, the
 *   distance to x0, the final check against eps) is the attack's own.
 * - l_1 (projection_l1): the cheapest l_1 move changes the coordinates with the largest |w| first;
 *   coordinates in descending order of |w| go to the box bound that moves <w, .> towards b until
 *   one of them, moved only part of the way, reaches the hyperplane. Where even all of them at the
 *   bound fall short, the point is that box corner.
 * - Images misclassified at the start, and those never fooled within eps, are returned unchanged.
 *
 * Deliberate differences: `targets` is capped at classes - 1 (the reference indexes past the
 * logits); the projections run on the host in float64, with stable sorts (ties by coordinate),
 * and set the displacement of coordinates with zero gradient to 0 (the reference multiplies by a
 * mask, which gives NaN when the whole gradient is 0); random starts draw from our seeded stream.
 * There is no final search: AutoAttack's FAB has none (the original fra31/fab-attack code has an
 * optional linear_approximation_search, off by default).
 */
import { normals, type Rng } from '../rng.js';
import { scaled, type Steps } from '../pace.js';
import { tf } from '../tf.js';
import { oneHot, unstepped, type Attack, type AttackParams, type AttackTarget, type SteppedAttack } from './base.js';

type FabNorm = 'linf' | 'l2' | 'l1';

interface FabOptions {
  norm: FabNorm;
  eps: number;
  steps: number;
  restarts: number;
  targets: number;
  alphaMax: number;
  eta: number;
  beta: number;
}

/** Indices of v in ascending order of value (ties by index). */
function argsort(v: Float64Array): Int32Array {
  const idx = Int32Array.from({ length: v.length }, (_, i) => i);
  return idx.sort((i, j) => v[i]! - v[j]! || i - j);
}

/**
 * projection_linf of fab_projections.py for one point t: the displacement d of least l_inf norm
 * with <w, t + d> = b and t + d in [0, 1]^n; where no such d exists, the box corner that moves
 * <w, .> furthest towards b.
 */
export function fabProjectLinf(t: ArrayLike<number>, wIn: ArrayLike<number>, bIn: number): Float64Array {
  const n = t.length;
  const w = Float64Array.from(wIn);
  let wt = 0;
  for (let i = 0; i < n; i++) wt += w[i]! * t[i]!;
  const sign = wt - bIn >= 0 ? 1 : -1; // orient w so that <w, t> >= b: d must lower <w, .>
  for (let i = 0; i < n; i++) w[i]! *= sign;
  const a = new Uint8Array(n); // 1 where w < 0 (that coordinate moves up to 1), else 0 (down to 0)
  const d = new Float64Array(n); // the box corner's displacement
  const p = new Float64Array(n); // how far each coordinate can move
  let b0 = 0;
  for (let i = 0; i < n; i++) {
    a[i] = w[i]! < 0 ? 1 : 0;
    d[i] = w[i]! !== 0 ? a[i]! - t[i]! : 0;
    p[i] = a[i]! - t[i]! * (2 * a[i]! - 1);
    b0 += w[i]! * d[i]!;
  }
  const b = bIn * sign - sign * wt; // the change of <w, .> needed (<= 0)
  const indp = argsort(p);
  // Coordinates in descending order of p: with the first k + 1 of them free (the rest at the
  // box), <w, d(lambda)> = sb[k] - s[k] * lambda.
  const s = new Float64Array(n);
  const sb = new Float64Array(n);
  for (let k = 0, cs = 0, csb = b0; k < n; k++) {
    const j = indp[n - 1 - k]!;
    cs += Math.abs(w[j]!);
    csb -= w[j]! * d[j]!;
    s[k] = cs;
    sb[k] = csb;
  }
  const free = b - (sb[n - 1]! - s[n - 1]! * p[indp[0]!]!) > 0; // c_l: no coordinate reaches the box
  if (free) {
    const lmbd = Math.max((b - sb[n - 1]!) / -s[n - 1]!, 0);
    for (let i = 0; i < n; i++) d[i] = (2 * a[i]! - 1) * lmbd;
  } else if (b - b0 > 0) {
    let lb = 0;
    let ub = n - 1;
    for (let it = 0, nitermax = Math.ceil(Math.log2(n)); it < nitermax; it++) {
      const mid = Math.floor((lb + ub) / 2);
      if (b - (sb[mid]! - s[mid]! * p[indp[n - 1 - mid]!]!) > 0) lb = mid;
      else ub = mid;
    }
    const lmbd = Math.max((b - sb[lb]!) / -s[lb]!, 0);
    for (let i = 0; i < n; i++) d[i] = a[i] ? Math.min(lmbd, d[i]!) : Math.max(-lmbd, d[i]!);
  }
  for (let i = 0; i < n; i++) if (w[i] === 0) d[i] = 0;
  return d;
}

/** The l_2 projection's sorted breakpoints: where each coordinate meets the box as d = -alpha w grows. */
function l2Breakpoints(t: ArrayLike<number>, w: Float64Array): { r: Float64Array; rs: Float64Array; ws: Float64Array; s: Float64Array; w5: number } {
  const n = t.length;
  const r = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = Math.abs(w[i]!) < 1e-8 ? 1e12 : Math.min(Math.max(Math.max(t[i]! / w[i]!, (t[i]! - 1) / w[i]!), -1e12), 1e12);
    if (v === -1e12) v = 1e12;
    r[i] = v;
  }
  const indr = argsort(r);
  const rs = Float64Array.from(indr, (j) => r[j]!);
  const rs2 = Float64Array.from(rs, (_, k) => (k + 1 < n ? rs[k + 1]! : 0));
  for (let k = 0; k < n; k++) {
    if (rs[k] === 1e12) rs[k] = 0;
    if (rs2[k] === 1e12) rs2[k] = 0;
  }
  let w5 = 0;
  for (let i = 0; i < n; i++) w5 += w[i]! ** 2;
  const ws = new Float64Array(n);
  for (let k = 0, cum = 0; k < n; k++) {
    cum += w[indr[k]!]! ** 2;
    ws[k] = w5 - cum;
  }
  // s[k]: <w, d> at alpha = rs[k] (length n + 1, as the reference).
  const s = new Float64Array(n + 1);
  s[0] = -w5 * rs[0]!;
  for (let k = 0, cum = 0; k < n; k++) {
    cum += (rs[k]! - rs2[k]!) * ws[k]!;
    s[k + 1] = cum - w5 * rs[0]!;
  }
  return { r, rs, ws, s, w5 };
}

/**
 * projection_l2 of fab_projections.py for one point t: the displacement d of least l_2 norm with
 * <w, t + d> = b and t + d in [0, 1]^n (d = -alpha w clipped to the box, alpha found on the sorted
 * breakpoints); where no such d exists, the box point that moves <w, .> furthest towards b.
 */
export function fabProjectL2(t: ArrayLike<number>, wIn: ArrayLike<number>, bIn: number): Float64Array {
  const n = t.length;
  const w = Float64Array.from(wIn);
  let c = -bIn;
  for (let i = 0; i < n; i++) c += w[i]! * t[i]!;
  const sign = c >= 0 ? 1 : -1;
  for (let i = 0; i < n; i++) w[i]! *= sign;
  c *= sign;
  const { r, rs, ws, s, w5 } = l2Breakpoints(t, w);
  const live = (i: number) => Math.abs(w[i]!) > 1e-8;
  const d = Float64Array.from(r, (v, i) => (live(i) ? -(v * w[i]!) : 0));
  let dw = 0;
  for (let i = 0; i < n; i++) dw += d[i]! * w[i]!;
  if (s[0]! + c < 0) {
    // c4: reached before any coordinate meets the box.
    const alpha = c / w5;
    for (let i = 0; i < n; i++) d[i] = -alpha * w[i]!;
  } else if (!(dw + c > 0)) {
    // c2 (c3, out of reach, keeps the saturated point): binary search for the segment.
    let lb = 0;
    let ub = n - 1;
    for (let it = 0, nitermax = Math.ceil(Math.log2(n)); it < nitermax; it++) {
      const mid = Math.floor((lb + ub) / 2);
      if (s[mid]! + c > 0) lb = mid;
      else ub = mid;
    }
    const alpha = ws[lb] === 0 ? 0 : (s[lb]! + c) / ws[lb]! + rs[lb]!;
    for (let i = 0; i < n; i++) if (!(alpha > r[i]!)) d[i] = -alpha * w[i]!;
  }
  for (let i = 0; i < n; i++) if (!live(i)) d[i] = 0;
  return d;
}

/**
 * projection_l1 of fab_projections.py for one point t: the displacement d of least l_1 norm with
 * <w, t + d> = b and t + d in [0, 1]^n. Coordinates in ascending order of 1 / |w| (the cost of
 * moving <w, .> by one through them) move to the bound of the box that brings <w, .> towards b:
 * the first lb of them all the way, the next by the rest; lb from the reference's binary search on
 * the running remainder s. Where all of them at their bound fall short, d is that box corner.
 */
export function fabProjectL1(t: ArrayLike<number>, wIn: ArrayLike<number>, bIn: number): Float64Array {
  const n = t.length;
  const w = Float64Array.from(wIn);
  let c = -bIn;
  for (let i = 0; i < n; i++) c += w[i]! * t[i]!;
  const sign = c >= 0 ? 1 : -1; // orient w so that c = <w, t> - b >= 0: d must lower <w, .> by c
  for (let i = 0; i < n; i++) w[i]! *= sign;
  c *= sign;
  const indr = argsort(Float64Array.from(w, (v) => Math.min(Math.abs(1 / v), 1e12)));
  // The box corner: each coordinate at the bound that lowers <w, .> (1 where w < 0, else 0).
  const d = Float64Array.from(t, (v, i) => (w[i] !== 0 ? (w[i]! < 0 ? 1 : 0) - v : 0));
  // s[k]: what is left of c once the first k coordinates (in indr's order) are at their bound.
  const s = new Float64Array(n + 1);
  s[0] = c;
  for (let k = 0; k < n; k++) {
    const j = indr[k]!;
    s[k + 1] = s[k]! + Math.min(-w[j]! * t[j]!, w[j]! * (1 - t[j]!));
  }
  if (s[n]! < 0) {
    let lb = 0;
    let ub = n + 1;
    for (let it = 0, nitermax = Math.ceil(Math.log2(n)); it < nitermax; it++) {
      const mid = Math.floor((lb + ub) / 2);
      if (s[mid]! > 0) lb = mid;
      else ub = mid;
    }
    for (let k = lb; k < n; k++) d[indr[k]!] = 0;
    const j = indr[lb]!;
    d[j] = -s[lb]! / w[j]!;
  }
  for (let i = 0; i < n; i++) if (!(Math.abs(w[i]!) > 1e-8)) d[i] = 0;
  return d;
}

function rowNorm(v: ArrayLike<number>, norm: FabNorm): number {
  let acc = 0;
  for (let i = 0; i < v.length; i++) {
    const a = Math.abs(v[i]!);
    acc = norm === 'linf' ? Math.max(acc, a) : norm === 'l1' ? acc + a : acc + a * a;
  }
  return norm === 'l2' ? Math.sqrt(acc) : acc;
}

function distance(a: ArrayLike<number>, b: ArrayLike<number>, norm: FabNorm): number {
  return rowNorm(
    Float64Array.from(a, (v, i) => v - b[i]!),
    norm,
  );
}

/** Logits at a host batch, as a host array [n * classes]. */
function hostLogits(t: AttackTarget, x: Float32Array, shape: number[], r: Rng): Float32Array {
  return tf.tidy(() => t.logits(tf.tensor4d(x, shape as [number, number, number, number]), r).dataSync() as Float32Array);
}

function argmaxRows(z: Float32Array, classes: number): Int32Array {
  return Int32Array.from({ length: z.length / classes }, (_, i) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (z[i * classes + c]! > z[i * classes + best]!) best = c;
    return best;
  });
}

/** Per row, the class of the k-th highest logit (k = 1: the top). */
function rankedClass(z: Float32Array, classes: number, k: number): Int32Array {
  return Int32Array.from({ length: z.length / classes }, (_, i) => {
    const row = Float64Array.from(z.subarray(i * classes, (i + 1) * classes));
    return argsort(row.map((v) => -v))[k - 1]!;
  });
}

/** f = z_target - z_label at x and its input gradient, from one forward pass (as the reference). */
function diffAndGrad(t: AttackTarget, x: Float32Array, shape: number[], y: Int32Array, target: Int32Array, r: Rng): { df: Float32Array; dg: Float32Array } {
  let kept: tf.Tensor | undefined;
  try {
    const dg = tf.tidy(() => {
      const sel = tf.sub(oneHot(target, t.classes), oneHot(y, t.classes));
      const f = (z: tf.Tensor) => {
        const diff = tf.sum(tf.mul(t.logits(z as tf.Tensor4D, r), sel), 1);
        kept = tf.keep(diff);
        return tf.sum(diff) as tf.Scalar;
      };
      return tf
        .grad(f)(tf.tensor4d(x, shape as [number, number, number, number]))
        .dataSync() as Float32Array;
    });
    return { df: kept!.dataSync() as Float32Array, dg };
  } finally {
    kept?.dispose();
  }
}

const PROJECTIONS = { linf: fabProjectLinf, l2: fabProjectL2, l1: fabProjectL1 } as const;

/** One FAB step on the host, in place on x1: project x1 and x0, combine with bias towards x0. */
function fabStep(x1: Float32Array, x0: Float32Array, df: Float32Array, dg: Float32Array, o: FabOptions): void {
  const dim = x1.length / df.length;
  const project = PROJECTIONS[o.norm];
  for (let i = 0; i < df.length; i++) {
    const xi = x1.subarray(i * dim, (i + 1) * dim);
    const x0i = x0.subarray(i * dim, (i + 1) * dim);
    const w = dg.subarray(i * dim, (i + 1) * dim);
    let b = -df[i]!;
    for (let k = 0; k < dim; k++) b += w[k]! * xi[k]!;
    const d1 = project(xi, w, b);
    const d2 = project(x0i, w, b);
    const a1 = Math.max(rowNorm(d1, o.norm), 1e-8);
    const a2 = Math.max(rowNorm(d2, o.norm), 1e-8);
    const alpha = Math.min(Math.max(a1 / (a1 + a2), 0), o.alphaMax);
    for (let k = 0; k < dim; k++) {
      const v = (xi[k]! + o.eta * d1[k]!) * (1 - alpha) + (x0i[k]! + o.eta * d2[k]!) * alpha;
      xi[k] = Math.min(Math.max(v, 0), 1);
    }
  }
}

/** The random start of restarts after the first: x0 + (eps / 2) u / ||u||, clipped to [0, 1]. */
function randomStartFab(x0: Float32Array, n: number, o: FabOptions, r: Rng): Float32Array {
  const dim = x0.length / n;
  const u = o.norm === 'linf' ? Float32Array.from({ length: x0.length }, () => 2 * r() - 1) : normals(x0.length, r);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < n; i++) {
    const scale = (o.eps * 0.5) / rowNorm(u.subarray(i * dim, (i + 1) * dim), o.norm);
    for (let k = i * dim; k < (i + 1) * dim; k++) out[k] = Math.min(Math.max(x0[k]! + u[k]! * scale, 0), 1);
  }
  return out;
}

/** Rows `idx` of a host batch of rows of `dim` values. */
function rows(x: Float32Array, idx: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(idx.length * dim);
  for (let j = 0; j < idx.length; j++) out.set(x.subarray(idx[j]! * dim, (idx[j]! + 1) * dim), j * dim);
  return out;
}

interface RunInput {
  x: Float32Array;
  y: Int32Array;
  shape: number[];
  rank: number;
  randomStart: boolean;
}

/**
 * attack_single_run (targeted): the run's adversarial batch, each image the smallest adversarial
 * found, or unchanged where none was (or the image is misclassified to begin with).
 */
function* singleRun(t: AttackTarget, inp: RunInput, o: FabOptions, r: Rng): Steps<Float32Array> {
  const [n, ...img] = inp.shape as [number, number, number, number];
  const dim = inp.x.length / n;
  const z0 = hostLogits(t, inp.x, inp.shape, r);
  const pred = argmaxRows(z0, t.classes);
  const target = rankedClass(z0, t.classes, inp.rank);
  const active = Int32Array.from(pred.keys()).filter((i) => pred[i] === inp.y[i]);
  const out = Float32Array.from(inp.x);
  if (!active.length) return out;
  const bs = active.length;
  const shape = [bs, ...img];
  const x0 = rows(inp.x, active, dim);
  const la = Int32Array.from(active, (i) => inp.y[i]!);
  const lt = Int32Array.from(active, (i) => target[i]!);
  const adv = Float32Array.from(x0);
  const res = new Float64Array(bs).fill(1e10);
  const x1 = inp.randomStart ? randomStartFab(x0, bs, o, r) : Float32Array.from(x0);
  for (let it = 0; it < o.steps; it++) {
    const { df, dg } = diffAndGrad(t, x1, shape, la, lt, r);
    fabStep(x1, x0, df, dg, o);
    const now = argmaxRows(hostLogits(t, x1, shape, r), t.classes);
    for (let i = 0; i < bs; i++) {
      if (now[i] === la[i]) continue;
      const xi = x1.subarray(i * dim, (i + 1) * dim);
      const x0i = x0.subarray(i * dim, (i + 1) * dim);
      const dist = distance(xi, x0i, o.norm);
      if (dist < res[i]!) {
        adv.set(xi, i * dim);
        res[i] = dist;
      }
      for (let k = 0; k < dim; k++) xi[k] = x0i[k]! + (xi[k]! - x0i[k]!) * o.beta;
    }
    yield (it + 1) / o.steps;
  }
  active.forEach((i, j) => {
    if (res[j]! < 1e10) out.set(adv.subarray(j * dim, (j + 1) * dim), i * dim);
  });
  return out;
}

function options(p: AttackParams): FabOptions {
  if (p.eps === undefined) throw new Error('fabt needs eps (its budget)');
  const norm = p.norm ?? 'linf';
  if (norm !== 'linf' && norm !== 'l2' && norm !== 'l1') throw new Error(`fabt supports norm=linf, l2 and l1, not ${norm}`);
  return {
    norm,
    eps: p.eps,
    steps: p.steps ?? 100,
    restarts: p.restarts ?? 1,
    targets: p.targets ?? 9,
    alphaMax: p.alpha_max ?? 0.1,
    eta: p.eta ?? 1.05,
    beta: p.beta ?? 0.9,
  };
}

/** FABAttack.perturb, targeted: target ranks 2 .. targets + 1, restarts each, on the images not yet fooled. */
export const fabtSteps: SteppedAttack = function* (t, x0, y, p, r) {
  const o = options(p);
  const shape = x0.shape;
  const n = shape[0];
  const dim = x0.size / n;
  const x = Float32Array.from(x0.dataSync() as Float32Array);
  const adv = Float32Array.from(x);
  const pred = argmaxRows(hostLogits(t, x, shape, r), t.classes);
  const acc = Uint8Array.from(pred, (v, i) => (v === y[i] ? 1 : 0));
  const ranks = Math.min(o.targets, t.classes - 1);
  const parts = ranks * o.restarts;
  for (let part = 0; part < parts; part++) {
    const idx = Int32Array.from(acc.keys()).filter((i) => acc[i]);
    if (!idx.length) break;
    const xs = rows(x, idx, dim);
    const ys = Int32Array.from(idx, (i) => y[i]!);
    const k = part % o.restarts;
    const inp: RunInput = { x: xs, y: ys, shape: [idx.length, ...shape.slice(1)], rank: 2 + Math.floor(part / o.restarts), randomStart: k > 0 };
    const cur = yield* scaled(singleRun(t, inp, o, r), part / parts, (part + 1) / parts);
    const now = argmaxRows(hostLogits(t, cur, inp.shape, r), t.classes);
    idx.forEach((i, j) => {
      const row = cur.subarray(j * dim, (j + 1) * dim);
      if (now[j] !== ys[j] && distance(row, xs.subarray(j * dim, (j + 1) * dim), o.norm) <= o.eps) {
        acc[i] = 0;
        adv.set(row, i * dim);
      }
    });
  }
  return tf.tensor4d(adv, shape);
};

export const fabt: Attack = unstepped(fabtSteps);
