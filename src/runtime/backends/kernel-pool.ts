/**
 * Runs trend's kernels on several threads. Each worker instantiates the same kernel module over
 * the TF.js backend's shared memory; a job is a kernel name, its arguments, and either one row
 * range per thread (run) or rows handed out in chunks to whichever thread asks next (runChunks),
 * handed over through a control block in that memory with Atomics (no messages on the hot path).
 * The calling thread takes the first range itself. Waking a sleeping worker costs 20-200 us on
 * these VMs, so the caller does not wait for a worker that has not started: it withdraws the
 * worker's claim on the job and runs that worker's range (or the remaining chunks) itself. Which
 * thread runs a range never changes a result: each range has the same arguments (its scratch slot
 * included) whoever runs it.
 *
 * Per-thread state is owned by exactly one thread. Each module instance (this thread's and every
 * worker's) has its own copy of the module's stack-pointer global; the pool points each one at a
 * stack of its own, allocated here, before any kernel runs (without that, every instance would
 * start at the linker's address: the same bytes, inside the TF.js module's static data, for all
 * threads). kernels/check-module.mjs proves at build time that the kernels touch no other memory
 * of their own and bound their stack use well below KERNEL_STACK_BYTES. Scratch buffers are
 * handed out per range by the callers (wasm-kernels/: range i gets slot i).
 */
import { Worker } from 'node:worker_threads';

const SLOT = 64; // doubles per worker slot: [nargs, m0, m1, args...]; chunked jobs: m0 = -grain, m1 = n
const MAX_ARGS = SLOT - 3;
// The control block (Int32): [0] the job sequence, [1] the kernel's index, [2] a chunked job's next
// chunk, [8 + i] the last job worker i finished, [16 + i] worker i's claim on the current job (seq:
// offered, -seq: taken by the worker, 0: withdrawn by the caller), [24 + i] worker i's job threw,
// [32 + i] the stack report.
const NEXT_CHUNK = 2;
const DONE = 8;
const CLAIM = 16;
const FAILED = 24; // ctrl[24 + i]: worker i's last job threw (a trap in a kernel)
/** The most threads the control block has words for (8 per field). */
export const MAX_THREADS = 8;
/** Each thread's kernel stack (the build proves a call chain needs at most 4 KiB of it). */
export const KERNEL_STACK_BYTES = 64 * 1024;
const STACK_REPORT = 32; // ctrl[32 + i]: the stack pointer worker i's instance holds

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const v8 = require('node:v8');
if (workerData.relaxed) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const { memory, bytes, ctrlOffset, slotOffset, index, names, stackTop } = workerData;
const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
const ctrl = new Int32Array(memory.buffer, ctrlOffset, 64);
inst.exports.__stack_pointer.value = stackTop;
Atomics.store(ctrl, ${STACK_REPORT} + index, inst.exports.__stack_pointer.value);
Atomics.notify(ctrl, ${STACK_REPORT} + index);
const slot = new Float64Array(memory.buffer, slotOffset, ${SLOT});
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, 0, seen);
  const seq = Atomics.load(ctrl, 0);
  if (seq < 0) break;
  seen = seq;
  // Take the job unless the caller has withdrawn it (it ran this worker's part itself).
  if (Atomics.compareExchange(ctrl, ${CLAIM} + index, seq, -seq) !== seq) continue;
  try {
    const fn = inst.exports[names[Atomics.load(ctrl, 1)]];
    const n = slot[0];
    const args = new Array(n + 2);
    for (let i = 0; i < n; i++) args[i] = slot[3 + i];
    if (slot[1] < 0) {
      const grain = -slot[1], total = slot[2];
      for (let a = Atomics.add(ctrl, ${NEXT_CHUNK}, 1) * grain; a < total; a = Atomics.add(ctrl, ${NEXT_CHUNK}, 1) * grain) {
        args[n] = a;
        args[n + 1] = Math.min(total, a + grain);
        fn(...args);
      }
    } else if (slot[2] > slot[1]) {
      args[n] = slot[1];
      args[n + 1] = slot[2];
      fn(...args);
    }
  } catch (e) {
    // The caller is blocked in Atomics.wait and cannot see an 'error' event: report through the
    // control block and finish the job, so that it throws instead of waiting forever.
    Atomics.store(ctrl, ${FAILED} + index, 1);
  }
  Atomics.store(ctrl, ${DONE} + index, seq);
  Atomics.notify(ctrl, ${DONE} + index);
}
`;

export interface Heap {
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
}

/** One thread's kernel stack: [base, top), the stack growing down from top. */
export interface StackRegion {
  thread: number;
  base: number;
  top: number;
  /** The stack pointer that thread's module instance actually holds after set-up. */
  held: number;
}

/** The kernel module's exports: its functions and the stack-pointer global each instance owns. */
export type KernelExports = Record<string, ((...a: number[]) => void) | WebAssembly.Global>;

function stackGlobal(exports: KernelExports): WebAssembly.Global {
  const g = exports.__stack_pointer;
  if (!(g instanceof WebAssembly.Global)) {
    throw new Error('the kernel module does not export its stack pointer: threads cannot be given their own stacks (rebuild it with scripts/build-kernels.sh)');
  }
  return g;
}

export class KernelPool {
  private readonly workers: Worker[] = [];
  private readonly ctrl: Int32Array;
  private readonly ctrlOffset: number;
  private readonly slotsOffset: number;
  private readonly names: string[];
  private readonly fns: Record<string, (...a: number[]) => void>;
  private readonly stackTops: number[] = [];
  private readonly mainStack: WebAssembly.Global;
  private seq = 0;
  /** Waits for a worker that ran past their 1 s timeout (a diagnostic: 0 unless a job is slow). */
  timeouts = 0;
  /** Sees every job's per-range arguments before it runs (tests audit per-thread ownership). */
  audit: ((fn: string, args: number[][], ranges: Array<[number, number]>) => void) | undefined;
  private failed: Error | undefined;

  constructor(
    heap: Heap,
    bytes: Uint8Array,
    exports: KernelExports,
    readonly threads: number,
    relaxed: boolean,
  ) {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new Error(`a kernel pool has 1 to ${MAX_THREADS} threads, not ${threads}`);
    }
    this.mainStack = stackGlobal(exports);
    this.names = Object.keys(exports).filter((k) => typeof exports[k] === 'function');
    this.fns = Object.fromEntries(this.names.map((k) => [k, exports[k] as (...a: number[]) => void]));
    this.ctrlOffset = heap.malloc(256);
    this.slotsOffset = (heap.malloc(threads * SLOT * 8 + 8) + 7) & ~7;
    this.ctrl = new Int32Array(heap.memory.buffer, this.ctrlOffset, 64);
    this.ctrl.fill(0);
    for (let i = 0; i < threads; i++) {
      const base = heap.malloc(KERNEL_STACK_BYTES + 16);
      if (!base) throw new Error('out of wasm memory for the kernel stacks');
      this.stackTops.push(((base + 15) & ~15) + KERNEL_STACK_BYTES); // 16-byte aligned, as clang assumes
    }
    this.mainStack.value = this.stackTops[0]!;
    for (let i = 1; i < threads; i++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          memory: heap.memory,
          bytes,
          ctrlOffset: this.ctrlOffset,
          slotOffset: this.slotsOffset + i * SLOT * 8,
          index: i,
          names: this.names,
          relaxed,
          stackTop: this.stackTops[i],
        },
      });
      w.on('error', (e) => (this.failed = e));
      w.unref();
      this.workers.push(w);
    }
  }

  /**
   * Calls fn(...args(i), m0, m1) for each range i; range 0 runs on this thread, range i on worker i
   * or, if that worker has not started when this thread is done, on this thread. `args` may differ
   * per range (per-thread scratch buffers, per-partition outputs).
   */
  run(fn: string, args: number[] | ((i: number) => number[]), ranges: Array<[number, number]>): void {
    const argsFor = typeof args === 'function' ? args : () => args;
    const f = this.fns[fn]!;
    if (this.audit)
      this.audit(
        fn,
        ranges.map((_, i) => argsFor(i)),
        ranges,
      );
    if (ranges.length === 1 || this.workers.length === 0) {
      ranges.forEach(([a, b], i) => {
        if (b > a) f(...argsFor(i), a, b);
      });
      return;
    }
    if (ranges.length > this.threads) throw new Error(`more ranges (${ranges.length}) than threads (${this.threads})`);
    const seq = this.post(
      fn,
      (i) => (i < ranges.length ? argsFor(i) : []),
      (i) => ranges[i] ?? [0, 0],
    );
    const [a0, b0] = ranges[0]!;
    let i = 1;
    try {
      if (b0 > a0) f(...argsFor(0), a0, b0);
      for (; i < this.threads; i++) {
        const [a, b] = ranges[i] ?? [0, 0];
        if (this.withdraw(i, seq)) {
          if (b > a) f(...argsFor(i), a, b);
        } else this.waitFor(i, seq, fn);
      }
    } finally {
      this.settle(i, seq);
    }
  }

  /**
   * Calls fn(...args(t), m0, m1) over [0, n) in chunks of `grain` rows, each chunk once, on
   * whichever thread t claims it next (this thread from the start, workers as they wake). For
   * kernels whose rows are independent of each other: the result cannot depend on who ran what.
   * args(t) is thread t's (its scratch slot).
   */
  runChunks(fn: string, args: (t: number) => number[], n: number, grain: number): void {
    const f = this.fns[fn]!;
    if (this.audit)
      this.audit(
        fn,
        Array.from({ length: this.threads }, (_, t) => args(t)),
        Array.from({ length: this.threads }, () => [0, n] as [number, number]),
      );
    if (this.workers.length === 0 || n <= grain) {
      if (n > 0) f(...args(0), 0, n);
      return;
    }
    Atomics.store(this.ctrl, NEXT_CHUNK, 0);
    const seq = this.post(fn, args, () => [-grain, n]);
    const mine = args(0);
    let i = 1;
    try {
      for (let a = Atomics.add(this.ctrl, NEXT_CHUNK, 1) * grain; a < n; a = Atomics.add(this.ctrl, NEXT_CHUNK, 1) * grain)
        f(...mine, a, Math.min(n, a + grain));
      for (; i < this.threads; i++) if (!this.withdraw(i, seq)) this.waitFor(i, seq, fn);
    } finally {
      this.settle(i, seq);
    }
  }

  /**
   * After a job, or when it is left by an exception: workers from i on are withdrawn or waited for,
   * so no worker still runs (or later starts) a job whose buffers the caller is about to free.
   */
  private settle(from: number, seq: number): void {
    for (let i = from; i < this.threads; i++) {
      // seq: still offered (withdrawn now); 0: withdrawn before; -seq: taken, so wait for it
      if (Atomics.compareExchange(this.ctrl, CLAIM + i, seq, 0) === -seq) this.waitFor(i, seq, '', false);
    }
  }

  /** Chunk size for runChunks: about `perThread` chunks per thread, a multiple of `align`. */
  grain(n: number, align: number, perThread = 8): number {
    return Math.max(align, Math.ceil(n / (this.threads * perThread) / align) * align);
  }

  /** Writes each worker's arguments and range into its slot, offers it the job and wakes it. */
  private post(fn: string, argsFor: (i: number) => number[], rangeFor: (i: number) => [number, number]): number {
    const heap = new Float64Array(this.ctrl.buffer, this.slotsOffset, this.threads * SLOT);
    for (let i = 1; i < this.threads; i++) {
      const [a, b] = rangeFor(i);
      const ai = argsFor(i);
      if (ai.length > MAX_ARGS) throw new Error('too many kernel arguments');
      const s = i * SLOT;
      heap[s] = ai.length;
      heap[s + 1] = a;
      heap[s + 2] = b;
      for (let j = 0; j < ai.length; j++) heap[s + 3 + j] = ai[j]!;
    }
    this.seq = (this.seq % 0x3fffffff) + 1; // positive (a negative sequence stops the workers)
    const seq = this.seq;
    Atomics.store(this.ctrl, 1, this.names.indexOf(fn));
    for (let i = 1; i < this.threads; i++) Atomics.store(this.ctrl, CLAIM + i, seq);
    Atomics.store(this.ctrl, 0, seq);
    Atomics.notify(this.ctrl, 0);
    return seq;
  }

  /** Takes job seq back from worker i if it has not taken it yet (then it never touches the job). */
  private withdraw(i: number, seq: number): boolean {
    return Atomics.compareExchange(this.ctrl, CLAIM + i, seq, 0) === seq;
  }

  /** Waits until worker i has finished job seq; throws if it failed (when `report`). */
  private waitFor(i: number, seq: number, fn: string, report = true): void {
    // Wait on the value the check saw: re-reading it for the wait could read the finished value,
    // and the wait would then sleep its full timeout with no notify left to end it.
    for (let seen = Atomics.load(this.ctrl, DONE + i); seen !== seq; seen = Atomics.load(this.ctrl, DONE + i)) {
      if (this.failed) throw new Error(`kernel worker failed: ${this.failed.message}`);
      if (Atomics.wait(this.ctrl, DONE + i, seen, 1000) === 'timed-out') this.timeouts++;
    }
    if (Atomics.exchange(this.ctrl, FAILED + i, 0) && report) {
      throw new Error(`kernel ${fn} failed on worker thread ${i} (a trap in trend's wasm kernels: please report it)`);
    }
  }

  /**
   * Each thread's stack region and the stack pointer its instance holds (waiting for workers that
   * have not started yet). For tests: the regions must be disjoint and held === top.
   */
  stacks(): StackRegion[] {
    return this.stackTops.map((top, i) => {
      if (i > 0) while (Atomics.load(this.ctrl, STACK_REPORT + i) === 0) Atomics.wait(this.ctrl, STACK_REPORT + i, 0, 50);
      const held = i === 0 ? (this.mainStack.value as number) : Atomics.load(this.ctrl, STACK_REPORT + i);
      return { thread: i, base: top - KERNEL_STACK_BYTES, top, held };
    });
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
