/**
 * `npx tsx scripts/crosscheck/export-case.ts --arch mlp|cnn --out DIR [--n 200] [--train 6000]
 * [--epochs 3] [--width 0.5] [--seed 0]`: trains a small trend model on MNIST (standard training,
 * wasm backend) and writes a cross-check case to DIR: model.json (the spec and the parameter
 * list), one p_<name>.npy per parameter (trend's layouts: conv [kh, kw, in, out], dense [in, out]),
 * x.npy (N test images, NHWC float32 in [0, 1]), y.npy (int32 labels) and logits.npy (trend's
 * logits on x, for reference.py's equivalence check).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, type Artifact } from '../../src/runtime/artifact.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { MNIST_FILES, mnistDir } from '../../src/runtime/data/files.js';
import { readIdx } from '../../src/runtime/data/idx.js';
import type { ModelSpec } from '../../src/runtime/models/model.js';
import { channelStats } from '../../src/runtime/ops/dataset.js';
import { permutation, rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { train } from '../../src/runtime/training/train.js';
import { writeNpy } from './npy.js';

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`missing --${name}`);
  return v;
}

/** The images at `idx` of an MNIST split, as uint8 [n, 28, 28, 1], and their labels. */
function take(images: Uint8Array, labels: Uint8Array, idx: ArrayLike<number>): { x: Uint8Array; y: Uint8Array } {
  const x = new Uint8Array(idx.length * 784);
  const y = new Uint8Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    x.set(images.subarray(idx[i]! * 784, (idx[i]! + 1) * 784), i * 784);
    y[i] = labels[idx[i]!]!;
  }
  return { x, y };
}

async function main(): Promise<void> {
  const arch = arg('arch');
  const out = arg('out');
  const n = Number(arg('n', '200'));
  const nTrain = Number(arg('train', '6000'));
  const seed = Number(arg('seed', '0'));
  await selectBackend('wasm');
  const read = (f: string) => readIdx(join(mnistDir(), f)).data;
  const order = permutation(60000, rng(seed, 'crosscheck/train')).subarray(0, nTrain);
  const nVal = Math.round(nTrain / 10);
  const tr = take(read(MNIST_FILES.trainImages), read(MNIST_FILES.trainLabels), order.subarray(nVal));
  const va = take(read(MNIST_FILES.trainImages), read(MNIST_FILES.trainLabels), order.subarray(0, nVal));
  const te = take(read(MNIST_FILES.testImages), read(MNIST_FILES.testLabels), permutation(10000, rng(seed, 'crosscheck/test')).subarray(0, n));
  const { mean, std } = channelStats(tr.x, 1);
  const data: Artifact = {
    summary: {},
    tensors: {
      trainX: tensor('uint8', [tr.y.length, 28, 28, 1], tr.x),
      trainY: tensor('uint8', [tr.y.length], tr.y),
      valX: tensor('uint8', [va.y.length, 28, 28, 1], va.x),
      valY: tensor('uint8', [va.y.length], va.y),
    },
  };
  const spec: ModelSpec = {
    arch,
    width: Number(arg('width', '0.5')),
    shape: [28, 28, 1],
    classes: 10,
    input: null,
    weightBits: null,
    activationBits: null,
    noise: {},
    mean,
    std,
  };
  const settings = {
    epochs: Number(arg('epochs', '3')),
    batch: 64,
    lr: '1/20',
    momentum: '9/10',
    wd: '0',
    optimizer: 'sgd' as const,
    seed,
    schedule: 'step' as const,
  };
  const { model, bestVal } = await train({ spec, settings, method: { name: 'standard' }, data, progress: () => {} });

  mkdirSync(out, { recursive: true });
  const params = model.decls.map((d) => {
    const file = `p_${d.name.replace(/\//g, '_')}.npy`;
    writeNpy(join(out, file), model.vars.get(d.name)!.dataSync() as Float32Array, d.shape);
    return { name: d.name, shape: d.shape, file };
  });
  const x = Float32Array.from(te.x, (v) => v / 255); // the same floats as trend's imageBatch
  writeNpy(join(out, 'x.npy'), x, [n, 28, 28, 1]);
  writeNpy(join(out, 'y.npy'), Int32Array.from(te.y), [n]);
  const logits = tf.tidy(() => model.logits(tf.tensor4d(x, [n, 28, 28, 1]), { training: false, rng: rng(0) }).dataSync() as Float32Array);
  writeNpy(join(out, 'logits.npy'), logits, [n, 10]);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === te.y[i]) correct++;
  }
  const info = { spec, params, n, train: nTrain, seed, epochs: settings.epochs, valAccuracy: bestVal, cleanAccuracy: correct / n };
  writeFileSync(join(out, 'model.json'), JSON.stringify(info, null, 2) + '\n');
  console.log(JSON.stringify({ out, arch, n, valAccuracy: bestVal, cleanAccuracy: correct / n }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
