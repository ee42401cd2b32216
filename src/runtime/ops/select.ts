/** The `select` operation: TREND's choice of k members from a transfer matrix. */
import type { Artifact } from '../artifact.js';
import { selectLowest, symmetric } from '../analysis/select.js';
import type { OpContext, OpResult } from '../executor/types.js';
import { single } from './common.js';

export async function selectOp(ctx: OpContext): Promise<OpResult> {
  const p = ctx.params as { k: number; objective: 'sum' | 'max'; attackIndex: number; candidates: Array<{ col: number; row: number }> };
  const m = single(ctx.inputs.matrix, 'matrix').summary as unknown as { attacks: Array<{ tm: Array<Array<number | null>> }> };
  const tm = m.attacks[p.attackIndex]!.tm;
  // TM(i -> j): source i (its column), target j (its row).
  const s = symmetric((i, j) => tm[p.candidates[j]!.row]![p.candidates[i]!.col] ?? null, p.candidates.length);
  const sel = selectLowest(s, p.k, p.objective);
  return { artifact: { summary: { ...sel, pairs: s } as unknown as Artifact['summary'], tensors: {} } };
}
