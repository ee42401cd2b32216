/** The `predict` operation: a classifier's clean predictions on the test images. */
import type { PredictSummary } from '../../compiler/contract.js';
import { tensor, type Artifact } from '../artifact.js';
import { buildClassifier } from '../eval/classifier.js';
import type { OpContext, OpResult } from '../executor/types.js';
import { paced, Pacer, runSteps, type Steps } from '../pace.js';
import { rng } from '../rng.js';
import { chunks, imageBatch, labelBatch, range } from '../training/batches.js';
import { list, single } from './common.js';

export function predictAll(
  clf: ReturnType<typeof buildClassifier>,
  data: Artifact,
  n: number,
  batch: number,
  seed: number | string,
  progress?: (d: number, t: number) => void,
): Int32Array {
  return runSteps(predictSteps(clf, data, n, batch, seed, progress));
}

/** Predictions in steps of one batch (smoothed classifiers make m predictions per image). */
export function* predictSteps(
  clf: ReturnType<typeof buildClassifier>,
  data: Artifact,
  n: number,
  batch: number,
  seed: number | string,
  progress?: (d: number, t: number) => void,
): Steps<Int32Array> {
  const out = new Int32Array(n);
  let b = 0;
  for (const [s, e] of chunks(n, batch)) {
    const x = imageBatch(data.tensors.testX!, range(s, e));
    try {
      out.set(clf.predict(x, rng(seed, `predict/${b++}`)), s);
    } finally {
      x.dispose();
    }
    progress?.(e, n);
    yield e / n;
  }
  return out;
}

export function correctMask(pred: Int32Array, data: Artifact): Uint8Array {
  const y = labelBatch(data.tensors.testY!, range(0, pred.length));
  return Uint8Array.from(pred, (p, i) => (p === y[i] ? 1 : 0));
}

export const mean = (m: Uint8Array) => (m.length ? m.reduce((s, v) => s + v, 0) / m.length : 0);

export async function predictOp(ctx: OpContext<'predict'>): Promise<OpResult<'predict'>> {
  const p = ctx.params;
  const data = single(ctx.inputs.data, 'data');
  const clf = buildClassifier(p.classifier, list(ctx.inputs.models), ctx.inputs.select ? single(ctx.inputs.select, 'select') : undefined);
  const n = data.tensors.testY!.shape[0]!;
  const batch = clf.smooth?.batch ?? 500;
  const t0 = performance.now();
  const pacer = new Pacer(ctx.signal);
  const tick = () => pacer.tick();
  let pred: Int32Array;
  try {
    pred = await paced(
      predictSteps(clf, data, n, batch, 'clean', (d, t) => ctx.progress({ phase: 'predict', done: d, total: t, unit: 'images' })),
      tick,
    );
  } catch (e) {
    clf.dispose();
    throw e;
  }
  const ms = performance.now() - t0;
  const correct = correctMask(pred, data);
  const summary: PredictSummary = { accuracy: mean(correct), correct: correct.reduce((s, v) => s + v, 0), n, kind: p.classifier.kind };
  if (clf.kind === 'ensemble' || (clf.kind === 'smooth' && clf.members.length > 1)) {
    summary.chosen = clf.chosen ?? null;
    const members: number[] = [];
    try {
      for (const [i, m] of clf.members.entries())
        members.push(mean(correctMask(await paced(predictSteps({ ...clf, predict: m.predict }, data, n, 500, `member/${i}`), tick), data)));
    } catch (e) {
      clf.dispose();
      throw e;
    }
    summary.members = members;
  }
  if (clf.smooth) summary.smooth = { sd: clf.smooth.sd, m: clf.smooth.m, vote: clf.smooth.vote };
  clf.dispose();
  return {
    artifact: { summary, tensors: { pred: tensor('int32', [n], pred) } },
    extra: { msPerImage: ms / n },
  };
}
