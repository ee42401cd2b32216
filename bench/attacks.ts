/**
 * PGD-40 on the cnn for one source (images/s), and a full 7x7 transfer matrix on 1,000 MNIST test
 * images (seconds: 7 adversarial batches, 49 evaluations and the matrix, models already trained);
 * APGD-CE and AutoAttack on the cnn (images/s).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../src/runtime/backends/select.js';
import { Model } from '../src/runtime/models/model.js';
import { rng } from '../src/runtime/rng.js';
import { tf } from '../src/runtime/tf.js';
import { runAttack, type AttackSpecJson } from '../src/runtime/training/methods.js';
import { modelTarget } from '../src/runtime/eval/classifier.js';
import { timeTrendc, type Figure } from './figures.js';

export async function benchPgd(quick: boolean): Promise<Figure[]> {
  const choice = await selectBackend('wasm');
  const model = Model.create(
    { arch: 'cnn', width: 1, shape: [28, 28, 1], classes: 10, input: null, weightBits: null, activationBits: null, noise: {}, mean: [0.13], std: [0.31] },
    1,
  );
  const x = tf.randomUniform([100, 28, 28, 1]) as tf.Tensor4D;
  const y = Int32Array.from({ length: 100 }, (_, i) => i % 10);
  const spec = { attack: 'pgd', params: { eps: '3/10', steps: 40, step: '1/100', norm: 'linf', random_start: true } };
  runAttack({ ...spec, params: { ...spec.params, steps: 2 } }, modelTarget(model), x, y, rng(0)).dispose();
  let best = Infinity;
  for (let r = 0; r < (quick ? 2 : 4); r++) {
    const t = performance.now();
    runAttack(spec, modelTarget(model), x, y, rng(r)).dispose();
    best = Math.min(best, performance.now() - t);
  }
  model.dispose();
  x.dispose();
  return [{ name: 'attack.pgd40.cnn.images_per_s', value: Math.round((100 / best) * 1000), unit: 'images/s', note: choice.description }];
}

/**
 * APGD-CE (100 iterations) and AutoAttack standard (l_inf) on the bench cnn (untrained, seeded
 * weights), on a few random images labelled with the model's own predictions so that every image
 * is attacked: images/s, each the best of two runs (one with --quick). AutoAttack's eps (0.001)
 * is small enough that every image survives every attack: its figure is the worst case, all four
 * attacks on every image (with a real budget most images fall to APGD-CE and it costs little more).
 */
export async function benchAutoattack(quick: boolean, images?: number): Promise<Figure[]> {
  const choice = await selectBackend('wasm');
  const model = Model.create(
    { arch: 'cnn', width: 1, shape: [28, 28, 1], classes: 10, input: null, weightBits: null, activationBits: null, noise: {}, mean: [0.13], std: [0.31] },
    1,
  );
  const t = modelTarget(model);
  const n = images ?? (quick ? 1 : 3);
  const x = tf.randomUniform([n, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  const y = t.predict(x, rng(0));
  const time = (spec: AttackSpecJson) => {
    let best = Infinity;
    for (let r = 0; r < (quick ? 1 : 2); r++) {
      const t0 = performance.now();
      runAttack(spec, t, x, y, rng(r)).dispose();
      best = Math.min(best, performance.now() - t0);
    }
    return Math.round((n / best) * 1000 * 100) / 100;
  };
  const apgd = time({ attack: 'apgd', params: { eps: '3/10', norm: 'linf', steps: 100, loss: 'ce', restarts: 1 } });
  const aa = time({ attack: 'autoattack', params: { eps: '1/1000', norm: 'linf', version: 'standard' } });
  model.dispose();
  x.dispose();
  return [
    { name: 'attack.apgd_ce100.cnn.images_per_s', value: apgd, unit: 'images/s', note: choice.description },
    { name: 'attack.autoattack_standard.cnn.images_per_s', value: aa, unit: 'images/s', note: `${choice.description}; ${n} images, eps 0.001: all robust` },
  ];
}

export async function benchMatrix(): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'trend-bench-'));
  const models = [
    'fp = cnn',
    'q8 = cnn quant input 8bit',
    'q4 = cnn quant input 4bit',
    'q2 = cnn quant input 2bit',
    'q1 = cnn quant input 1bit',
    'ht = cnn quant input halftone',
    'adam = cnn optimizer adam lr=0.001',
  ];
  writeFileSync(
    join(dir, 'm.trend'),
    [
      'dataset mnist subset train=2000 test=1000',
      'train epochs=1 lr=0.05',
      ...models.map((m) => `model ${m}`),
      'transfer pgd eps=0.2 steps=40 step=0.01 from * to *',
      '',
    ].join('\n'),
  );
  timeTrendc(['run', 'm.trend', '--quiet', '--no-report', '--only', 'predict/*'], dir);
  const s = timeTrendc(['run', 'm.trend', '--quiet', '--no-report'], dir) / 1000;
  return [{ name: 'transfer.matrix_7x7.mnist1000.seconds', value: +s.toFixed(1), unit: 's' }];
}
