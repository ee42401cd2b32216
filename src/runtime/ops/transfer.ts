/**
 * The `transfer` operation: a target's predictions on a source's adversarial batch, and the
 * transferability metric (ALGORITHMS.md): over the test images that the source classifies
 * correctly, that the source attack fools, and that the target classifies correctly when clean,
 * TM = (# the target misclassifies) / (# of those images).
 */
import type { TransferSummary } from '../../compiler/contract.js';
import { tensor } from '../artifact.js';
import { buildClassifier } from '../eval/classifier.js';
import type { OpContext, OpResult } from '../executor/types.js';
import { Pacer } from '../pace.js';
import { rng } from '../rng.js';
import { tf } from '../tf.js';
import { chunks } from '../training/batches.js';
import { list, single } from './common.js';

export type TransferCounts = TransferSummary;

export function transferCounts(y: Int32Array, srcClean: Int32Array, srcAdv: Int32Array, tgtClean: Int32Array, tgtAdv: Int32Array): TransferCounts {
  let generated = 0;
  let eligible = 0;
  let transferred = 0;
  for (let i = 0; i < y.length; i++) {
    if (srcClean[i] !== y[i] || srcAdv[i] === y[i]) continue;
    generated++;
    if (tgtClean[i] !== y[i]) continue;
    eligible++;
    if (tgtAdv[i] !== y[i]) transferred++;
  }
  return { generated, eligible, transferred, tm: eligible ? transferred / eligible : null };
}

export async function transferOp(ctx: OpContext<'transfer'>): Promise<OpResult<'transfer'>> {
  const p = ctx.params;
  const adv = single(ctx.inputs.adv, 'adv');
  const clf = buildClassifier(p.target, list(ctx.inputs.models), ctx.inputs.select ? single(ctx.inputs.select, 'select') : undefined);
  const x = adv.tensors.x!;
  const n = x.shape[0]!;
  const per = x.data.length / Math.max(1, n);
  const pred = new Int32Array(n);
  const pacer = new Pacer(ctx.signal);
  let b = 0;
  try {
    for (const [s, e] of chunks(n, clf.smooth?.batch ?? 250)) {
      await pacer.tick();
      const xb = tf.tensor4d((x.data as Float32Array).subarray(s * per, e * per), [e - s, ...(x.shape.slice(1) as [number, number, number])]);
      try {
        pred.set(clf.predict(xb, rng('transfer', `batch/${b++}`)), s);
      } finally {
        xb.dispose();
      }
      ctx.progress({ phase: 'evaluate', done: e, total: n, unit: 'images' });
    }
  } finally {
    clf.dispose();
  }
  const srcClean = (single(ctx.inputs.sourceClean, 'sourceClean').tensors.pred!.data as Int32Array).subarray(0, n);
  const tgtClean = (single(ctx.inputs.targetClean, 'targetClean').tensors.pred!.data as Int32Array).subarray(0, n);
  const y = adv.tensors.y!.data as Int32Array;
  const counts = transferCounts(y, srcClean, adv.tensors.sourcePred!.data as Int32Array, tgtClean, pred);
  return { artifact: { summary: counts, tensors: { pred: tensor('int32', [n], pred) } } };
}
