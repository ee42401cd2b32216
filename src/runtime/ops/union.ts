/**
 * The `union` operation (RAMP): an image counts only if the classifier survives every attack of
 * the set; reported with clean and per-attack accuracy on the same images.
 */
import { summaryAs } from '../../compiler/contract.js';
import { list, single } from './common.js';
import type { OpContext, OpResult } from '../executor/types.js';

export function unionAccuracy(correct: Uint8Array[]): number {
  const n = Math.min(...correct.map((c) => c.length));
  if (!correct.length || n === 0) return 0;
  let ok = 0;
  for (let i = 0; i < n; i++) if (correct.every((c) => c[i] === 1)) ok++;
  return ok / n;
}

export async function unionOp(ctx: OpContext<'union'>): Promise<OpResult<'union'>> {
  const runs = list(ctx.inputs.runs);
  const correct = runs.map((r) => r.tensors.correct!.data as Uint8Array);
  const n = Math.min(...correct.map((c) => c.length));
  const clean = summaryAs('predict', single(ctx.inputs.clean, 'clean').summary);
  return {
    artifact: {
      summary: { union: unionAccuracy(correct), n, clean: clean.accuracy, perAttack: runs.map((r) => summaryAs('robust', r.summary).accuracy) },
      tensors: {},
    },
  };
}
