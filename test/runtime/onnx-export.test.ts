// `trendc export --format onnx` and model.json, checked against trend itself: every zoo
// architecture, plain and quantised, on MNIST test images (and on 3-channel 15x15 images made
// from them, where NHWC and NCHW orders differ and "same" padding is uneven), exported and run
// in ONNX Runtime (onnxruntime-web's wasm build), and rebuilt from model.json + model.safetensors
// by an independent float64 forward pass (test/helpers/model-json.ts). Logits within 1e-4
// (relative to the logit where it is above 1), predictions identical.
//
// The models are random (seeded) rather than trained, so the test stays fast: conv and dense
// weights at He scale (PyTorch's default times sqrt 6) so that signals neither vanish nor blow up
// through 30 layers, biases random, batch-norm running statistics set from one batch (as a trained
// model's are) and then perturbed. One model is trained by the train operation, to cover that path.
import * as ort from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Artifact, TensorData } from '../../src/runtime/artifact.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { encodeSafetensors } from '../../src/runtime/export.js';
import { Model, type ModelSpec } from '../../src/runtime/models/model.js';
import { runningStats, type BnBatchStats } from '../../src/runtime/models/net.js';
import { describeNetwork, samePads } from '../../src/runtime/onnx/network.js';
import { checkModelExport, modelFiles } from '../../src/runtime/onnx/export-model.js';
import { trainOp } from '../../src/runtime/ops/train.js';
import { rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { forwardFromModelJson, parseSafetensors } from '../helpers/model-json.js';
import { fakeContext, mnistSubset, trainSettings } from '../helpers/runtime.js';

const N = 24;
const KEY = 'f'.repeat(32);

interface Images {
  shape: [number, number, number];
  /** NHWC floats in [0, 1] (pixel / 255). */
  x: Float32Array;
  mean: number[];
  std: number[];
}

let mnist: Artifact;
let gray: Images;
let colour: Images;
let calib: { gray: Float32Array; colour: Float32Array };

/** Images i0..i0+n of a split as floats, as trend's batches make them. */
function floats(t: TensorData, i0: number, n: number): Float32Array {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return Float32Array.from((t.data as Uint8Array).subarray(i0 * per, (i0 + n) * per), (v) => v / 255);
}

/** 15x15x3 images from 28x28 digits: the digit, its inverse shifted by a pixel, and a blurred copy. */
function colourise(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n * 15 * 15 * 3);
  const px = (i: number, y: number, xx: number) => (y >= 0 && y < 28 && xx >= 0 && xx < 28 ? x[i * 784 + y * 28 + xx]! : 0);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < 15; y++)
      for (let xx = 0; xx < 15; xx++) {
        const [sy, sx] = [2 * y - 1, 2 * xx - 1];
        const o = ((i * 15 + y) * 15 + xx) * 3;
        out[o] = px(i, sy, sx);
        out[o + 1] = Math.round(255 * (1 - px(i, sy + 1, sx + 1))) / 255;
        out[o + 2] = Math.round((255 * (px(i, sy, sx) + px(i, sy + 1, sx) + px(i, sy, sx + 1) + px(i, sy + 1, sx + 1))) / 4) / 255;
      }
  return out;
}

function stats(x: Float32Array, c: number): { mean: number[]; std: number[] } {
  const mean = Array.from({ length: c }, (_, ch) => x.filter((_, i) => i % c === ch).reduce((a, b) => a + b, 0) / (x.length / c));
  const std = mean.map((m, ch) => Math.sqrt(x.filter((_, i) => i % c === ch).reduce((a, b) => a + (b - m) ** 2, 0) / (x.length / c)));
  return { mean, std };
}

function spec(arch: string, img: Images, over: Partial<ModelSpec> = {}): ModelSpec {
  return {
    arch,
    width: 1 / 16,
    shape: img.shape,
    classes: 10,
    input: null,
    weightBits: null,
    activationBits: null,
    noise: {},
    mean: img.mean,
    std: img.std,
    ...over,
  };
}

/** A seeded random model with realistic scales (see the top of the file); its parameters by name (no "p/"). */
function randomModel(s: ModelSpec, seed: number, calibX: Float32Array): Record<string, TensorData> {
  const noiseFree = { ...s, noise: {} };
  const m = Model.create(noiseFree, seed);
  const r = rng(seed, 'onnx-test');
  const u = (lo: number, hi: number) => lo + (hi - lo) * r();
  for (const [name, v] of m.vars) {
    const kind = name.split('/').pop();
    const d = v.dataSync() as Float32Array;
    const nd = kind === 'w' ? d.map((x) => x * Math.sqrt(6)) : kind === 'b' ? d.map(() => u(-0.02, 0.02)) : undefined;
    if (nd) v.assign(tf.tensor(nd, v.shape));
  }
  // Running statistics of one batch, as trained on it (the update inverted: new = 0.9 old + 0.1 batch).
  const x = tf.tensor4d(calibX, [calibX.length / s.shape.reduce((a, b) => a * b, 1), ...s.shape]);
  const stats: BnBatchStats[] = [];
  tf.tidy(() => m.logits(x, { training: true, updates: stats }));
  for (const up of runningStats(m.vars, stats)) {
    const old = m.vars.get(up.name)!;
    const batch = tf.tidy(() => tf.div(tf.sub(up.value, tf.mul(old, 0.9)), 0.1));
    old.assign(batch);
    batch.dispose();
    up.value.dispose();
  }
  x.dispose();
  for (const [name, v] of m.vars) {
    const kind = name.split('/').pop();
    const d = v.dataSync() as Float32Array;
    if (kind === 'gamma')
      v.assign(
        tf.tensor(
          d.map(() => u(0.7, 1.3)),
          v.shape,
        ),
      );
    if (kind === 'beta')
      v.assign(
        tf.tensor(
          d.map(() => u(-0.2, 0.2)),
          v.shape,
        ),
      );
    if (kind === 'mean')
      v.assign(
        tf.tensor(
          d.map((x) => x + u(-0.1, 0.1)),
          v.shape,
        ),
      );
    if (kind === 'var')
      v.assign(
        tf.tensor(
          d.map((x) => x * u(0.8, 1.25)),
          v.shape,
        ),
      );
  }
  // Hidden layers with a bias (the networks without batch norm) normalised on the batch, so
  // that the deep ones (vgg19) do not map every image to nearly the same point.
  if (!m.decls.some((d) => d.name.endsWith('/gamma'))) {
    const P = Object.fromEntries([...m.vars].map(([k, v]) => [k, { shape: v.shape, v: (v.dataSync() as Float32Array).slice() }]));
    forwardFromModelJson(describeNetwork(noiseFree) as never, P, calibX, calibX.length / s.shape.reduce((a, b) => a * b, 1), true);
    for (const [k, v] of m.vars) v.assign(tf.tensor(P[k]!.v, v.shape));
  }
  // The output layer rescaled and re-centred so that each logit has mean 0 and sd 1 over the batch:
  // deep random networks map all images to nearly the same logits, which would make the
  // predictions a tie-break between near-equal logits rather than a check.
  const logits = tf.tidy(() => m.logits(tf.tensor4d(calibX, [calibX.length / s.shape.reduce((a, b) => a * b, 1), ...s.shape]), { training: false }));
  const { mean, variance } = tf.moments(logits, 0);
  const sd = Math.sqrt(Math.max(...(variance.dataSync() as Float32Array)));
  expect(sd, 'the features vary over images').toBeGreaterThan(1e-4);
  const [w, b] = [m.vars.get('out/w')!, m.vars.get('out/b')!];
  tf.tidy(() => {
    w.assign(tf.div(w, sd));
    b.assign(tf.div(tf.sub(b, mean), sd));
  });
  tf.dispose([logits, mean, variance]);
  const t = Object.fromEntries(Object.entries(m.tensors()).map(([k, v]) => [k.slice(2), v]));
  m.dispose();
  // Learned noise scales the noise-free model lacks.
  if (s.noise.weight?.learned || s.noise.input?.learned) {
    const withNoise = Model.create(s, seed);
    for (const d of withNoise.decls) if (d.name.startsWith('noise/')) t[d.name] = withNoise.tensors()[`p/${d.name}`]!;
    withNoise.dispose();
  }
  return t;
}

/** trend's own logits: the model rebuilt from the parameters (without its noise), on one batch. */
function trendLogits(s: ModelSpec, params: Record<string, TensorData>, img: Images): Float32Array {
  const tensors = Object.fromEntries(Object.entries(params).map(([k, v]) => [`p/${k}`, v]));
  const m = Model.fromArtifact({ summary: { spec: { ...s, noise: {} } }, tensors } as unknown as Artifact);
  const out = tf.tidy(() => m.logits(tf.tensor4d(img.x, [N, ...img.shape]), { training: false }).dataSync() as Float32Array);
  m.dispose();
  return out;
}

async function onnxLogits(bytes: Uint8Array, img: Images): Promise<Float32Array> {
  const [H, W, C] = img.shape;
  const nchw = new Float32Array(img.x.length);
  for (let n = 0; n < N; n++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) nchw[((n * C + c) * H + y) * W + x] = img.x[((n * H + y) * W + x) * C + c]!;
  const session = await ort.InferenceSession.create(bytes);
  const r = await session.run({ input: new ort.Tensor('float32', nchw, [N, C, H, W]) });
  await session.release();
  return r.logits!.data as Float32Array;
}

const argmax = (v: ArrayLike<number>, i: number) => {
  let b = 0;
  for (let j = 1; j < 10; j++) if (v[i * 10 + j]! > v[i * 10 + b]!) b = j;
  return b;
};

/** Logits within 1e-4 (relative above 1) and the same prediction for every image; returns the worst difference. */
function expectSame(ours: Float32Array, theirs: ArrayLike<number>, what: string): number {
  expect(theirs.length, what).toBe(ours.length);
  let worst = 0;
  for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!) / Math.max(1, Math.abs(ours[i]!)));
  expect(worst, what).toBeLessThan(1e-4);
  expect(
    Array.from({ length: N }, (_, i) => argmax(theirs, i)),
    what,
  ).toEqual(Array.from({ length: N }, (_, i) => argmax(ours, i)));
  return worst;
}

/** The check is only worth something if the network's outputs depend on the image. */
function expectInformative(ours: Float32Array, what: string): void {
  const preds = new Set(Array.from({ length: N }, (_, i) => argmax(ours, i)));
  expect(preds.size, `${what}: distinct predictions`).toBeGreaterThanOrEqual(2);
  const col = Array.from({ length: N }, (_, i) => ours[i * 10]!);
  const mean = col.reduce((a, b) => a + b, 0) / N;
  expect(Math.sqrt(col.reduce((a, b) => a + (b - mean) ** 2, 0) / N), `${what}: spread of logit 0 over images`).toBeGreaterThan(0.01);
}

/** Lets the test worker answer its runner between long synchronous stretches. */
const breathe = () => new Promise((r) => setImmediate(r));

async function exportAndCompare(s: ModelSpec, params: Record<string, TensorData>, img: Images, what: string, withoutNoise = false): Promise<void> {
  const t = [performance.now()];
  const ours = trendLogits(s, params, img);
  expectInformative(ours, what);
  const files = await modelFiles({ spec: s, method: 'test' }, params, KEY, { format: 'onnx', ...(withoutNoise ? { withoutNoise } : {}) });
  t.push(performance.now());
  const worst = [expectSame(ours, await onnxLogits(files.onnx!, img), `${what}: ONNX Runtime`)];
  t.push(performance.now());
  await breathe();
  // model.json as text, the weights as the safetensors file export writes.
  const json = JSON.parse(JSON.stringify(files.json)) as { network: Parameters<typeof forwardFromModelJson>[0] };
  const st = parseSafetensors(encodeSafetensors(params, { format: 'trend' }));
  worst.push(expectSame(ours, forwardFromModelJson(json.network, st, img.x, N), `${what}: model.json + safetensors`));
  t.push(performance.now());
  if (process.env.TREND_TEST_VERBOSE)
    console.log(`${what}: ms ${t.slice(1).map((x, i) => Math.round(x - t[i]!))}; worst ${worst.map((w) => w.toExponential(1))}`);
  await breathe();
}

const ARCHS = ['mlp', 'cnn', 'resnet18', 'resnet34', 'vgg11', 'vgg11bn', 'vgg19', 'vgg19bn'];

describe('ONNX export of every zoo architecture', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
    ort.env.wasm.numThreads = 1;
    mnist = await mnistSubset(300, 100);
    const g = floats(mnist.tensors.testX!, 0, N);
    const gc = floats(mnist.tensors.trainX!, 0, 64);
    gray = { shape: [28, 28, 1], x: g, ...stats(gc, 1) };
    const cc = colourise(gc, 64);
    colour = { shape: [15, 15, 3], x: colourise(g, N), ...stats(cc, 3) };
    calib = { gray: gc, colour: cc };
  }, 120_000);

  for (const arch of ARCHS)
    it(`${arch}: MNIST 28x28x1 and 15x15x3`, { timeout: 60_000 }, async () => {
      for (const [img, cx] of [
        [gray, calib.gray],
        [colour, calib.colour],
      ] as const) {
        const s = spec(arch, img);
        await exportAndCompare(s, randomModel(s, 1, cx), img, `${arch} ${img.shape.join('x')}`);
      }
    });

  const QUANT: Array<[string, string, Partial<ModelSpec>, 'gray' | 'colour']> = [
    ['input 1-bit, batch statistics', 'cnn', { input: { kind: 'bits', bits: 1, stats: 'batch' } }, 'gray'],
    ['input 2-bit, per-image statistics', 'resnet18', { input: { kind: 'bits', bits: 2, stats: 'image' } }, 'gray'],
    ['input 2-bit, batch statistics, 3 channels', 'vgg11bn', { input: { kind: 'bits', bits: 2, stats: 'batch' } }, 'colour'],
    ['halftone input', 'cnn', { input: { kind: 'halftone', bpda: 'sigmoid' } }, 'gray'],
    ['halftone input, 3 channels', 'resnet18', { input: { kind: 'halftone', bpda: 'identity' } }, 'colour'],
    ['DoReFa weights 2-bit', 'cnn', { weightBits: 2 }, 'colour'],
    ['DoReFa weights 1-bit', 'vgg11', { weightBits: 1 }, 'gray'],
    ['DoReFa activations 2-bit', 'vgg19bn', { activationBits: 2 }, 'gray'],
    ['DoReFa weights 2-bit and activations 2-bit', 'resnet34', { weightBits: 2, activationBits: 2 }, 'gray'],
    ['DoReFa weights 1-bit and activations 3-bit', 'mlp', { weightBits: 1, activationBits: 3 }, 'colour'],
    [
      'everything: input 2-bit, weights 2-bit, activations 2-bit',
      'resnet18',
      { input: { kind: 'bits', bits: 2, stats: 'batch' }, weightBits: 2, activationBits: 2 },
      'colour',
    ],
  ];
  for (const [what, arch, over, which] of QUANT)
    it(`${arch}, ${what}`, { timeout: 60_000 }, async () => {
      const img = which === 'gray' ? gray : colour;
      const s = spec(arch, img, over);
      await exportAndCompare(s, randomModel(s, 2, which === 'gray' ? calib.gray : calib.colour), img, `${arch} ${what}`);
    });

  it('a model trained by the train operation (cnn, 2-bit input and weights) exports to the same function', { timeout: 120_000 }, async () => {
    const p = {
      arch: 'cnn',
      width: '1/8',
      input: { kind: 'bits', bits: 2, stats: 'batch' },
      weightBits: 2,
      activationBits: null,
      noise: {},
      shape: [28, 28, 1],
      classes: 10,
    };
    const a = (await trainOp(fakeContext({ ...p, train: trainSettings({ epochs: 1, batch: 30 }), method: { name: 'standard' } }, { data: mnist }))).artifact;
    const s = (a.summary as unknown as { spec: ModelSpec }).spec;
    const params = Object.fromEntries(Object.entries(a.tensors).map(([k, v]) => [k.slice(2), v]));
    await exportAndCompare(s, params, { ...gray, mean: s.mean, std: s.std }, 'trained cnn');
  });

  it('noise: refused by default; --without-noise gives the noise-free network', { timeout: 60_000 }, async () => {
    const s = spec('cnn', gray, { noise: { input: { learned: false, sd: 0.2 }, weight: { learned: true, sd: 0.25 } } });
    expect(() => checkModelExport(s, KEY, { format: 'onnx' })).toThrow(/draws input noise \(fixed\) and weight noise \(learned\).*--without-noise/);
    expect(() => checkModelExport(s, KEY, { format: 'trend' })).not.toThrow();
    const params = randomModel(s, 3, calib.gray);
    expect(Object.keys(params)).toContain('noise/conv2');
    await exportAndCompare(s, params, gray, 'cnn without its noise', true);
    const files = await modelFiles({ spec: s }, params, KEY, { format: 'onnx', withoutNoise: true });
    expect((files.json.onnx as { noise_dropped: string[] }).noise_dropped).toEqual(['input noise (fixed)', 'weight noise (learned)']);
    const net = files.json.network as ReturnType<typeof describeNetwork>;
    expect(net.input_noise).toMatchObject({ learned: false, sd: 0.2 });
    expect(net.layers.find((l) => l.id === 'conv2')).toMatchObject({ weight_noise: { learned: true, param: 'noise/conv2' } });
  });
});

describe('model.json describes the network', () => {
  it("TensorFlow's same padding: the odd pixel of a stride-2 3x3 conv goes to the bottom/right", () => {
    expect(samePads(28, 3, 2)).toEqual([0, 1, 14]);
    expect(samePads(7, 3, 2)).toEqual([1, 1, 4]);
    expect(samePads(28, 1, 2)).toEqual([0, 0, 14]);
    expect(samePads(15, 3, 1)).toEqual([1, 1, 15]);
    const net = describeNetwork(spec('resnet18', gray));
    const conv = net.layers.find((l) => l.id === 's2b1_c1');
    expect(conv).toMatchObject({ op: 'conv2d', strides: [2, 2], pads: { top: 0, bottom: 1, left: 0, right: 1 }, shape: [14, 14, 8] });
    const s4 = net.layers.find((l) => l.id === 's4b1_c1');
    expect(s4).toMatchObject({ pads: { top: 1, bottom: 1, left: 1, right: 1 }, shape: [4, 4, 32] });
  });

  it('shortcuts, epsilon, activations and the input quantiser are explicit', () => {
    const net = describeNetwork(spec('resnet18', gray, { input: { kind: 'bits', bits: 1, stats: 'batch' }, activationBits: 2 }));
    expect(net.layers.find((l) => l.id === 's2b1_add')?.inputs).toEqual(['s2b1_bn2', 's2b1_scbn']);
    expect(net.layers.find((l) => l.id === 's1b2_add')?.inputs).toEqual(['s1b2_bn2', 'act2']);
    expect(net.layers.find((l) => l.op === 'batch_norm')).toMatchObject({ epsilon: 1e-5 });
    expect(net.layers.filter((l) => l.op === 'dorefa_activation')).toHaveLength(17);
    expect(net.input_quant).toMatchObject({ kind: 'bits', bits: 1, statistics: 'batch' });
    expect((net.input_quant as { statistics_over: string }).statistics_over).toMatch(/whole batch/);
    expect(net.output).toEqual({ id: 'out', meaning: 'logits' });
  });

  it('a description that names other parameters than the model stores is a bug, said as such', () => {
    expect(() => describeNetwork(spec('cnn', gray), ['conv1/w', 'conv1/b', 'conv2/w', 'conv2/b', 'out/w'])).toThrow(/missing out\/b; extra -/);
  });
});
