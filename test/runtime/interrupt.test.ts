import { beforeAll, describe, expect, it } from 'vitest';
import type { OpName } from '../../src/compiler/contract.js';
import type { Artifact } from '../../src/runtime/artifact.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import type { OpContext, Progress } from '../../src/runtime/executor/types.js';
import type { AttackParams } from '../../src/runtime/attacks/base.js';
import { ATTACK_IMPLS, ATTACK_STEPS } from '../../src/runtime/attacks/index.js';
import { buildClassifier } from '../../src/runtime/eval/classifier.js';
import { paced } from '../../src/runtime/pace.js';
import { rng } from '../../src/runtime/rng.js';
import { imageBatch, labelBatch, range } from '../../src/runtime/training/batches.js';
import { adversarialOp } from '../../src/runtime/ops/adversarial.js';
import { datasetOp } from '../../src/runtime/ops/dataset.js';
import { robustOp } from '../../src/runtime/ops/robust.js';
import { trainOp } from '../../src/runtime/ops/train.js';
import { tf } from '../../src/runtime/tf.js';
import { train, type TrainSettings } from '../../src/runtime/training/train.js';
import type { MethodJson } from '../../src/runtime/training/methods.js';
import { fakeContext, trainSettings } from '../helpers/runtime.js';

// Training and attack loops yield to the event loop while they compute: a timer (as a signal
// handler) runs during them, aborting stops them promptly mid-epoch or mid-batch, and an
// aborted computation leaves no tensor behind.

let toy: Artifact;
let model: Artifact;

const settings = trainSettings;
const trainParams = (method: MethodJson, over: Partial<TrainSettings> = {}) => ({
  arch: 'cnn',
  width: '1/2',
  input: null,
  weightBits: null,
  activationBits: null,
  noise: {},
  shape: [8, 8, 1],
  classes: 2,
  train: settings(over),
  method,
});

/** Aborts `ctl` after `ms`; resolves how long after the abort `p` settled, and how. */
async function abortAfter<T>(
  ms: number,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<{ outcome: 'resolved' | 'rejected'; error?: string; lateMs: number }> {
  const ctl = new AbortController();
  let abortedAt = Infinity;
  const timer = setTimeout(() => {
    abortedAt = performance.now();
    ctl.abort();
  }, ms);
  try {
    await run(ctl.signal);
    return { outcome: 'resolved', lateMs: performance.now() - abortedAt };
  } catch (e) {
    return { outcome: 'rejected', error: (e as Error).message, lateMs: performance.now() - abortedAt };
  } finally {
    clearTimeout(timer);
  }
}

function ctxWith<K extends OpName>(params: unknown, inputs: Record<string, Artifact | Artifact[]>, signal: AbortSignal, progress: Progress[]): OpContext<K> {
  return { ...fakeContext<K>(params, inputs), signal, progress: (p) => progress.push(p) };
}

describe('interruptible training and attacks', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
    toy = (await datasetOp(fakeContext({ name: 'toy', train: 800, test: 400, val: '1/10', seed: 0, shape: [8, 8, 1], classes: 2 }))).artifact;
    model = (await trainOp(fakeContext(trainParams({ name: 'standard' }, { epochs: 1 }), { data: toy }))).artifact;
  });

  it('training stops mid-epoch within half a second of the abort and frees every tensor', async () => {
    const before = tf.memory().numTensors;
    const progress: Progress[] = [];
    const spec = {
      arch: 'cnn',
      width: 0.5,
      shape: [8, 8, 1] as [number, number, number],
      classes: 2,
      input: null,
      weightBits: null,
      activationBits: null,
      noise: {},
      ...(toy.summary as { mean: number[]; std: number[] }),
    };
    const r = await abortAfter(400, (signal) =>
      train({ spec, settings: settings({ epochs: 40, batch: 8 }), method: { name: 'standard' }, data: toy, progress: (p) => progress.push(p), signal }),
    );
    expect(r.outcome).toBe('rejected');
    expect(r.error).toMatch(/interrupted/);
    expect(r.lateMs).toBeLessThan(500);
    expect(progress.length).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('adversarial training stops inside the batch attack and frees every tensor (the train op too)', async () => {
    const before = tf.memory().numTensors;
    // One batch per epoch whose PGD takes 400 steps: stopping at batch boundaries would take seconds.
    const method: MethodJson = {
      name: 'adversarial',
      attack: { attack: 'pgd', params: { eps: '1/10', steps: 400, step: '1/100', norm: 'linf', random_start: true } },
      mix: '1/2',
    };
    const r = await abortAfter(400, (signal) => trainOp(ctxWith(trainParams(method, { epochs: 3, batch: 720 }), { data: toy, from: model }, signal, [])));
    expect(r.outcome).toBe('rejected');
    expect(r.error).toMatch(/interrupted/);
    expect(r.lateMs).toBeLessThan(500);
    expect(tf.memory().numTensors).toBe(before);
  });

  const slowPgd = { attack: 'pgd', params: { eps: '1/10', steps: 1000, step: '1/100', norm: 'linf', random_start: true, images: 400, batch: 400, seed: 0 } };

  it('an adversarial node reports progress inside a batch, stops within half a second and frees every tensor', async () => {
    const before = tf.memory().numTensors;
    const progress: Progress[] = [];
    const r = await abortAfter(1500, (signal) => adversarialOp(ctxWith({ attack: slowPgd }, { data: toy, models: [model] }, signal, progress)));
    expect(r.outcome).toBe('rejected');
    expect(r.error).toMatch(/interrupted/);
    expect(r.lateMs).toBeLessThan(500);
    expect(tf.memory().numTensors).toBe(before);
    // Inside the one 400-image batch: fractional progress with a rate and an ETA.
    expect(progress.length).toBeGreaterThanOrEqual(3);
    const last = progress.at(-1)!;
    expect(last.unit).toBe('images');
    expect(last.done).toBeGreaterThan(0);
    expect(last.done).toBeLessThan(400);
    expect(last.rate).toBeGreaterThan(0);
    expect(last.eta).toBeGreaterThan(0);
  });

  it('a robust node against an ensemble and its members stops the same way', async () => {
    const before = tf.memory().numTensors;
    const attack = { attack: 'agd', params: { eps: '1/10', steps: 600, step: '1/100', random_start: true, images: 400, batch: 400, seed: 0 } };
    const r = await abortAfter(400, (signal) =>
      robustOp(
        ctxWith(
          { attack, target: { kind: 'ensemble', vote: 'majority', seed: 0, n: 2, select: false }, members: true },
          { data: toy, models: [model, model] },
          signal,
          [],
        ),
      ),
    );
    expect(r.outcome).toBe('rejected');
    expect(r.error).toMatch(/interrupted/);
    expect(r.lateMs).toBeLessThan(500);
    expect(tf.memory().numTensors).toBe(before);
  });

  const attacks: Array<[string, AttackParams]> = [
    ['pgd', { eps: 0.1, steps: 6, step: 0.02, norm: 'linf', random_start: true, restarts: 2 }],
    ['pgd', { eps: 3, steps: 6, step: 0.75, norm: 'l1', random_start: true, topk: 0.05 }],
    ['epgd', { eps: 0.1, steps: 6, step: 0.025, m: 2, sd: 0.2, random_start: true }],
    ['cw', { c: 1, kappa: 0, steps: 4, search: 2, lr: 0.05 }],
    ['deepfool', { overshoot: 0.02, steps: 6, eps: 0.1 }],
    ['agd', { eps: 0.1, steps: 6, step: 0.02, random_start: true }],
    ['empir', { eps: 0.1, steps: 6, step: 0.02, random_start: false }],
  ];
  for (const [name, p] of attacks) {
    it(`${name}${p.norm ? ` (${p.norm})` : ''} in steps: stopped after two steps it frees every tensor; run to the end it equals the synchronous attack`, async () => {
      const clf = buildClassifier(
        name === 'agd' || name === 'empir' ? { kind: 'ensemble', vote: 'majority', seed: 0, n: 2, select: false } : { kind: 'model' },
        [model, model],
      );
      const x = imageBatch(toy.tensors.testX!, range(0, 40));
      const y = labelBatch(toy.tensors.testY!, range(0, 40));
      const before = tf.memory().numTensors;
      const g = ATTACK_STEPS[name]!(clf, x, y, p, rng(3));
      const fractions = [g.next(), g.next()].map((s) => (s.done ? 1 : s.value));
      expect(fractions[0]).toBeGreaterThan(0);
      expect(fractions[1]).toBeGreaterThan(fractions[0]!);
      expect(fractions[1]).toBeLessThan(1);
      g.return(undefined as never);
      expect(tf.memory().numTensors).toBe(before);
      const seen: number[] = [];
      const stepped = await paced(ATTACK_STEPS[name]!(clf, x, y, p, rng(3)), (f) => void seen.push(f));
      const plain = ATTACK_IMPLS[name]!(clf, x, y, p, rng(3));
      expect(Array.from(stepped.dataSync())).toEqual(Array.from(plain.dataSync()));
      expect(seen.length).toBeGreaterThan(2);
      expect(seen.every((f, i) => f > 0 && f <= 1 && (i === 0 || f >= seen[i - 1]!))).toBe(true);
      stepped.dispose();
      plain.dispose();
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      clf.dispose();
    });
  }
});
