/**
 * CIFAR-10/100 binary format: records of label byte(s) then 3072 bytes of pixels, stored as the
 * 1024 red values, 1024 green, 1024 blue (row-major 32x32). CIFAR-10 records have one label
 * byte, CIFAR-100 two (coarse, fine; the fine label is used).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StepError } from '../../common/errors.js';
import { cifarDir, cifarFiles, noCifarFiles } from './files.js';

export interface Split {
  x: Uint8Array; // NHWC
  y: Uint8Array;
  n: number;
}

const PIXELS = 32 * 32 * 3;

export function parseCifar(buf: Uint8Array, labelBytes: 1 | 2, name: string): Split {
  const rec = labelBytes + PIXELS;
  if (buf.length === 0 || buf.length % rec !== 0) {
    throw new StepError(`${name}: ${buf.length} bytes is not a whole number of ${rec}-byte CIFAR records (truncated or not a CIFAR binary file)`);
  }
  const n = buf.length / rec;
  const x = new Uint8Array(n * PIXELS);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * rec;
    y[i] = buf[o + labelBytes - 1]!;
    for (let p = 0; p < 1024; p++) {
      const d = i * PIXELS + p * 3;
      x[d] = buf[o + labelBytes + p]!;
      x[d + 1] = buf[o + labelBytes + 1024 + p]!;
      x[d + 2] = buf[o + labelBytes + 2048 + p]!;
    }
  }
  return { x, y, n };
}

function concat(parts: Split[]): Split {
  const n = parts.reduce((s, p) => s + p.n, 0);
  const x = new Uint8Array(n * PIXELS);
  const y = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    x.set(p.x, o * PIXELS);
    y.set(p.y, o);
    o += p.n;
  }
  return { x, y, n };
}

export function loadCifar(name: 'cifar10' | 'cifar100', path: string): { train: Split; test: Split; classes: number } {
  let dir: string;
  try {
    dir = cifarDir(name, path);
  } catch {
    throw new StepError(noCifarFiles(name, path));
  }
  return cifarFromFiles(name, (f) => {
    const p = join(dir, f);
    if (!existsSync(p)) throw new StepError(`dataset ${name}: missing ${p}`);
    return readFileSync(p);
  });
}

/** The splits from the files' bytes, by file name (data_batch_1.bin, ..., test_batch.bin; train.bin, test.bin). */
export function cifarFromFiles(name: 'cifar10' | 'cifar100', bytesOf: (file: string) => Uint8Array): { train: Split; test: Split; classes: number } {
  const files = cifarFiles(name);
  const lb = name === 'cifar10' ? 1 : 2;
  const read = (f: string) => parseCifar(bytesOf(f), lb, f);
  const classes = name === 'cifar10' ? 10 : 100;
  const train = concat(files.train.map(read));
  const test = concat(files.test.map(read));
  for (const s of [train, test])
    for (const v of s.y)
      if (v >= classes) throw new StepError(`dataset ${name}: label ${v} out of range (0..${classes - 1}); wrong dataset name for these files?`);
  return { train, test, classes };
}

/** Writes records in the CIFAR binary layout (used by tests to make small files). */
export function encodeCifar(x: Uint8Array, y: Uint8Array, labelBytes: 1 | 2): Uint8Array {
  const n = y.length;
  const rec = labelBytes + PIXELS;
  const out = new Uint8Array(n * rec);
  for (let i = 0; i < n; i++) {
    const o = i * rec;
    if (labelBytes === 2) out[o] = Math.floor(y[i]! / 5);
    out[o + labelBytes - 1] = y[i]!;
    for (let p = 0; p < 1024; p++) {
      out[o + labelBytes + p] = x[i * PIXELS + p * 3]!;
      out[o + labelBytes + 1024 + p] = x[i * PIXELS + p * 3 + 1]!;
      out[o + labelBytes + 2048 + p] = x[i * PIXELS + p * 3 + 2]!;
    }
  }
  return out;
}
