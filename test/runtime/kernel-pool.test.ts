import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KernelPool } from '../../src/runtime/backends/kernel-pool.js';

/** trend's kernel module over a fresh shared memory with a bump allocator, on two threads. */
function makePool(): { pool: KernelPool; f32: () => Float32Array; malloc: (bytes: number) => number } {
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 256, shared: true });
  const bytes = readFileSync(new URL('../../kernels/kernels-shared.wasm', import.meta.url));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  let top = 1024;
  const malloc = (n: number) => {
    const p = top;
    top = (top + n + 15) & ~15;
    return p;
  };
  const pool = new KernelPool({ memory, malloc }, bytes, inst.exports as unknown as Record<string, (...a: number[]) => void>, 2, false);
  return { pool, f32: () => new Float32Array(memory.buffer), malloc };
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
});
