/**
 * The `train` operation for an imported model (`weights=`): read the weights file the plan
 * hashed, fail if it changed since, convert it to trend's layout and write a model artifact as
 * training does (no history; validation and test accuracy of the weights as they are).
 */
import { initHash } from '../../common/checksum.js';
import type { ImportParams, ModelSpecSummary } from '../../compiler/contract.js';
import { jsonSafe } from '../../compiler/jsonsafe.js';
import { StepError, type OpContext, type OpResult } from '../executor/types.js';
import { readWeightsFile } from '../models/inspect-weights.js';
import { Model, modelDecls } from '../models/model.js';
import { describeProblem, detectLayout, fileParams, loadWeights, matchWeights } from '../models/weights.js';
import { paced, Pacer } from '../pace.js';
import { accuracySteps } from '../training/train.js';
import { modelSpec, single } from './common.js';

/** Seeds of the accuracy passes' noise streams (a model with noise draws from them). */
const VAL_SEED = 0;
const TEST_SEED = 1000;

function loadModel(p: ImportParams, path: string, base: ReturnType<typeof modelSpec>): Model {
  const read = readWeightsFile(path);
  if ('error' in read) throw new StepError(`weights file ${path}: ${read.error}`);
  if (read.checksum !== p.weights.checksum) {
    throw new StepError(
      `weights file ${path} changed since the pipeline was planned (checksum ${p.weights.checksum.slice(0, 12)} then, ${read.checksum.slice(0, 12)} now); run again to use the new file`,
    );
  }
  const layout = detectLayout(read.file);
  const params = fileParams({ arch: p.arch, shape: p.shape }, modelDecls(base), layout);
  const problems = matchWeights(read.file, params, layout, p.shape[2]);
  if (problems.length) throw new StepError(`weights file ${path} ${problems.map((x) => describeProblem(x, p.arch)).join('; ')}`);
  const loaded = loadWeights(read.file, params, layout);
  const spec = loaded.normalize ? { ...base, mean: loaded.normalize.mean, std: loaded.normalize.std } : base;
  return Model.fromValues(spec, loaded.values);
}

export async function importOp(ctx: OpContext<'train'>, p: ImportParams): Promise<OpResult<'train'>> {
  const data = single(ctx.inputs.data, 'data');
  const path = ctx.node.info.path;
  if (!path) throw new StepError('an imported model needs the path of its weights file');
  await initHash();
  ctx.progress({ phase: 'load weights', done: 0, total: 1 });
  const model = loadModel(p, path, modelSpec(p, data));
  const pacer = new Pacer(ctx.signal);
  try {
    const t = data.tensors;
    const valAccuracy = await paced(accuracySteps(model, t.valX!, t.valY!, VAL_SEED), () => pacer.tick());
    const testAccuracy = await paced(accuracySteps(model, t.testX!, t.testY!, TEST_SEED), () => pacer.tick());
    ctx.progress({ phase: 'load weights', done: 1, total: 1 });
    const summary = {
      spec: jsonSafe<ModelSpecSummary>(model.spec),
      method: 'import',
      params: model.paramCount(),
      history: [],
      bestEpoch: 0,
      valAccuracy,
      testAccuracy,
    };
    return { artifact: { summary, tensors: model.tensors() } };
  } finally {
    model.dispose();
  }
}
