/**
 * The state every kernel family shares: trend's kernel module, its thread pool, the heap
 * allocator, per-thread scratch, the stock kernels we fall back to, and helpers to reach tensors'
 * data on the wasm heap. Set once by register.ts; each family lives in its own file (conv.ts,
 * pool.ts, batch-norm.ts, elementwise.ts, matmul.ts), as tfjs-backend-wasm keeps one per kernel.
 */
import { tf } from '../../tf.js';
import type { KernelPool } from '../kernel-pool.js';

export interface KernelModule {
  transpose4(x: number, y: number, d0: number, d1: number, d2: number, d3: number, p0: number, p1: number, p2: number, p3: number): void;
  relu_backward(x: number, dy: number, dx: number, n: number): void;
  act_quant(x: number, y: number, n: number, levels: number): void;
  act_quant_backward(x: number, dy: number, dx: number, n: number): void;
  maxpool_backward(
    x: number,
    dy: number,
    dx: number,
    N: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    pt: number,
    pl: number,
  ): void;
  sum_rows(x: number, y: number, m: number, c: number): void;
  sgd_step(w: number, g: number, v: number, wo: number, vo: number, n: number, lr: number, mu: number, wd: number): void;
  matmul(a: number, b: number, c: number, M: number, K: number, N: number, ta: number, tb: number): void;
  pack_filter(w: number, bp: number, KH: number, KW: number, CI: number, CO: number, flip: number): void;
  narrow_from_panels(bp: number, bt: number, K: number, N: number, ldk: number): void;
  conv_is_narrow(C: number, CO: number): number;
  add_into(y: number, a: number, n: number): void;
  // The convolution kernels, usually run through the pool (threads().run) with a row range
  // appended; listed so tests can call them directly. The *_padded forms read windows in place
  // from pad_input's buffer; conv_fwd and conv_dw gather im2col rows.
  conv_fwd(...args: number[]): void;
  conv_dw(...args: number[]): void;
  conv_fwd_padded(...args: number[]): void;
  conv_dw_padded(...args: number[]): void;
  pad_input(x: number, xp: number, H: number, W: number, C: number, Hp: number, Wp: number, pt: number, pl: number, n0: number, n1: number): void;
  maxpool2x2(x: number, y: number, N: number, H: number, W: number, C: number): void;
  maxpool2x2_backward(x: number, dy: number, dx: number, N: number, H: number, W: number, C: number): void;
  pack_filter_t(w: number, bp: number, KH: number, KW: number, CI: number, CO: number): void;
  bn_train_forward(x: number, gamma: number, beta: number, y: number, mean: number, variance: number, acc: number, M: number, C: number, eps: number): void;
  bn_train_backward(
    x: number,
    dy: number,
    gamma: number,
    mean: number,
    variance: number,
    dx: number,
    dgamma: number,
    dbeta: number,
    acc: number,
    M: number,
    C: number,
    eps: number,
  ): void;
}

export interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}
export interface WasmBackend {
  dataIdMap: { get(id: object): { id: number; memoryOffset: number } };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  disposeData(id: object): boolean;
  incRef(id: object): void;
  refCount(id: object): number;
}

export type KernelArgs = { inputs: Record<string, TensorInfo>; backend: unknown; attrs: Record<string, unknown> };
export type KernelImpl = (args: KernelArgs) => TensorInfo;

let K: KernelModule | undefined;
let pool: KernelPool | undefined;
let heap: { malloc: (n: number) => number; free: (p: number) => void } = { malloc: () => 0, free: () => {} };
let scratch: { base: number; perThread: number } | undefined;
const stockKernels = new Map<string, KernelImpl>();

/** Installs the module, its pool and the allocator (register.ts, once per backend set-up). */
export function setKernelState(k: KernelModule, p: KernelPool, malloc: (n: number) => number, free: (p: number) => void): void {
  K = k;
  pool = p;
  heap = { malloc, free };
}

export const k = (): KernelModule => K!;
export const threads = (): KernelPool => pool!;
export const malloc = (n: number): number => heap.malloc(n);
export const free = (p: number): void => heap.free(p);

/** Remembers the shipped kernel for `name` before ours replaces it. */
export function keepStock(name: string): void {
  stockKernels.set(name, tf.getKernel(name, 'wasm').kernelFunc as unknown as KernelImpl);
}

/** Runs the shipped kernel (for the cases ours does not cover). */
export function stock(name: string, args: KernelArgs): TensorInfo {
  return stockKernels.get(name)!(args);
}

/** Per-thread scratch (im2col chunks of CHUNK rows, batch-norm sums), grown on demand. */
export function scratchFor(floats: number): (i: number) => number {
  const bytes = floats * 4;
  if (!scratch || scratch.perThread < bytes) {
    if (scratch) free(scratch.base);
    const per = Math.max(bytes, 1 << 20);
    scratch = { base: malloc(per * pool!.threads), perThread: per };
  }
  const s = scratch;
  return (i) => s.base + i * s.perThread;
}

export function heapF32(): Float32Array {
  return new Float32Array((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer);
}

export const CHUNK = 60; // rows per im2col chunk, as in kernels/conv.c
export const round4 = (x: number) => (x + 3) & ~3;
export const round8 = (x: number) => (x + 7) & ~7;

/** The kernel pool and the per-thread scratch block (slot i at base + i * perThread), for tests. */
export function kernelThreads(): { pool: KernelPool; scratch: { base: number; perThread: number } | undefined } | undefined {
  return pool ? { pool, scratch } : undefined;
}

/** The kernel module, when the wasm backend is active with trend's kernels. */
export function kernelModule(): KernelModule | undefined {
  return tf.getBackend() === 'wasm' ? K : undefined;
}

/** Memory offset of a tensor's data on the wasm heap. */
export function off(b: WasmBackend, t: { dataId: object }): number {
  return b.dataIdMap.get(t.dataId).memoryOffset;
}

/** The same, on the active backend (for kernels called outside the op registry). */
export function offsetOf(t: { dataId: object }): number {
  return off(tf.backend() as unknown as WasmBackend, t);
}

export function pair(v: number | number[]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0]!, v[1] ?? v[0]!];
}

/** A pass over fewer floats than this runs on one thread: waking a worker would cost more. */
const SPLIT_FLOATS = 65536;

/**
 * The chunk size for pool.runChunks over n units of `unit` floats each: all of them at once (one
 * thread) for a pass under SPLIT_FLOATS floats, else the pool's grain, a multiple of `align`.
 */
export function grainFor(n: number, unit: number, align: number): number {
  return n * unit < SPLIT_FLOATS ? n : pool!.grain(n, align);
}

/**
 * Runs a memory-bound kernel over n units of `unit` floats each (elements: 1; images: H*W*C) on
 * both threads when the pass is big enough to pay for waking the worker (SPLIT_FLOATS); `args(a, e)`
 * gives its arguments for the units [a, e). Each unit's result depends on that unit alone, so the
 * split never changes a value. Element ranges are split at multiples of 16 (whole SIMD vectors).
 */
export function bothThreads(fn: string, n: number, unit: number, args: (a: number, e: number) => number[]): void {
  if (n * unit < SPLIT_FLOATS || pool!.threads < 2) {
    pool!.run(fn, args(0, n), [[0, n]]);
    return;
  }
  const ranges = pool!.split(n, unit === 1 ? 16 : 1);
  pool!.run(fn, (i) => args(ranges[i]![0], ranges[i]![1]), ranges);
}

/**
 * Runs one of our kernels outside the op registry: allocates float32 outputs of the given shapes,
 * lets `run` write them (it gets their heap offsets) and returns them as tensors.
 */
export function callDirect(shapes: number[][], run: (outs: number[]) => void): tf.Tensor[] {
  const b = tf.backend() as unknown as WasmBackend;
  const outs = shapes.map((shape) => b.makeOutput(shape, 'float32'));
  run(outs.map((o) => off(b, o)));
  return outs.map((o) => tf.engine().makeTensorFromTensorInfo(o as tf.TensorInfo));
}
