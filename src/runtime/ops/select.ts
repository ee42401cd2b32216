/** The `select` operation: TREND's choice of k members from a transfer matrix. */
import { summaryAs } from '../../compiler/contract.js';
import { selectLowest, symmetric } from '../analysis/select.js';
import type { OpContext, OpResult } from '../executor/types.js';
import { single } from './common.js';

export async function selectOp(ctx: OpContext<'select'>): Promise<OpResult<'select'>> {
  const p = ctx.params;
  const m = summaryAs('matrix', single(ctx.inputs.matrix, 'matrix').summary);
  const tm = m.attacks[p.attackIndex]!.tm;
  // TM(i -> j): source i (its column), target j (its row).
  const s = symmetric((i, j) => tm[p.candidates[j]!.row]![p.candidates[i]!.col] ?? null, p.candidates.length);
  const sel = selectLowest(s, p.k, p.objective);
  return { artifact: { summary: { ...sel, pairs: s }, tensors: {} } };
}
