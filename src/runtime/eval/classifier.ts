/**
 * Classifiers built from a DAG node's classifier spec: a model, a majority-vote ensemble (its
 * members fixed, or chosen by a TREND selection artifact), or a smoothed classifier. Each is an
 * attack target too.
 */
import type { ClassSpec } from '../../compiler/ops.js';
import { num } from '../../compiler/jsonsafe.js';
import type { Artifact } from '../artifact.js';
import { argmax, type AttackTarget } from '../attacks/base.js';
import { Model } from '../models/model.js';
import { rng, seedFrom, type Rng } from '../rng.js';
import { tf } from '../tf.js';
import { majorityVote, SmoothAccumulator, type SmoothVote } from './votes.js';

export interface Classifier extends AttackTarget {
  kind: ClassSpec['kind'];
  /** The models behind it (disposed with it). */
  models: Model[];
  /** For ensembles: indices of the members chosen among the inputs. */
  chosen?: number[];
  smooth?: { sd: number; m: number; vote: SmoothVote; average: 'probs' | 'logits'; batch?: number };
  dispose(): void;
}

export function modelTarget(m: Model): AttackTarget {
  const t: AttackTarget = {
    classes: m.spec.classes,
    members: [],
    logits: (x, r, o) => m.logits(x, { training: false, rng: r, ...(o?.smoothSd ? { smoothSd: o.smoothSd } : {}) }),
    predict: (x, r) => tf.tidy(() => argmax(m.logits(x, { training: false, rng: r }))),
  };
  t.members.push(t);
  return t;
}

/** Builds a classifier; `models` are the model artifacts in DAG order, `select` a TREND choice. */
export function buildClassifier(spec: ClassSpec, models: Artifact[], select?: Artifact): Classifier {
  if (spec.kind === 'model') {
    const m = Model.fromArtifact(models[0]!);
    return { ...modelTarget(m), kind: 'model', models: [m], dispose: () => m.dispose() };
  }
  if (spec.kind === 'ensemble') {
    let idx = models.map((_, i) => i);
    if (spec.select) {
      if (!select) throw new Error('a TREND ensemble needs its selection');
      idx = (select.summary as { chosen: number[] }).chosen;
    }
    const loaded = idx.map((i) => Model.fromArtifact(models[i]!));
    const members = loaded.map(modelTarget);
    const c: Classifier = {
      kind: 'ensemble',
      classes: members[0]!.classes,
      members,
      models: loaded,
      chosen: idx,
      // Soft ensemble logits (log of the mean probability), used only where a single loss is needed.
      logits: (x, r) => tf.tidy(() => tf.log(tf.add(tf.mean(tf.stack(members.map((m) => tf.softmax(m.logits(x, r)))), 0), 1e-12)) as tf.Tensor2D),
      predict: (x, r) => {
        const votes = members.map((m) => m.predict(x, r));
        return majorityVote(votes, ownStream(r, spec.seed, 'tie-break'));
      },
      dispose: () => loaded.forEach((m) => m.dispose()),
    };
    return c;
  }
  const base = buildClassifier(spec.base, models, select);
  const sd = num(spec.sd);
  const s = { sd, m: spec.m, vote: spec.vote, average: spec.average ?? 'probs', batch: spec.batch };
  return {
    ...base,
    kind: 'smooth',
    smooth: s,
    // Attacks on a smoothed classifier see the base classifier (plain PGD); EPGD adds the noise itself.
    predict: (x, r) => smoothPredict(base, x, s, ownStream(r, spec.seed, 'smooth-noise')),
    dispose: () => base.dispose(),
  };
}

/**
 * The stream a classifier's own randomness (ensemble tie-breaks, smoothing noise) draws from:
 * with seed 0, the operation's stream itself (as before seeds were honoured, so such artifacts
 * stay valid); otherwise a stream of that seed, still advancing per call (per batch) with the
 * operation's stream, so each batch gets fresh draws and two seeds give different ones.
 */
export function ownStream(r: Rng, seed: number, purpose: string): Rng {
  return seed ? rng(seed, `${purpose}/${seedFrom(r)}`) : r;
}

/** m noisy copies per image, run in chunks of at most ~1024 images. */
export function smoothPredict(
  base: AttackTarget,
  x: tf.Tensor4D,
  s: { sd: number; m: number; vote: SmoothVote; average: 'probs' | 'logits' },
  r: Rng,
): Int32Array {
  const n = x.shape[0];
  const acc = new SmoothAccumulator(n, base.classes);
  const reps = Math.max(1, Math.min(s.m, Math.floor(1024 / n)));
  for (let done = 0; done < s.m; done += reps) {
    const k = Math.min(reps, s.m - done);
    const logits = tf.tidy(() => {
      const xx = k === 1 ? x : (tf.tile(x, [k, 1, 1, 1]) as tf.Tensor4D);
      const sub = rng(seedFrom(r), 'smooth');
      return (s.sd > 0 ? base.logits(xx, sub, { smoothSd: s.sd }) : base.logits(xx, sub)).dataSync() as Float32Array;
    });
    for (let j = 0; j < k; j++) acc.add(logits.subarray(j * n * base.classes, (j + 1) * n * base.classes));
  }
  return acc.decide(s.vote, s.average);
}
