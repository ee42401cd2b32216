/**
 * The `train` operation: build the model from its spec and train it (or fine-tune `from`), or,
 * for a model with imported weights, load them (import-weights.ts).
 */
import type { ModelSpecSummary, OpParams } from '../../compiler/contract.js';
import { jsonSafe } from '../../compiler/jsonsafe.js';
import type { OpContext, OpResult } from '../executor/types.js';
import { Model } from '../models/model.js';
import { paced, Pacer } from '../pace.js';
import { accuracySteps, train } from '../training/train.js';
import { modelSpec, single } from './common.js';
import { importOp } from './import-weights.js';

export async function trainOp(ctx: OpContext<'train'>): Promise<OpResult<'train'>> {
  const p = jsonSafe<OpParams<'train'>>(ctx.params);
  if ('weights' in p) return importOp(ctx, p);
  const data = single(ctx.inputs.data, 'data');
  const pacer = new Pacer(ctx.signal);
  const from = ctx.inputs.from ? Model.fromArtifact(single(ctx.inputs.from, 'from')) : undefined;
  // A fine-tuned model keeps its origin's input normalisation: the dataset's for a model trained
  // here (the same values), the file's for imported weights that carry their own.
  const spec = from ? { ...modelSpec(p, data), mean: from.spec.mean, std: from.spec.std } : modelSpec(p, data);
  const t0 = performance.now();
  let res: Awaited<ReturnType<typeof train>>;
  try {
    res = await train({ spec, settings: p.train, method: p.method, data, ...(from ? { init: from } : {}), progress: ctx.progress, pacer });
  } finally {
    from?.dispose();
  }
  const ms = performance.now() - t0;
  let testAcc: number;
  try {
    testAcc = await paced(accuracySteps(res.model, data.tensors.testX!, data.tensors.testY!, p.train.seed + 1000), () => pacer.tick());
  } catch (e) {
    res.model.dispose();
    throw e;
  }
  const artifact: OpResult<'train'>['artifact'] = {
    summary: {
      spec: jsonSafe<ModelSpecSummary>(spec),
      method: p.method.name,
      params: res.model.paramCount(),
      history: res.history.map(({ ms: _ms, ...h }) => h),
      bestEpoch: res.bestEpoch,
      valAccuracy: res.bestVal,
      testAccuracy: testAcc,
    },
    tensors: res.model.tensors(),
  };
  const images = (data.tensors.trainY!.shape[0]! * p.train.epochs) / (ms / 1000);
  res.model.dispose();
  return { artifact, extra: { trainImagesPerSecond: Math.round(images), epochMs: res.history.map((h) => h.ms) } };
}
