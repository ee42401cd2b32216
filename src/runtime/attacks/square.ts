/**
 * Square Attack (Andriushchenko, Croce, Flammarion, Hein 2020), a black-box score-based attack
 * under l_inf, l_2 or l_1: a random search that tries one square-shaped update per query and keeps it
 * when the margin loss (score of the true class minus the best other score) goes down. It calls
 * only the target's logits, in evaluation mode, and never a gradient.
 *
 * Follows AutoAttack's autoattack/square.py (github:fra31/auto-attack), untargeted, loss 'margin',
 * rescaled schedule (resc_schedule; AutoAttack's composite turns it off):
 * - p_selection: it -> int(it / n_queries * 10000), then p_init / 2^k on the reference's intervals
 *   (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000);
 * - side s = round(sqrt(p * h * w)) (Python's round, half to even), at least 1 (l_inf) or 3 and odd
 *   (l_2, l_1), at most min(h, w); the window's corner drawn as int(rand * (h - s)), as the reference
 *   (so it never touches the last row/column unless s = h);
 * - l_inf: start at x + eps * (random sign per image, channel and column: vertical stripes); each
 *   iteration ONE window and one sign per channel for the whole batch (the reference's
 *   new_deltas has shape [c, h, w]), x_best + 2 eps * sign in the window, projected to the box;
 * - l_2: start from the reference's grid of eta(h // 5) blocks with a random sign per image and
 *   channel, scaled to norm eps; each iteration moves the mass of a second window into the first
 *   and adds a signed eta(s) there, exactly as the reference, then rescales to norm eps;
 * - l_1 (the reference's L1 branch): the same grid and update with l_1 norms in place of l_2 ones:
 *   eta's nested rectangles weigh 1/(k+1)^4 and have unit l_1 norm; the window's new mass per
 *   channel is c * (max(eps - ||delta||_1, 0) / c + ||delta||_1 over both windows in that
 *   channel); the start and each candidate are not rescaled but projected (the reference's
 *   L1_projection, i.e. projectL1BoxRows) onto the l_1 ball of radius eps (1 - 1e-6) within the
 *   box;
 * - a candidate is kept when its margin is lower, or it is misclassified (margin <= 0); images
 *   with margin <= 0 stop (per-image early stop); the run stops when every image has;
 * - restarts attack only the images not yet fooled; images never fooled are returned unchanged
 *   (the reference returns the clean image for them).
 *
 * Query counting: one query on the clean batch (images already misclassified are returned as
 * they are), then per restart at most `queries` per image: the initial point and queries - 1
 * square updates, so at most 1 + restarts * queries logit rows per image. Deliberate differences:
 * the reference's loop runs n_queries updates after the initial query (n_queries + 1 in all) and
 * re-queries each restart's result to decide success; here the budget is exact and success is the
 * decision (argmax) of the query that found the point. With random targets that query's draw of
 * the noise decides. The l_2 initial grid skips blocks that do not fit in the image (the
 * reference fails on them) and uses blocks of at least 1 pixel (it divides by zero below 5). l_1
 * points are clipped to [0, 1] after the projection (which puts them there up to float rounding;
 * the reference does not clip).
 * Randomness comes from the attack's seeded stream (the reference uses torch's generator).
 */
import type { Steps } from '../pace.js';
import type { Rng } from '../rng.js';
import { tf } from '../tf.js';
import { projectL1BoxRows } from './apgd.js';
import { unstepped, type Attack, type AttackParams, type AttackTarget, type SteppedAttack } from './base.js';

/**
 * The reference's p_selection: the fraction of pixels a square covers at iteration `it`, on the
 * schedule rescaled to n_queries (resc_schedule=True, the default), or on the raw iteration count
 * (False, as AutoAttack runs it).
 */
export function pSelection(it: number, nQueries: number, pInit: number, rescale = true): number {
  const i = rescale ? Math.trunc((it / nQueries) * 10000) : it;
  const bounds = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
  let k = 0;
  while (k < bounds.length && i > bounds[k]!) k++;
  return pInit / 2 ** k;
}

/** Python 3's round(): to the nearest integer, halves to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

type SquareNorm = 'linf' | 'l2' | 'l1';

/** Side of the square at iteration `it` (the reference's s for l_inf, or for l_2 and l_1 with its odd minimum of 3). */
export function squareSide(it: number, nQueries: number, pInit: number, h: number, w: number, norm: SquareNorm, rescale = true): number {
  const p = pSelection(it, nQueries, pInit, rescale);
  let s = Math.max(roundHalfEven(Math.sqrt(p * h * w)), norm === 'linf' ? 1 : 3);
  if (norm !== 'linf' && s % 2 === 0) s++;
  return Math.min(s, Math.min(h, w));
}

/** torch.sign(2 * rand - 1), the reference's random_choice. */
const randomSign = (r: Rng) => Math.sign(2 * r() - 1);
/** The reference's random_int(0, high): int(high * rand). */
const randomInt = (r: Rng, high: number) => Math.trunc(high * r());

/** Norm of a window pattern: l_2, or l_1 (the reference's l_1 branches). */
const patternNorm = (d: Float64Array, norm: 'l2' | 'l1') =>
  norm === 'l1' ? d.reduce((s, v) => s + Math.abs(v), 0) : Math.sqrt(d.reduce((s, v) => s + v * v, 0));

/**
 * The reference's eta_rectangles(x, y): nested rectangles weighted 1/(k+1)^2 with unit l_2 norm
 * (l_2), or weighted 1/(k+1)^4 with unit l_1 norm (l_1).
 */
export function etaRectangles(x: number, y: number, norm: 'l2' | 'l1' = 'l2'): Float64Array {
  const d = new Float64Array(x * y);
  const xc = Math.floor(x / 2) + 1;
  const yc = Math.floor(y / 2) + 1;
  let c0 = xc - 1;
  let c1 = yc - 1;
  for (let k = 0; k < Math.max(xc, yc); k++) {
    for (let i = Math.max(c0, 0); i < Math.min(c0 + 2 * k + 1, x); i++)
      for (let j = Math.max(0, c1); j < Math.min(c1 + 2 * k + 1, y); j++) d[i * y + j]! += 1 / (k + 1) ** (norm === 'l1' ? 4 : 2);
    c0--;
    c1--;
  }
  const n = patternNorm(d, norm);
  return d.map((v) => v / n);
}

/** The reference's eta(s) (l_2 or l_1): +rectangles on the top half, -rectangles below, unit norm, transposed half the time. */
export function eta(s: number, r: Rng, norm: 'l2' | 'l1' = 'l2'): Float64Array {
  const top = Math.floor(s / 2);
  const d = new Float64Array(s * s);
  d.set(etaRectangles(top, s, norm), 0);
  etaRectangles(s - top, s, norm).forEach((v, i) => (d[top * s + i] = -v));
  const n = patternNorm(d, norm);
  for (let i = 0; i < d.length; i++) d[i]! /= n;
  if (r() > 0.5) {
    const t = new Float64Array(s * s);
    for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) t[j * s + i] = d[i * s + j]!;
    return t;
  }
  return d;
}

interface Geometry {
  h: number;
  w: number;
  c: number;
  dim: number;
}

/** One score query on k images (rows of a host buffer): each one's margin and whether its argmax is wrong. */
export type Query = (rows: Float32Array, y: Int32Array) => { margin: Float64Array; wrong: Uint8Array };

export function scoreQuery(t: AttackTarget, g: Geometry, r: Rng): Query {
  return (rows, y) => {
    const k = y.length;
    const l = tf.tidy(() => t.logits(tf.tensor4d(rows, [k, g.h, g.w, g.c]), r).dataSync() as Float32Array);
    const nc = l.length / k;
    const margin = new Float64Array(k);
    const wrong = new Uint8Array(k);
    for (let i = 0; i < k; i++) {
      const row = l.subarray(i * nc, (i + 1) * nc);
      let other = -Infinity;
      let arg = 0;
      for (let j = 0; j < nc; j++) {
        if (j !== y[i] && row[j]! > other) other = row[j]!;
        if (row[j]! > row[arg]!) arg = j;
      }
      margin[i] = row[y[i]!]! - other;
      wrong[i] = arg === y[i] ? 0 : 1;
    }
    return { margin, wrong };
  };
}

/** Per image the best point so far, its margin, and whether the query that found it misclassified it. */
interface RunState {
  best: Float32Array;
  margin: Float64Array;
  wrong: Uint8Array;
}

/** l_inf initialisation: x + eps * sign, one sign per image, channel and column (vertical stripes). */
function linfInit(x: Float32Array, n: number, g: Geometry, eps: number, r: Rng): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    const sign = new Float64Array(g.c * g.w);
    for (let k = 0; k < sign.length; k++) sign[k] = randomSign(r); // [c, 1, w] in the reference's order
    for (let row = 0; row < g.h; row++)
      for (let col = 0; col < g.w; col++)
        for (let ch = 0; ch < g.c; ch++) {
          const at = i * g.dim + (row * g.w + col) * g.c + ch;
          out[at] = Math.min(1, Math.max(0, x[at]! + eps * sign[ch * g.w + col]!));
        }
  }
  return out;
}

/** l_inf candidates: the same window and channel signs for every image, x_best + 2 eps * sign projected to the box. */
function linfCandidates(best: Float32Array, x: Float32Array, k: number, g: Geometry, s: number, eps: number, r: Rng): Float32Array {
  const vh = randomInt(r, g.h - s);
  const vw = randomInt(r, g.w - s);
  const sign = Array.from({ length: g.c }, () => randomSign(r));
  const out = Float32Array.from(best);
  for (let i = 0; i < k; i++)
    for (let row = vh; row < vh + s; row++)
      for (let col = vw; col < vw + s; col++)
        for (let ch = 0; ch < g.c; ch++) {
          const at = i * g.dim + (row * g.w + col) * g.c + ch;
          const v = Math.min(Math.max(best[at]! + 2 * eps * sign[ch]!, x[at]! - eps), x[at]! + eps);
          out[at] = Math.min(1, Math.max(0, v));
        }
  return out;
}

/** x + eps * d / ||d||_2 per image, clipped to [0, 1] (the reference's normalize, then clamp). */
function l2Place(x: Float32Array, d: Float64Array, k: number, dim: number, eps: number): Float32Array {
  const out = new Float32Array(k * dim);
  for (let i = 0; i < k; i++) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += d[i * dim + j]! ** 2;
    const scale = eps / (Math.sqrt(ss) + 1e-12);
    for (let j = 0; j < dim; j++) out[i * dim + j] = Math.min(1, Math.max(0, x[i * dim + j]! + d[i * dim + j]! * scale));
  }
  return out;
}

/**
 * x + d + the reference's L1_projection(x, d, eps (1 - 1e-6)) per image: the point of the l_1 ball
 * around x within the box nearest to x + d; clipped to [0, 1] against float rounding.
 */
function l1Place(x: Float32Array, d: Float64Array, k: number, dim: number, eps: number): Float32Array {
  const delta = projectL1BoxRows(x, d, k, dim, eps * (1 - 1e-6));
  return Float32Array.from(x, (v, j) => Math.min(1, Math.max(0, v + d[j]! + delta[j]!)));
}

/** The l_2 and l_1 start: a grid of eta(h // 5) blocks, each with a random sign per image and channel. */
function gridInit(x: Float32Array, n: number, g: Geometry, eps: number, r: Rng, norm: 'l2' | 'l1'): Float32Array {
  const d = new Float64Array(n * g.dim);
  const s = Math.max(1, Math.floor(g.h / 5));
  const sp = Math.floor((g.h - s * 5) / 2);
  let vh = sp;
  for (let a = 0; a < Math.floor(g.h / s); a++, vh += s) {
    let vw = sp;
    for (let b = 0; b < Math.floor(g.w / s); b++, vw += s) {
      const e = eta(s, r, norm);
      const sign = Array.from({ length: n * g.c }, () => randomSign(r));
      if (vh + s > g.h || vw + s > g.w) continue;
      for (let i = 0; i < n; i++)
        for (let u = 0; u < s; u++)
          for (let v = 0; v < s; v++)
            for (let ch = 0; ch < g.c; ch++) d[i * g.dim + ((vh + u) * g.w + vw + v) * g.c + ch]! += e[u * s + v]! * sign[i * g.c + ch]!;
    }
  }
  // l_2 rescales the grid to norm eps; l_1 projects it (the reference's L1 start is not rescaled).
  return norm === 'l1' ? l1Place(x, d, n, g.dim, eps) : l2Place(x, d, n, g.dim, eps);
}

/**
 * Sum of f(delta) over a window, per channel (plus a second window, counted once where they
 * overlap): f = v^2 for l_2 (the square of the reference's window norm), |v| for l_1.
 */
function windowSum(
  delta: Float64Array,
  base: number,
  g: Geometry,
  f: (v: number) => number,
  win: [number, number, number],
  second?: [number, number],
): Float64Array {
  const [vh, vw, s] = win;
  const out = new Float64Array(g.c);
  for (let row = 0; row < g.h; row++)
    for (let col = 0; col < g.w; col++) {
      const in1 = row >= vh && row < vh + s && col >= vw && col < vw + s;
      const in2 = second !== undefined && row >= second[0] && row < second[0] + s && col >= second[1] && col < second[1] + s;
      if (!in1 && !in2) continue;
      for (let ch = 0; ch < g.c; ch++) out[ch]! += f(delta[base + (row * g.w + col) * g.c + ch]!);
    }
  return out;
}

/** What the l_2 and l_1 updates differ in: the norm's summand, its root, and the window's new mass per channel. */
interface UpdateNorm {
  f: (v: number) => number;
  root: (v: number) => number;
  /** From the image's summed f over delta, the window pair's summed f in a channel, eps and c. */
  mass: (image: number, windows: number, eps: number, c: number) => number;
}

const UPDATE: Record<'l2' | 'l1', UpdateNorm> = {
  l2: { f: (v) => v ** 2, root: Math.sqrt, mass: (image, windows, eps, c) => Math.sqrt(Math.max(eps * eps - image, 0) / c + windows) },
  l1: { f: Math.abs, root: (v) => v, mass: (image, windows, eps, c) => (Math.max(eps - image, 0) / c + windows) * c },
};

/**
 * The l_2 and l_1 candidates: the reference's update (the mass of window 2 moved into window 1,
 * plus a signed eta(s)), then rescaled to norm eps (l_2) or projected onto the l_1 ball (l_1).
 */
function gridCandidates(best: Float32Array, x: Float32Array, k: number, g: Geometry, s: number, eps: number, r: Rng, norm: 'l2' | 'l1'): Float32Array {
  const [vh, vw, vh2, vw2] = [g.h, g.w, g.h, g.w].map((m) => randomInt(r, m - s)) as [number, number, number, number];
  const e = eta(s, r, norm);
  const sign = Array.from({ length: k * g.c }, () => randomSign(r));
  const un = UPDATE[norm];
  const delta = Float64Array.from(best, (v, j) => v - x[j]!);
  const at = (base: number, row: number, col: number, ch: number) => base + (row * g.w + col) * g.c + ch;
  for (let i = 0; i < k; i++) {
    const base = i * g.dim;
    let image = 0;
    for (let j = 0; j < g.dim; j++) image += un.f(delta[base + j]!);
    const w1 = windowSum(delta, base, g, un.f, [vh, vw, s]).map(un.root);
    const ws = windowSum(delta, base, g, un.f, [vh, vw, s], [vh2, vw2]);
    const nd = new Float64Array(s * s * g.c);
    for (let ch = 0; ch < g.c; ch++) {
      let nn = 0;
      for (let u = 0; u < s; u++)
        for (let v = 0; v < s; v++) {
          const val = e[u * s + v]! * sign[i * g.c + ch]! + delta[at(base, vh + u, vw + v, ch)]! / (1e-12 + w1[ch]!);
          nd[(u * s + v) * g.c + ch] = val;
          nn += un.f(val);
        }
      const scale = un.mass(image, ws[ch]!, eps, g.c) / (1e-12 + un.root(nn));
      for (let u = 0; u < s * s; u++) nd[u * g.c + ch]! *= scale;
    }
    for (let u = 0; u < s; u++) for (let v = 0; v < s; v++) for (let ch = 0; ch < g.c; ch++) delta[at(base, vh2 + u, vw2 + v, ch)] = 0;
    for (let u = 0; u < s; u++) for (let v = 0; v < s; v++) for (let ch = 0; ch < g.c; ch++) delta[at(base, vh + u, vw + v, ch)] = nd[(u * s + v) * g.c + ch]!;
  }
  return norm === 'l1' ? l1Place(x, delta, k, g.dim, eps) : l2Place(x, delta, k, g.dim, eps);
}

function rowsOf(buf: Float32Array, idx: number[], dim: number): Float32Array {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((i, j) => out.set(buf.subarray(i * dim, (i + 1) * dim), j * dim));
  return out;
}

/** One run of the search on n images (the reference's attack_single_run); yields after each update. */
export function* squareRun(q: Query, x: Float32Array, y: Int32Array, g: Geometry, p: AttackParams, r: Rng): Steps<RunState> {
  const n = y.length;
  const eps = p.eps!;
  const norm: SquareNorm = p.norm ?? 'linf';
  const nq = p.queries ?? 5000;
  const pInit = p.p_init ?? 0.8;
  const best = norm === 'linf' ? linfInit(x, n, g, eps, r) : gridInit(x, n, g, eps, r, norm);
  const { margin, wrong } = q(best, y);
  const state = { best, margin, wrong };
  if (margin.every((m) => m < 0)) return state;
  for (let it = 0; it < nq - 1; it++) {
    const idx = Array.from({ length: n }, (_, i) => i).filter((i) => margin[i]! > 0);
    if (idx.length === 0) break;
    const s = squareSide(it, nq, pInit, g.h, g.w, norm, p.resc_schedule !== false);
    const xs = rowsOf(x, idx, g.dim);
    const bs = rowsOf(best, idx, g.dim);
    const cand = norm === 'linf' ? linfCandidates(bs, xs, idx.length, g, s, eps, r) : gridCandidates(bs, xs, idx.length, g, s, eps, r, norm);
    const res = q(
      cand,
      Int32Array.from(idx, (i) => y[i]!),
    );
    idx.forEach((i, j) => {
      if (res.margin[j]! < margin[i]! || res.margin[j]! <= 0) {
        margin[i] = res.margin[j]!;
        wrong[i] = res.wrong[j]!;
        best.set(cand.subarray(j * g.dim, (j + 1) * g.dim), i * g.dim);
      }
    });
    yield (it + 1) / Math.max(1, nq - 1);
  }
  return state;
}

export const squareSteps: SteppedAttack = function* (t, x0, y, p, r) {
  if (p.norm !== undefined && p.norm !== 'linf' && p.norm !== 'l2' && p.norm !== 'l1')
    throw new Error(`square: norm ${p.norm} is not supported (linf, l2, l1)`);
  const [n, h, w, c] = x0.shape;
  const g: Geometry = { h, w, c, dim: h * w * c };
  const x = x0.dataSync() as Float32Array;
  const q = scoreQuery(t, g, r);
  const adv = Float32Array.from(x);
  const todo = Uint8Array.from(q(x, y).wrong, (v) => 1 - v);
  const restarts = p.restarts ?? 1;
  for (let k = 0; k < restarts; k++) {
    const idx = Array.from({ length: n }, (_, i) => i).filter((i) => todo[i]);
    if (idx.length === 0) break;
    const run = squareRun(
      q,
      rowsOf(x, idx, g.dim),
      Int32Array.from(idx, (i) => y[i]!),
      g,
      p,
      r,
    );
    let step = run.next();
    for (; !step.done; step = run.next()) yield (k + step.value) / restarts;
    const res = step.value;
    idx.forEach((i, j) => {
      if (!res.wrong[j]) return;
      todo[i] = 0;
      adv.set(res.best.subarray(j * g.dim, (j + 1) * g.dim), i * g.dim);
    });
  }
  return tf.tensor4d(adv, x0.shape);
};

export const square: Attack = unstepped(squareSteps);
