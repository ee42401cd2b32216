/** Minibatches from a dataset artifact's uint8 images: pixel-space float tensors and labels. */
import type { TensorData } from '../artifact.js';
import { tf } from '../tf.js';

export interface Split {
  x: TensorData;
  y: TensorData;
}

export function imageBatch(x: TensorData, idx: ArrayLike<number>): tf.Tensor4D {
  const [, h, w, c] = x.shape as [number, number, number, number];
  const per = h * w * c;
  const out = new Float32Array(idx.length * per);
  const src = x.data as Uint8Array;
  for (let i = 0; i < idx.length; i++) {
    const o = idx[i]! * per;
    for (let j = 0; j < per; j++) out[i * per + j] = src[o + j]! / 255;
  }
  return tf.tensor4d(out, [idx.length, h, w, c]);
}

export function labelBatch(y: TensorData, idx: ArrayLike<number>): Int32Array {
  const src = y.data as Uint8Array;
  return Int32Array.from({ length: idx.length }, (_, i) => src[idx[i]!]!);
}

export function range(start: number, end: number): Int32Array {
  return Int32Array.from({ length: end - start }, (_, i) => start + i);
}

/** Consecutive index ranges [start, end) of at most `size`. */
export function* chunks(n: number, size: number): Generator<[number, number]> {
  for (let s = 0; s < n; s += size) yield [s, Math.min(n, s + size)];
}
