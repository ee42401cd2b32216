import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KernelPool } from '../../src/runtime/backends/kernel-pool.js';
import { threadsFromEnv } from '../../src/runtime/backends/select.js';

/** trend's kernel module over a fresh shared memory with a bump allocator, on two threads. */
function makePool(threads = 2): { pool: KernelPool; f32: () => Float32Array; malloc: (bytes: number) => number; k: Record<string, (...a: number[]) => void> } {
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 256, shared: true });
  const bytes = readFileSync(new URL('../../kernels/kernels-shared.wasm', import.meta.url));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  let top = 1024;
  const malloc = (n: number) => {
    const p = top;
    top = (top + n + 15) & ~15;
    return p;
  };
  const pool = new KernelPool({ memory, malloc }, bytes, inst.exports as unknown as Record<string, (...a: number[]) => void>, threads, false);
  return { pool, f32: () => new Float32Array(memory.buffer), malloc, k: inst.exports as unknown as Record<string, (...a: number[]) => void> };
}

describe('kernel pool', () => {
  it('runs each range once, on both threads, and never sleeps through a finished job', () => {
    const { pool, f32, malloc } = makePool();
    const big = 1 << 19;
    const small = 64;
    const y0 = malloc(big * 4);
    const y1 = malloc(small * 4);
    const a = malloc(big * 4);
    f32().fill(1, a >> 2, (a >> 2) + big);
    // Thread 0 (the caller) runs add_into(y0, a, len) with len swept over [0, big), thread 1
    // add_into(y1, a, 64) (the range arguments the pool appends are ignored). Sweeping the
    // caller's share makes it finish just before, with and just after the worker, where a
    // wait that re-read the worker's flag could sleep through a job already done.
    const jobs = 4000;
    const lens = Array.from({ length: jobs }, (_, j) => (j * 2654435761) % big);
    for (const len of lens)
      pool.run('add_into', (i) => (i === 0 ? [y0, a, len] : [y1, a, small]), [
        [0, 1],
        [0, 1],
      ]);
    pool.dispose();
    const got0 = f32().subarray(y0 >> 2, (y0 >> 2) + big);
    const expected0 = new Float64Array(big);
    for (const len of lens) expected0[len] = (expected0[len] ?? 0) + 1;
    for (let e = big - 2; e >= 0; e--) expected0[e]! += expected0[e + 1]!; // jobs with len > e
    for (let e = 0; e < big; e += 4099) expect(got0[e]).toBe(expected0[e + 1]);
    expect(Array.from(f32().subarray(y1 >> 2, (y1 >> 2) + small))).toEqual(new Array(small).fill(jobs));
    expect(pool.timeouts).toBe(0);
  });

  it('hands out every chunk of a chunked job exactly once, on whichever thread asks first', () => {
    const { pool, f32, malloc, k } = makePool();
    // conv_dx_col2im over 1x1 "images" of one channel with a 1x1 filter of weight 1 adds dy[n] to
    // dx[n] for the images of its range: a chunk run twice, or skipped, leaves a wrong count.
    const n = 997;
    const dy = malloc(n * 4);
    const dx = malloc(n * 4);
    const w = malloc(4);
    const bp = malloc(8 * 4);
    const scratch = [malloc(256 * 4), malloc(256 * 4)];
    f32().fill(1, dy >> 2, (dy >> 2) + n);
    f32()[w >> 2] = 1;
    k.pack_filter_t!(w, bp, 1, 1, 1, 1);
    f32().fill(NaN, scratch[1]! >> 2, (scratch[1]! >> 2) + 256);
    const grains = [1, 7, 64, 300, 996, 997, 2000];
    const jobs = 3000;
    for (let j = 0; j < jobs; j++) {
      pool.runChunks('conv_dx_col2im', (t) => [dy, bp, dx, scratch[t]!, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1], n, grains[j % grains.length]!);
    }
    pool.dispose();
    expect(new Set(f32().subarray(dx >> 2, (dx >> 2) + n))).toEqual(new Set([jobs]));
    // The worker took part (its scratch slot was written) and never made the caller time out.
    expect(Number.isNaN(f32()[scratch[1]! >> 2])).toBe(false);
    expect(pool.timeouts).toBe(0);
  });

  it('throws when a kernel traps on a worker, instead of waiting forever, and goes on working', () => {
    const { pool, f32, malloc } = makePool();
    const y = malloc(64 * 4);
    const a = malloc(64 * 4);
    f32().fill(1, a >> 2, (a >> 2) + 64);
    // The worker's range writes past the end of the 16 MiB memory: a trap on that thread. (Before,
    // the caller waited for a worker that had died, and its 'error' event could never arrive.)
    const bad = (i: number) => (i === 0 ? [y, a, 64] : [0x7ffffff0, a, 64]);
    for (let k = 0; k < 20; k++) {
      let thrown: unknown;
      try {
        pool.run('add_into', bad, [
          [0, 1],
          [0, 1],
        ]);
      } catch (e) {
        thrown = e;
      }
      // Either the worker took its range and trapped, or the caller withdrew it and trapped itself.
      expect(String(thrown)).toMatch(/failed on worker thread 1|memory access out of bounds/);
    }
    pool.run('add_into', (i) => [y, a, i === 0 ? 64 : 0], [
      [0, 1],
      [0, 1],
    ]);
    expect(f32()[y >> 2]).toBe(21); // the first range ran in all 21 jobs
    pool.dispose();
  });

  it('has 1 to 8 threads, and TREND_THREADS is checked', () => {
    expect(() => makePool(9)).toThrow(/1 to 8 threads, not 9/);
    expect(() => makePool(2.5)).toThrow(/not 2.5/);
    expect(threadsFromEnv(undefined)).toBeUndefined();
    expect(threadsFromEnv('3')).toBe(3);
    for (const v of ['12', '2.5', '0', 'two']) expect(() => threadsFromEnv(v)).toThrow(/TREND_THREADS=.*whole number of threads from 1 to 8/);
  });
});
