/**
 * The training loop: seeded shuffles, minibatch steps of the chosen method, learning rate /10 at
 * 60% and 80% of the epochs, validation accuracy after every epoch, and the best-validation
 * weights kept (as the TREND paper). RAMP's gradient projection runs once per epoch.
 */
import type { TrainSettingsParams } from '../../compiler/contract.js';
import { num } from '../../compiler/jsonsafe.js';
import type { Artifact } from '../artifact.js';
import { StepError, type Progress } from '../executor/types.js';
import { oneHot } from '../attacks/base.js';
import { Model, type ModelSpec } from '../models/model.js';
import type { ForwardCtx } from '../models/net.js';
import { paced, Pacer, runSteps, type Steps } from '../pace.js';
import { permutation, rng, type Rng } from '../rng.js';
import { tf } from '../tf.js';
import { chunks, imageBatch, labelBatch } from './batches.js';
import { prepareBatchSteps, type BatchWork, type MethodJson, type MethodState } from './methods.js';
import { Adam, SGD, type Optimizer } from './optimizer.js';
import { gradientProjection } from './projection.js';

/** The training settings of a train node (src/compiler/contract.ts). */
export type TrainSettings = TrainSettingsParams;

export interface EpochLog {
  epoch: number;
  lr: number;
  loss: number;
  valAcc: number;
  ms: number;
}

export interface TrainJob {
  spec: ModelSpec;
  settings: TrainSettings;
  method: MethodJson;
  data: Artifact;
  init?: Model;
  progress: (p: Progress) => void;
  signal?: AbortSignal;
  /** Yields to the event loop and stops on `signal` (one made from `signal` if not given). */
  pacer?: Pacer;
}

/** Training progress events at most this often (and at the end of every epoch). */
const PROGRESS_MS = 100;

export function lrAt(base: number, epoch: number, epochs: number, schedule: 'step' | 'constant'): number {
  if (schedule === 'constant') return base;
  if (epoch >= 0.8 * epochs) return base / 100;
  if (epoch >= 0.6 * epochs) return base / 10;
  return base;
}

export function accuracy(model: Model, x: Artifact['tensors'][string], y: Artifact['tensors'][string], seed: number, batch = 500): number {
  return runSteps(accuracySteps(model, x, y, seed, batch));
}

/** Accuracy in steps of one batch (pace it with a Pacer so that a large test set can be interrupted). */
export function* accuracySteps(model: Model, x: Artifact['tensors'][string], y: Artifact['tensors'][string], seed: number, batch = 500): Steps<number> {
  const n = y.shape[0]!;
  if (n === 0) return 0;
  let correct = 0;
  const r = rng(seed, 'eval');
  for (const [s, e] of chunks(n, batch)) {
    const idx = Int32Array.from({ length: e - s }, (_, i) => s + i);
    const labels = labelBatch(y, idx);
    const pred = tf.tidy(() => tf.argMax(model.logits(imageBatch(x, idx), { training: false, rng: r }), 1).dataSync() as Int32Array);
    for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) correct++;
    yield e / n;
  }
  return correct / n;
}

export async function train(job: TrainJob): Promise<{ model: Model; history: EpochLog[]; bestEpoch: number; bestVal: number }> {
  const s = job.settings;
  const pacer = job.pacer ?? new Pacer(job.signal);
  pacer.check();
  const model = Model.create(job.spec, s.seed);
  const opt: Optimizer = s.optimizer === 'adam' ? new Adam() : new SGD(num(s.momentum), num(s.wd));
  // Everything the job allocates is freed if it stops early (interrupted, diverged, failed).
  try {
    return await trainModel(job, model, opt, pacer);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    opt.dispose();
  }
}

interface BatchEnv {
  job: TrainJob;
  model: Model;
  opt: Optimizer;
  method: MethodJson;
  state: MethodState;
  r: Rng;
  lr: number;
  between: () => Promise<void>;
}

/** One minibatch: attack it if the method says so, then one optimizer step; returns the loss. */
async function trainBatch(env: BatchEnv, idx: Int32Array | Uint32Array, where: string): Promise<number> {
  const { job, model, opt, lr } = env;
  const t = job.data.tensors;
  const x = imageBatch(t.trainX!, idx);
  const y = labelBatch(t.trainY!, idx);
  const yh = oneHot(y, job.spec.classes);
  let work: BatchWork | undefined;
  try {
    // Adversarial methods attack the batch first: yield and check for interruption between steps.
    work = await paced(prepareBatchSteps(env.method, model, x, y, yh, env.r, env.state), env.between);
    const w = work;
    const ctx: ForwardCtx = { training: true, rng: env.r, updates: [] };
    const vars = model.trainable();
    const { value, grads } = tf.variableGrads(() => w.loss((z) => model.logits(z, ctx)), vars);
    try {
      const loss = value.dataSync()[0]!;
      if (!Number.isFinite(loss)) {
        ctx.updates!.forEach((u) => (u.mean.dispose(), u.variance.dispose()));
        throw new StepError(`training diverged: the loss is ${loss} at ${where} (lower lr=, or check the data)`);
      }
      opt.step(
        vars,
        vars.map((v) => grads[v.name]!),
        lr,
      );
      model.applyRunningStats(ctx.updates!);
      return loss;
    } finally {
      Object.values(grads).forEach((g) => g.dispose());
      value.dispose();
    }
  } finally {
    [x, yh, ...(work?.held ?? [])].forEach((z) => z.dispose());
  }
}

/**
 * RAMP's gradient projection: one adversarial and one clean epoch from the same start, combined
 * (the optimizer continues from the adversarial epoch's state). Returns the adversarial loss.
 */
async function gradientProjectionEpoch(
  model: Model,
  opt: Optimizer,
  method: MethodJson,
  beta: number,
  epoch: (m: MethodJson, phase: string) => Promise<number>,
): Promise<number> {
  const old = model.snapshot();
  const optOld = opt.snapshot();
  const loss = await epoch(method, 'adversarial');
  const adv = model.snapshot();
  const optAdv = opt.snapshot();
  model.restore(old);
  opt.restore(optOld);
  await epoch({ name: 'standard' }, 'clean');
  const nat = model.snapshot();
  const trainable = new Set(model.decls.filter((d) => d.trainable).map((d) => d.name));
  model.restore(gradientProjection(old, adv, nat, beta, trainable));
  opt.restore(optAdv);
  return loss;
}

async function trainModel(
  job: TrainJob,
  model: Model,
  opt: Optimizer,
  pacer: Pacer,
): Promise<{ model: Model; history: EpochLog[]; bestEpoch: number; bestVal: number }> {
  const s = job.settings;
  const t = job.data.tensors;
  if (job.init) model.loadFrom(job.init);
  const state: MethodState = { robust: [] };
  const n = t.trainY!.shape[0]!;
  const history: EpochLog[] = [];
  let best = { val: -1, epoch: -1, weights: model.snapshot() };
  const baseLr = num(s.lr);
  // Progress: images done over the node (both passes of a RAMP gradient-projection epoch), for
  // the rate and the ETA; events at most every PROGRESS_MS (and at the end of every epoch).
  const gp = job.method.name === 'ramp' && job.method.gp;
  const totalImages = s.epochs * n * (gp ? 2 : 1);
  let imagesDone = 0;
  let trainMs = 0;
  let lastEmit = -Infinity;
  const report = (p: Progress, force = false) => {
    const now = performance.now();
    if (!force && now - lastEmit < PROGRESS_MS) return;
    lastEmit = now;
    const rate = trainMs > 0 ? imagesDone / (trainMs / 1000) : 0;
    job.progress({ ...p, ...(rate > 0 ? { rate: Math.round(rate * 10) / 10, eta: Math.round(((totalImages - imagesDone) / rate) * 10) / 10 } : {}) });
  };

  const runEpoch = async (method: MethodJson, epoch: number, lr: number, phase: string): Promise<number> => {
    const order = permutation(n, rng(s.seed, `shuffle/${epoch}/${phase}`));
    const r = rng(s.seed, `train/${epoch}/${phase}`);
    let lossSum = 0;
    let done = 0;
    let t0 = performance.now();
    const between = async () => {
      trainMs += performance.now() - t0;
      await pacer.tick();
      t0 = performance.now();
    };
    for (const [a, b] of chunks(n, s.batch)) {
      await between();
      const idx = order.subarray(a, b);
      const loss = await trainBatch({ job, model, opt, method, state, r, lr, between }, idx, `epoch ${epoch + 1}, batch ${done + 1}`);
      lossSum += loss * idx.length;
      done++;
      imagesDone += idx.length;
      trainMs += performance.now() - t0;
      t0 = performance.now();
      report({ phase, done: b, total: n, unit: 'images', metrics: { loss: lossSum / Math.min(n, done * s.batch), lr } });
    }
    return lossSum / n;
  };

  for (let e = 0; e < s.epochs; e++) {
    const t0 = performance.now();
    const lr = lrAt(baseLr, e, s.epochs, s.schedule);
    const phase = `epoch ${e + 1}/${s.epochs}`;
    let loss: number;
    if (job.method.name === 'ramp' && job.method.gp) {
      const { beta } = job.method;
      loss = await gradientProjectionEpoch(model, opt, job.method, num(beta), (m, p) => runEpoch(m, e, lr, `${phase} ${p}`));
    } else {
      loss = await runEpoch(job.method, e, lr, phase);
    }
    const valAcc = await paced(accuracySteps(model, t.valX!, t.valY!, s.seed + e), () => pacer.tick());
    history.push({ epoch: e + 1, lr, loss, valAcc, ms: Math.round(performance.now() - t0) });
    report({ phase, done: n, total: n, unit: 'images', metrics: { loss, valAcc } }, true);
    if (valAcc > best.val) best = { val: valAcc, epoch: e + 1, weights: model.snapshot() };
  }
  model.restore(best.weights);
  return { model, history, bestEpoch: best.epoch, bestVal: best.val };
}
