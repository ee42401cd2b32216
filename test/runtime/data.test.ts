import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeCifar, loadCifar, parseCifar } from '../../src/runtime/data/cifar.js';
import { encodeIdx, parseIdx } from '../../src/runtime/data/idx.js';
import { channelStats } from '../../src/runtime/ops/dataset.js';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) % 256);

describe('IDX loader', () => {
  it('round-trips generated files', () => {
    const data = bytes(3 * 4 * 5, 1);
    const idx = parseIdx(encodeIdx([3, 4, 5], data));
    expect(idx.dims).toEqual([3, 4, 5]);
    expect(Array.from(idx.data)).toEqual(Array.from(data));
  });
  it('rejects malformed and truncated files clearly', () => {
    expect(() => parseIdx(new Uint8Array([0, 0, 9, 1, 0, 0, 0, 1, 5]))).toThrow(/not an unsigned-byte IDX file/);
    expect(() => parseIdx(encodeIdx([10, 2], bytes(20, 1)).subarray(0, 20))).toThrow(/truncated/);
    expect(() => parseIdx(new Uint8Array([1]))).toThrow(/too short/);
  });
});

describe('CIFAR loaders', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trend-cifar-'));
  const images = (n: number, seed: number) => bytes(n * 3072, seed);
  const labels = (n: number, classes: number) => Uint8Array.from({ length: n }, (_, i) => (i * 3) % classes);

  it('reads CIFAR-10 batches (planar RGB -> NHWC) from generated files', () => {
    const d = join(dir, 'c10', 'cifar-10-batches-bin');
    mkdirSync(d, { recursive: true });
    const xs: Uint8Array[] = [];
    for (let b = 1; b <= 5; b++) {
      const x = images(4, b);
      xs.push(x);
      writeFileSync(join(d, `data_batch_${b}.bin`), encodeCifar(x, labels(4, 10), 1));
    }
    writeFileSync(join(d, 'test_batch.bin'), encodeCifar(images(3, 9), labels(3, 10), 1));
    const c = loadCifar('cifar10', join(dir, 'c10'));
    expect(c.train.n).toBe(20);
    expect(c.test.n).toBe(3);
    expect(Array.from(c.train.x.subarray(0, 4 * 3072))).toEqual(Array.from(xs[0]!));
    expect(Array.from(c.train.y.subarray(0, 4))).toEqual([0, 3, 6, 9]);
    // Planar layout check by hand: record 0, pixel 1: R at byte 1+1, G at 1+1024+1, B at 1+2048+1.
    const raw = encodeCifar(xs[0]!, labels(4, 10), 1);
    const parsed = parseCifar(raw, 1, 'x');
    expect([raw[2], raw[1026], raw[2050]]).toEqual([parsed.x[3], parsed.x[4], parsed.x[5]]);
  });

  it('reads CIFAR-100 (two label bytes, fine label used)', () => {
    const d = join(dir, 'c100');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'train.bin'), encodeCifar(images(5, 1), labels(5, 100), 2));
    writeFileSync(join(d, 'test.bin'), encodeCifar(images(2, 2), Uint8Array.from([99, 42]), 2));
    const c = loadCifar('cifar100', d);
    expect(Array.from(c.test.y)).toEqual([99, 42]);
    expect(c.classes).toBe(100);
  });

  it('says what is wrong with missing or malformed files', () => {
    expect(() => loadCifar('cifar10', join(dir, 'nowhere'))).toThrow(/no CIFAR binary files/);
    const d = join(dir, 'bad');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'test_batch.bin'), new Uint8Array(100));
    for (let b = 1; b <= 5; b++) writeFileSync(join(d, `data_batch_${b}.bin`), new Uint8Array(3073));
    expect(() => loadCifar('cifar10', d)).toThrow(/not a whole number of 3073-byte CIFAR records/);
    const e = join(dir, 'labels');
    mkdirSync(e, { recursive: true });
    for (let b = 1; b <= 5; b++) writeFileSync(join(e, `data_batch_${b}.bin`), encodeCifar(images(1, b), Uint8Array.from([77]), 1));
    writeFileSync(join(e, 'test_batch.bin'), encodeCifar(images(1, 1), Uint8Array.from([1]), 1));
    expect(() => loadCifar('cifar10', e)).toThrow(/label 77 out of range/);
  });
});

describe('per-channel statistics', () => {
  it('match a hand computation', () => {
    // Two pixels, two channels: channel 0 values 0 and 255 -> mean 0.5, sd 0.5; channel 1 constant.
    const s = channelStats(Uint8Array.from([0, 51, 255, 51]), 2);
    expect(s.mean[0]).toBeCloseTo(0.5, 10);
    expect(s.std[0]).toBeCloseTo(0.5, 10);
    expect(s.mean[1]).toBeCloseTo(0.2, 10);
    expect(s.std[1]).toBeLessThan(1e-5);
  });
});
