/**
 * Runs trend's kernels on several threads. Each worker instantiates the same kernel module over
 * the TF.js backend's shared memory; a job is a kernel name, its arguments, and one row range
 * per thread, handed over through a control block in that memory with Atomics (no messages on
 * the hot path). The calling thread takes the first range itself.
 */
import { Worker } from 'node:worker_threads';

const SLOT = 64; // doubles per worker slot: [nargs, m0, m1, args...]
const MAX_ARGS = SLOT - 3;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const v8 = require('node:v8');
if (workerData.relaxed) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const { memory, bytes, ctrlOffset, slotOffset, index, names } = workerData;
const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
const ctrl = new Int32Array(memory.buffer, ctrlOffset, 64);
const slot = new Float64Array(memory.buffer, slotOffset, ${SLOT});
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, 0, seen);
  const seq = Atomics.load(ctrl, 0);
  if (seq < 0) break;
  seen = seq;
  const fn = inst.exports[names[Atomics.load(ctrl, 1)]];
  const n = slot[0];
  const args = new Array(n + 2);
  for (let i = 0; i < n; i++) args[i] = slot[3 + i];
  args[n] = slot[1];
  args[n + 1] = slot[2];
  if (slot[2] > slot[1]) fn(...args);
  Atomics.store(ctrl, 8 + index, seq);
  Atomics.notify(ctrl, 8 + index);
}
`;

export interface Heap {
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
}

export class KernelPool {
  private readonly workers: Worker[] = [];
  private readonly ctrl: Int32Array;
  private readonly ctrlOffset: number;
  private readonly slotsOffset: number;
  private readonly names: string[];
  private seq = 0;
  /** Waits for a worker that ran past their 1 s timeout (a diagnostic: 0 unless a job is slow). */
  timeouts = 0;
  private failed: Error | undefined;

  constructor(
    heap: Heap,
    bytes: Uint8Array,
    private readonly exports: Record<string, (...a: number[]) => void>,
    readonly threads: number,
    relaxed: boolean,
  ) {
    this.names = Object.keys(exports).filter((k) => typeof exports[k] === 'function');
    this.ctrlOffset = heap.malloc(256);
    this.slotsOffset = (heap.malloc(threads * SLOT * 8 + 8) + 7) & ~7;
    this.ctrl = new Int32Array(heap.memory.buffer, this.ctrlOffset, 64);
    this.ctrl.fill(0);
    for (let i = 1; i < threads; i++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { memory: heap.memory, bytes, ctrlOffset: this.ctrlOffset, slotOffset: this.slotsOffset + i * SLOT * 8, index: i, names: this.names, relaxed },
      });
      w.on('error', (e) => (this.failed = e));
      w.unref();
      this.workers.push(w);
    }
  }

  /**
   * Calls fn(...args(i), m0, m1) for each range i; range 0 runs on this thread. `args` may differ
   * per range (per-thread scratch buffers, per-partition outputs).
   */
  run(fn: string, args: number[] | ((i: number) => number[]), ranges: Array<[number, number]>): void {
    const argsFor = typeof args === 'function' ? args : () => args;
    const f = this.exports[fn]!;
    if (ranges.length === 1 || this.workers.length === 0) {
      ranges.forEach(([a, b], i) => {
        if (b > a) f(...argsFor(i), a, b);
      });
      return;
    }
    if (ranges.length > this.threads) throw new Error(`more ranges (${ranges.length}) than threads (${this.threads})`);
    const heap = new Float64Array(this.ctrl.buffer, this.slotsOffset, this.threads * SLOT);
    for (let i = 1; i < this.threads; i++) {
      const [a, b] = ranges[i] ?? [0, 0];
      const ai = i < ranges.length ? argsFor(i) : [];
      if (ai.length > MAX_ARGS) throw new Error('too many kernel arguments');
      const s = i * SLOT;
      heap[s] = ai.length;
      heap[s + 1] = a;
      heap[s + 2] = b;
      for (let j = 0; j < ai.length; j++) heap[s + 3 + j] = ai[j]!;
    }
    const seq = ++this.seq;
    Atomics.store(this.ctrl, 1, this.names.indexOf(fn));
    Atomics.store(this.ctrl, 0, seq);
    Atomics.notify(this.ctrl, 0);
    const [a0, b0] = ranges[0]!;
    if (b0 > a0) f(...argsFor(0), a0, b0);
    for (let i = 1; i < this.threads; i++) {
      // Wait on the value the check saw: re-reading it for the wait could read the finished
      // value, and the wait would then sleep its full timeout with no notify left to end it.
      for (let seen = Atomics.load(this.ctrl, 8 + i); seen !== seq; seen = Atomics.load(this.ctrl, 8 + i)) {
        if (this.failed) throw new Error(`kernel worker failed: ${this.failed.message}`);
        if (Atomics.wait(this.ctrl, 8 + i, seen, 1000) === 'timed-out') this.timeouts++;
      }
    }
  }

  /** Splits [0, n) into one range per thread, in multiples of `align`. */
  split(n: number, align = 64): Array<[number, number]> {
    const t = this.threads;
    const per = Math.ceil(n / t / align) * align;
    return Array.from({ length: t }, (_, i) => [Math.min(n, i * per), Math.min(n, (i + 1) * per)] as [number, number]);
  }

  dispose(): void {
    Atomics.store(this.ctrl, 0, -1);
    Atomics.notify(this.ctrl, 0);
  }
}
