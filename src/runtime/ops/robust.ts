/**
 * The `robust` operation: a white-box attack on a classifier and its accuracy under it.
 * Models are attacked directly; ensembles with their ensemble attack (and, with `members`, each
 * member is scored on the ensemble's adversarial images and attacked alone with the same attack,
 * so the ensemble can be compared with its members); smoothed classifiers are attacked through
 * their base (plain PGD) or with EPGD, whose noise defaults to the classifier's sd, and judged by
 * their smoothed vote; with `noisy` (set by the compiler for EOT and score-based attacks) every
 * forward pass of the attack sees the base with one fresh draw of the smoothing noise. AutoAttack's robust accuracy after each of its attacks goes in the node's
 * extra metadata (`robustAfter`), not the summary.
 */
import type { RobustSummary } from '../../compiler/contract.js';
import { tensor } from '../artifact.js';
import { autoattackCounts } from '../attacks/autoattack.js';
import { norms, type AttackTarget } from '../attacks/base.js';
import { buildClassifier } from '../eval/classifier.js';
import type { OpContext, OpResult } from '../executor/types.js';
import { rng, type Rng } from '../rng.js';
import type { tf } from '../tf.js';
import { paced, Pacer } from '../pace.js';
import { attackParams, attackSteps, type AttackSpecJson } from '../training/methods.js';
import { chunks, imageBatch, labelBatch, range } from '../training/batches.js';
import { imageProgress, list, single, testCount } from './common.js';

/**
 * Each member on the ensemble's adversarial batch, and attacked alone (white-box): predictions
 * written at `at` into onEnsembleAdv[i] and whiteBox[i].
 */
async function attackMembers(
  members: AttackTarget[],
  b: { spec: AttackSpecJson; adv: tf.Tensor4D; x: tf.Tensor4D; y: Int32Array; r: Rng; at: number; part: (i: number) => (f: number) => Promise<void> },
  onEnsembleAdv: Int32Array[],
  whiteBox: Int32Array[],
): Promise<void> {
  for (const [i, m] of members.entries()) {
    onEnsembleAdv[i]!.set(m.predict(b.adv, b.r), b.at);
    const own = await paced(attackSteps(b.spec, { ...m, members: [m] }, b.x, b.y, b.r), b.part(i + 1));
    whiteBox[i]!.set(m.predict(own, b.r), b.at);
    own.dispose();
  }
}

/** AutoAttack's robust counts after each of its attacks, summed over batches (see autoattack.ts). */
class StageCounts {
  clean = 0;
  after = new Map<string, number>();
  add<T extends tf.Tensor>(adv: T): T {
    const c = autoattackCounts.get(adv);
    if (c) this.clean += c.clean;
    for (const a of c?.after ?? []) this.after.set(a.name, (this.after.get(a.name) ?? 0) + a.robust);
    return adv;
  }
  /** Accuracies over n images: clean (by the composite's own check), then after each attack. */
  extra(n: number): Record<string, unknown> {
    if (!this.after.size) return {};
    const d = Math.max(1, n);
    return { robustAfter: { clean: this.clean / d, ...Object.fromEntries([...this.after].map(([k, v]) => [k, v / d])) } };
  }
}

/** The target as a randomized classifier: its logits draw the smoothing noise on every call. */
export function noisyView(t: AttackTarget, sd: number): AttackTarget {
  return { ...t, logits: (x, r, o) => t.logits(x, r, { smoothSd: o?.smoothSd ?? sd }) };
}

/**
 * The attack as it runs on this classifier and what it sees: EPGD on a smoothed classifier takes
 * the classifier's sd unless told; with `noisy` the attack sees the base with the smoothing noise.
 */
function howToAttack(p: OpContext<'robust'>['params'], clf: ReturnType<typeof buildClassifier>): { spec: AttackSpecJson; attacked: AttackTarget } {
  const spec: AttackSpecJson =
    clf.smooth && p.attack.attack === 'epgd' && p.attack.params.sd === undefined
      ? { ...p.attack, params: { ...p.attack.params, sd: clf.smooth.sd } }
      : p.attack;
  return { spec, attacked: p.noisy && clf.smooth ? noisyView(clf, clf.smooth.sd) : clf };
}

const meanOf = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);

export async function robustOp(ctx: OpContext<'robust'>): Promise<OpResult<'robust'>> {
  const p = ctx.params;
  const data = single(ctx.inputs.data, 'data');
  const clf = buildClassifier(p.target, list(ctx.inputs.models), ctx.inputs.select ? single(ctx.inputs.select, 'select') : undefined);
  const ap = attackParams(p.attack.params) as ReturnType<typeof attackParams> & { images?: number; batch?: number; seed?: number };
  const { spec, attacked } = howToAttack(p, clf);
  const n = testCount(data, ap.images);
  const pred = new Int32Array(n);
  const dist = { linf: new Float32Array(n), l2: new Float32Array(n), l1: new Float32Array(n) };
  const k = clf.kind === 'ensemble' && p.members ? clf.members.length : 0;
  const onEnsembleAdv = Array.from({ length: k }, () => new Int32Array(n));
  const whiteBox = Array.from({ length: k }, () => new Int32Array(n));
  const t0 = performance.now();
  const pacer = new Pacer(ctx.signal);
  const progress = imageProgress(ctx, p.attack.attack, n);
  const stages = new StageCounts();
  let b = 0;
  try {
    for (const [s, e] of chunks(n, ap.batch ?? 100)) {
      await pacer.tick();
      const idx = range(s, e);
      const x = imageBatch(data.tensors.testX!, idx);
      try {
        const y = labelBatch(data.tensors.testY!, idx);
        const r = rng(ap.seed ?? 0, `robust/${b++}`);
        // The attack on the classifier, then one on each member alone: 1 + k parts of the batch.
        const part = (i: number) => (f: number) => {
          progress(s + ((i + f) / (1 + k)) * (e - s));
          return pacer.tick();
        };
        const adv = stages.add(await paced(attackSteps(spec, attacked, x, y, r), part(0)));
        try {
          pred.set(clf.predict(adv, r), s);
          const d = norms(adv, x);
          dist.linf.set(d.linf, s);
          dist.l2.set(d.l2, s);
          dist.l1.set(d.l1, s);
          await attackMembers(clf.members.slice(0, k), { spec, adv, x, y, r, at: s, part }, onEnsembleAdv, whiteBox);
        } finally {
          adv.dispose();
        }
      } finally {
        x.dispose();
      }
      progress(e, true);
    }
  } catch (err) {
    clf.dispose();
    throw err;
  }
  const ms = performance.now() - t0;
  const y = labelBatch(data.tensors.testY!, range(0, n));
  const acc = (pr: Int32Array) => pr.reduce((s, v, i) => s + (v === y[i] ? 1 : 0), 0) / Math.max(1, n);
  const correct = Uint8Array.from(pred, (v, i) => (v === y[i] ? 1 : 0));
  const summary: RobustSummary = {
    accuracy: acc(pred),
    n,
    attack: p.attack.attack,
    kind: p.target.kind,
    meanNorm: { linf: meanOf(dist.linf), l2: meanOf(dist.l2), l1: meanOf(dist.l1) },
  };
  if (k)
    summary.members = clf.members.map((_, i) => ({ input: clf.chosen?.[i] ?? i, onEnsembleAdversarial: acc(onEnsembleAdv[i]!), whiteBox: acc(whiteBox[i]!) }));
  clf.dispose();
  return {
    artifact: {
      summary,
      tensors: {
        correct: tensor('uint8', [n], correct),
        pred: tensor('int32', [n], pred),
        normLinf: tensor('float32', [n], dist.linf),
        normL2: tensor('float32', [n], dist.l2),
        normL1: tensor('float32', [n], dist.l1),
      },
    },
    extra: { imagesPerSecond: n / (ms / 1000), ...stages.extra(n) },
  };
}
