import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

// Every zoo architecture, plain and quantised, trained and attacked twice in one process, on one
// thread and on two (test/fixtures/zoo-probe.mjs prints hashes of the weights and the images).
// Same key, same bytes: within a process, and whatever the thread count. With both threads'
// kernel instances on one shared stack (before each thread got its own), narrow convolutions
// raced and the resnet/cnn rows differed between the two runs of one process.

interface Probe {
  name: string;
  backend: string;
  gradient: boolean;
  first: { weights: string; images: string };
  second: { weights: string; images: string };
}

/** Runs the probe in a child process (asynchronously: a blocked test worker misses its RPCs). */
async function probe(threads: number): Promise<Probe[]> {
  const r = await promisify(execFile)(process.execPath, [join(ROOT, 'test', 'fixtures', 'zoo-probe.mjs')], {
    env: { ...process.env, TREND_THREADS: String(threads) },
    encoding: 'utf8',
    timeout: 300_000,
  });
  expect(r.stderr).toBe('');
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Probe);
}

describe('determinism of training and attacks across the zoo', () => {
  it('gives the same bytes run twice, and on one thread as on two', { timeout: 600_000 }, async () => {
    const two = await probe(2);
    const one = await probe(1);
    expect(two.map((p) => p.name)).toEqual([
      'mlp',
      'mlp+weightBits+activationBits',
      'cnn',
      'cnn+input-bits',
      'resnet18',
      'resnet18+input-bits',
      'resnet34',
      'resnet34+weightBits',
      'vgg11',
      'vgg11+activationBits',
      'vgg11bn',
      'vgg11bn+input-halftone',
      'vgg19',
      'vgg19+weightBits',
      'vgg19bn',
      'vgg19bn+activationBits',
    ]);
    expect(two[0]!.backend).toMatch(/^wasm \(2 threads, simd.*trend kernels\)$/);
    expect(one[0]!.backend).toMatch(/^wasm \(1 thread, simd.*trend kernels\)$/);
    // The arithmetic (FMA or not) is the machine's choice, never the thread count's.
    expect(/fma/.test(one[0]!.backend)).toBe(/fma/.test(two[0]!.backend));
    for (const [i, p] of two.entries()) {
      expect(p.second, `${p.name}: second run on 2 threads`).toEqual(p.first);
      expect(one[i]!.second, `${p.name}: second run on 1 thread`).toEqual(one[i]!.first);
      expect(one[i]!.first, `${p.name}: 1 thread vs 2`).toEqual(p.first);
    }
    // The probe is not vacuous: every configuration trains its own weights, and its input
    // gradient (what the attack follows) is not zero.
    expect(new Set(two.map((p) => p.first.weights)).size).toBe(two.length);
    for (const p of two) expect(p.gradient, p.name).toBe(true);
  });
});
