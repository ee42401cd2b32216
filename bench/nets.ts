/**
 * The papers' networks at CPU widths on MNIST-sized input (28x28x1, 10 classes), batch 64, wasm:
 * resnet18 at width 1/16 and vgg11bn at width 1/8, each with
 *   train       one SGD step (momentum 0.9, weight decay 5e-4, batch norm in training mode with
 *               its running statistics updated, as src/runtime/training/train.ts does)
 *   input_grad  the gradient of the summed cross-entropy with respect to the input, evaluation
 *               mode (what an attack step computes)
 * and one PGD-10 transfer batch: l_inf PGD (eps 0.3, step 0.01, random start) on the resnet18,
 * then the adversarial batch classified by the vgg11bn. Images/s and GFLOP/s (bench/flops.ts has
 * the counting convention); each figure is the best of several repetitions after warm-up.
 * scripts/bench/torch_nets.py times the same things in PyTorch. With --profile, one training step
 * of each network is profiled kernel by kernel and a table goes to stderr.
 */
import { modelTarget } from '../src/runtime/eval/classifier.js';
import { lossGrad, oneHot } from '../src/runtime/attacks/base.js';
import { selectBackend } from '../src/runtime/backends/select.js';
import { Model, type ModelSpec } from '../src/runtime/models/model.js';
import type { ForwardCtx } from '../src/runtime/models/net.js';
import { rng } from '../src/runtime/rng.js';
import { tf } from '../src/runtime/tf.js';
import { ce, runAttack } from '../src/runtime/training/methods.js';
import { SGD } from '../src/runtime/training/optimizer.js';
import { bestMs, type Figure } from './figures.js';
import { netFlops, type NetFlops } from './flops.js';

const B = 64;

/** The benchmarked networks: figure name, zoo architecture, width multiplier. */
export const NETS = [
  { id: 'resnet18_w16', arch: 'resnet18', width: 1 / 16 },
  { id: 'vgg11bn_w8', arch: 'vgg11bn', width: 1 / 8 },
] as const;

export const PGD10 = { attack: 'pgd', params: { eps: '3/10', steps: 10, step: '1/100', norm: 'linf', random_start: true } } as const;

export function netSpec(arch: string, width: number): ModelSpec {
  return { arch, width, shape: [28, 28, 1], classes: 10, input: null, weightBits: null, activationBits: null, noise: {}, mean: [0.13], std: [0.31] };
}

/** One SGD step on the batch, batch-norm running statistics updated (train.ts's trainBatch). */
function trainStep(model: Model, opt: SGD, x: tf.Tensor4D, yh: tf.Tensor2D): () => void {
  const vars = model.trainable();
  return () => {
    const ctx: ForwardCtx = { training: true, updates: [] };
    const { value, grads } = tf.variableGrads(() => ce(model.logits(x, ctx), yh), vars);
    opt.step(
      vars,
      vars.map((v) => grads[v.name]!),
      0.01,
    );
    model.applyRunningStats(ctx.updates!);
    value.dataSync();
    value.dispose();
    Object.values(grads).forEach((g) => g.dispose());
  };
}

function inputGradStep(model: Model, x: tf.Tensor4D, yh: tf.Tensor2D): () => void {
  const t = modelTarget(model);
  return () => tf.tidy(() => void lossGrad(t, x, yh, rng(0)).dataSync());
}

const rate = (ms: number) => Math.round((B / ms) * 1000);
const gflops = (flops: number, ms: number) => +((flops * B) / ms / 1e6).toFixed(1);

function netFigures(id: string, f: NetFlops, params: number, trainMs: number, gradMs: number, note: string): Figure[] {
  return [
    { name: `nets.${id}.params`, value: params, unit: 'params', note },
    { name: `nets.${id}.train.images_per_s`, value: rate(trainMs), unit: 'images/s' },
    { name: `nets.${id}.train.gflops`, value: gflops(f.train, trainMs), unit: 'GFLOP/s' },
    { name: `nets.${id}.input_grad.images_per_s`, value: rate(gradMs), unit: 'images/s' },
    { name: `nets.${id}.input_grad.gflops`, value: gflops(f.inputGrad, gradMs), unit: 'GFLOP/s' },
  ];
}

/** Kernel name -> calls and summed ms in one profiled call of f (op scopes, which nest kernels, left out). */
async function kernelTimes(f: () => void): Promise<{ wall: number; by: Map<string, { calls: number; ms: number }> }> {
  const t = performance.now();
  const info = await tf.profile(() => f());
  const wall = performance.now() - t;
  const by = new Map<string, { calls: number; ms: number }>();
  for (const k of info.kernels) {
    if (!tf.getKernel(k.name, tf.getBackend())) continue; // e.g. logSoftmax__op: a scope around kernels also listed
    const e = by.get(k.name) ?? { calls: 0, ms: 0 };
    e.calls++;
    e.ms += k.kernelTimeMs as number;
    by.set(k.name, e);
  }
  return { wall, by };
}

/**
 * Times each TF.js kernel during a training step; the table goes to stderr. Each kernel's time is
 * the least over `steps` profiled steps, so a pause of the process (another job on the cores, a
 * garbage collection) inflates no single kernel's row.
 */
async function profileStep(id: string, step: () => void, steps: number): Promise<void> {
  step();
  const best = new Map<string, { calls: number; ms: number }>();
  let wall = Infinity;
  for (let i = 0; i < steps; i++) {
    const r = await kernelTimes(step);
    wall = Math.min(wall, r.wall);
    for (const [name, e] of r.by) if (!best.has(name) || e.ms < best.get(name)!.ms) best.set(name, e);
  }
  const total = [...best.values()].reduce((s, e) => s + e.ms, 0);
  const lines = [`\n${id}: one training step, batch ${B}: ${wall.toFixed(1)} ms wall (profiled; least of ${steps}), ${total.toFixed(1)} ms in kernels`];
  lines.push(`${'kernel'.padEnd(24)} ${'calls'.padStart(6)} ${'total ms'.padStart(10)} ${'share'.padStart(7)}`);
  for (const [name, e] of [...best].sort((a, b) => b[1].ms - a[1].ms)) {
    lines.push(`${name.padEnd(24)} ${String(e.calls).padStart(6)} ${e.ms.toFixed(2).padStart(10)} ${((100 * e.ms) / total).toFixed(1).padStart(6)}%`);
  }
  process.stderr.write(lines.join('\n') + '\n');
}

/** PGD-10 on the source, then the adversarial batch classified by the target: ms per batch. */
function transferMs(src: Model, dst: Model, x: tf.Tensor4D, y: Int32Array, reps: number): number {
  const s = modelTarget(src);
  const d = modelTarget(dst);
  let r = 0;
  const once = () => {
    const adv = runAttack(PGD10, s, x, y, rng(r++));
    d.predict(adv, rng(0));
    adv.dispose();
  };
  once();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    once();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

export async function benchNets(quick: boolean, profile = false): Promise<Figure[]> {
  const choice = await selectBackend('wasm');
  const x = tf.randomUniform([B, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  const y = Int32Array.from({ length: B }, (_, i) => i % 10);
  const yh = oneHot(y, 10);
  const reps = quick ? 3 : 7;
  const inner = quick ? 2 : 5;
  const out: Figure[] = [];
  const models: Model[] = [];
  const flops: NetFlops[] = [];
  for (const n of NETS) {
    const model = Model.create(netSpec(n.arch, n.width), 1);
    const f = await netFlops(model);
    const opt = new SGD(0.9, 5e-4);
    const train = trainStep(model, opt, x, yh);
    const trainMs = bestMs(train, reps, inner);
    const gradMs = bestMs(inputGradStep(model, x, yh), reps, inner);
    if (profile) await profileStep(n.id, train, quick ? 3 : 7);
    opt.dispose();
    out.push(...netFigures(n.id, f, model.paramCount(), trainMs, gradMs, `${n.arch} width ${n.width}, batch ${B}, ${choice.description}`));
    models.push(model);
    flops.push(f);
  }
  const ms = transferMs(models[0]!, models[1]!, x, y, quick ? 2 : 5);
  const id = `nets.pgd10_transfer.${NETS[0].id}_to_${NETS[1].id}`;
  out.push(
    { name: `${id}.images_per_s`, value: rate(ms), unit: 'images/s', note: 'PGD-10 on the source, then the target classifies the batch' },
    { name: `${id}.gflops`, value: gflops(10 * flops[0]!.inputGrad + flops[1]!.forward, ms), unit: 'GFLOP/s' },
  );
  models.forEach((m) => m.dispose());
  [x, yh].forEach((t) => t.dispose());
  return out;
}
