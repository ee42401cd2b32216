/**
 * The `adversarial` operation: one attack on one source model over the first `images` test
 * images, in batches, with per-batch seeded streams. Records the batch, the source's predictions
 * on it, and per-image perturbation norms.
 */
import { tensor, type Artifact } from '../artifact.js';
import { norms } from '../attacks/base.js';
import { buildClassifier } from '../eval/classifier.js';
import type { OpContext, OpResult } from '../executor/types.js';
import { rng } from '../rng.js';
import { paced, Pacer } from '../pace.js';
import { attackParams, attackSteps } from '../training/methods.js';
import { chunks, imageBatch, labelBatch, range } from '../training/batches.js';
import { imageProgress, list, single, testCount } from './common.js';
import { correctMask, mean } from './predict.js';

interface AttackOutput {
  xAdv: Float32Array;
  srcPred: Int32Array;
  clean: Int32Array;
  nl: { linf: Float32Array; l2: Float32Array; l1: Float32Array };
}

export async function adversarialOp(ctx: OpContext<'adversarial'>): Promise<OpResult<'adversarial'>> {
  const p = ctx.params;
  const data = single(ctx.inputs.data, 'data');
  const n = testCount(data, (attackParams(p.attack.params) as { images?: number }).images);
  const [, H, W, C] = data.tensors.testX!.shape as [number, number, number, number];
  const t0 = performance.now();
  const { xAdv, srcPred, clean, nl } = await attackAll(ctx, data, n);
  const ms = performance.now() - t0;
  const y = labelBatch(data.tensors.testY!, range(0, n));
  const cleanOk = correctMask(clean, data).subarray(0, n);
  let generated = 0;
  for (let i = 0; i < n; i++) if (cleanOk[i] && srcPred[i] !== y[i]) generated++;
  const avg = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
  const cleanCount = cleanOk.reduce((s, v) => s + v, 0);
  return {
    artifact: {
      summary: {
        n,
        attack: p.attack.attack,
        sourceCleanAccuracy: mean(cleanOk),
        generated,
        successRate: generated / Math.max(1, cleanCount),
        meanNorm: { linf: avg(nl.linf), l2: avg(nl.l2), l1: avg(nl.l1) },
      },
      tensors: {
        x: tensor('float32', [n, H, W, C], xAdv),
        y: tensor('int32', [n], y),
        sourcePred: tensor('int32', [n], srcPred),
        normLinf: tensor('float32', [n], nl.linf),
        normL2: tensor('float32', [n], nl.l2),
        normL1: tensor('float32', [n], nl.l1),
      },
    },
    extra: { imagesPerSecond: n / (ms / 1000) },
  };
}

/** Attacks the first n test images batch by batch, pacing between attack steps. */
async function attackAll(ctx: OpContext<'adversarial'>, data: Artifact, n: number): Promise<AttackOutput> {
  const p = ctx.params;
  const ap = attackParams(p.attack.params);
  const clf = buildClassifier({ kind: 'model' }, list(ctx.inputs.models));
  const [, H, W, C] = data.tensors.testX!.shape as [number, number, number, number];
  const per = H * W * C;
  const out: AttackOutput = {
    xAdv: new Float32Array(n * per),
    srcPred: new Int32Array(n),
    clean: new Int32Array(n),
    nl: { linf: new Float32Array(n), l2: new Float32Array(n), l1: new Float32Array(n) },
  };
  const batch = (ap as { batch?: number }).batch ?? 100;
  const seed = (ap as { seed?: number }).seed ?? 0;
  const pacer = new Pacer(ctx.signal);
  const progress = imageProgress(ctx, p.attack.attack, n);
  let b = 0;
  try {
    for (const [s, e] of chunks(n, batch)) {
      await pacer.tick();
      const idx = range(s, e);
      const x = imageBatch(data.tensors.testX!, idx);
      try {
        const y = labelBatch(data.tensors.testY!, idx);
        const r = rng(seed, `attack/${b++}`);
        out.clean.set(clf.predict(x, r), s);
        // The attack yields between its steps: progress inside the batch, and a prompt stop.
        const adv = await paced(attackSteps(p.attack, clf, x, y, r), (f) => {
          progress(s + f * (e - s));
          return pacer.tick();
        });
        try {
          out.xAdv.set(adv.dataSync() as Float32Array, s * per);
          out.srcPred.set(clf.predict(adv, r), s);
          const d = norms(adv, x);
          out.nl.linf.set(d.linf, s);
          out.nl.l2.set(d.l2, s);
          out.nl.l1.set(d.l1, s);
        } finally {
          adv.dispose();
        }
      } finally {
        x.dispose();
      }
      progress(e, true);
    }
  } finally {
    clf.dispose();
  }
  return out;
}
