/**
 * Combining several predictions into one, on plain arrays (pure functions, unit-tested on
 * constructed inputs).
 */
import type { Rng } from '../rng.js';

/**
 * Majority vote of ensemble members. A class needs more than half the votes; when no class has
 * a majority, a member drawn from the seeded stream decides (the authors' code broke partial
 * ties by the lowest class index instead).
 */
export function majorityVote(memberPreds: Int32Array[], r: Rng): Int32Array {
  const n = memberPreds[0]?.length ?? 0;
  const k = memberPreds.length;
  const out = new Int32Array(n);
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    counts.clear();
    let winner = -1;
    for (let m = 0; m < k; m++) {
      const c = memberPreds[m]![i]!;
      const v = (counts.get(c) ?? 0) + 1;
      counts.set(c, v);
      if (v * 2 > k) winner = c;
    }
    // One draw per image whether or not it is needed, so results do not depend on the others.
    const pick = Math.floor(r() * k);
    out[i] = winner >= 0 ? winner : memberPreds[pick]![i]!;
  }
  return out;
}

export type SmoothVote = 'prediction' | 'soft' | 'weighted';

/** Accumulates m noisy samples of logits per image and decides, for the three vote rules. */
export class SmoothAccumulator {
  private readonly counts: Float64Array;
  private readonly probs: Float64Array;
  private readonly logitSum: Float64Array;
  private readonly weighted: Float64Array;
  constructor(
    readonly n: number,
    readonly classes: number,
  ) {
    this.counts = new Float64Array(n * classes);
    this.probs = new Float64Array(n * classes);
    this.logitSum = new Float64Array(n * classes);
    this.weighted = new Float64Array(n * classes);
  }

  /** logits: [n, classes] of one noise draw. */
  add(logits: Float32Array): void {
    const C = this.classes;
    const order = new Array<number>(C);
    for (let i = 0; i < this.n; i++) {
      const row = logits.subarray(i * C, (i + 1) * C);
      let max = -Infinity;
      let arg = 0;
      for (let c = 0; c < C; c++) if (row[c]! > max) [max, arg] = [row[c]!, c];
      this.counts[i * C + arg]++;
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(row[c]! - max);
      for (let c = 0; c < C; c++) {
        this.probs[i * C + c] += Math.exp(row[c]! - max) / z;
        this.logitSum[i * C + c] += row[c]!;
        order[c] = c;
      }
      order.sort((a, b) => row[b]! - row[a]! || a - b);
      for (let rank = 0; rank < C; rank++) this.weighted[i * C + order[rank]!] += 2 ** -rank;
    }
  }

  /** prediction: most top-1 votes (ties: larger summed probability); soft: largest mean
   *  probability (or mean logit); weighted: largest sum of 2^-rank. */
  decide(vote: SmoothVote, average: 'probs' | 'logits' = 'probs'): Int32Array {
    const C = this.classes;
    const out = new Int32Array(this.n);
    for (let i = 0; i < this.n; i++) {
      let best = 0;
      for (let c = 1; c < C; c++) {
        const j = i * C + c;
        const b = i * C + best;
        let better: boolean;
        if (vote === 'prediction') better = this.counts[j]! > this.counts[b]! || (this.counts[j] === this.counts[b] && this.probs[j]! > this.probs[b]!);
        else if (vote === 'soft') better = average === 'logits' ? this.logitSum[j]! > this.logitSum[b]! : this.probs[j]! > this.probs[b]!;
        else better = this.weighted[j]! > this.weighted[b]!;
        if (better) best = c;
      }
      out[i] = best;
    }
    return out;
  }
}
