/**
 * Kernels added to (or replacing) the wasm backend's, each checked against the cpu backend in
 * test/runtime/kernels.test.ts:
 *
 * - Conv2D and FusedConv2D (bias, linear/ReLU): im2col in 60-row chunks and a 5x8 register-
 *   blocked GEMM with fused multiply-add (kernels/conv.c), rows split across threads.
 * - Conv2DBackpropFilter (missing as shipped): im2col(x)^T dy with 4x8 blocking, as two
 *   fixed row partitions whose partial sums are added in order (same bits on 1 or 2 threads).
 * - Conv2DBackpropInput at stride 1: a forward convolution of the output gradient with the filter
 *   flipped and its channel axes swapped (the shipped kernel is a scalar loop).
 * - MaxPoolGrad, the ReLU gradient (Step, Cast and Multiply as shipped), Sum over leading axes
 *   (bias gradients) and BatchMatMul: one SIMD pass each, from trend's own kernel module
 *   (kernels/kernels.c), which shares the backend's memory.
 */
import { tf } from '../tf.js';
import type { KernelPool } from './kernel-pool.js';

export interface KernelModule {
  transpose4(x: number, y: number, d0: number, d1: number, d2: number, d3: number, p0: number, p1: number, p2: number, p3: number): void;
  relu_backward(x: number, dy: number, dx: number, n: number): void;
  act_quant(x: number, y: number, n: number, levels: number): void;
  act_quant_backward(x: number, dy: number, dx: number, n: number): void;
  maxpool_backward(x: number, dy: number, dx: number, N: number, H: number, W: number, C: number, OH: number, OW: number, kh: number, kw: number, sh: number, sw: number, pt: number, pl: number): void;
  sum_rows(x: number, y: number, m: number, c: number): void;
  sgd_step(w: number, g: number, v: number, wo: number, vo: number, n: number, lr: number, mu: number, wd: number): void;
  matmul(a: number, b: number, c: number, M: number, K: number, N: number, ta: number, tb: number): void;
  pack_filter(w: number, bp: number, KH: number, KW: number, CI: number, CO: number, flip: number): void;
  narrow_from_panels(bp: number, bt: number, K: number, N: number, ldk: number): void;
  conv_is_narrow(C: number, CO: number): number;
  add_into(y: number, a: number, n: number): void;
  maxpool2x2(x: number, y: number, N: number, H: number, W: number, C: number): void;
  maxpool2x2_backward(x: number, dy: number, dx: number, N: number, H: number, W: number, C: number): void;
  pack_filter_t(w: number, bp: number, KH: number, KW: number, CI: number, CO: number): void;
  bn_train_forward(x: number, gamma: number, beta: number, y: number, mean: number, variance: number, acc: number, M: number, C: number, eps: number): void;
  bn_train_backward(x: number, dy: number, gamma: number, mean: number, variance: number, dx: number, dgamma: number, dbeta: number, acc: number, M: number, C: number, eps: number): void;
}

interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}
interface WasmBackend {
  dataIdMap: { get(id: object): { id: number; memoryOffset: number } };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  disposeData(id: object): boolean;
  incRef(id: object): void;
  refCount(id: object): number;
}

let K: KernelModule | undefined;
let pool: KernelPool | undefined;
let malloc: (n: number) => number = () => 0;
let free: (p: number) => void = () => {};
let scratch: { base: number; perThread: number } | undefined;

/** Per-thread scratch (im2col chunks of CHUNK rows, batch-norm sums), grown on demand. */
function scratchFor(floats: number): (i: number) => number {
  const bytes = floats * 4;
  if (!scratch || scratch.perThread < bytes) {
    if (scratch) free(scratch.base);
    const per = Math.max(bytes, 1 << 20);
    scratch = { base: malloc(per * pool!.threads), perThread: per };
  }
  const s = scratch;
  return (i) => s.base + i * s.perThread;
}

function heapF32(): Float32Array {
  return new Float32Array((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer);
}

const CHUNK = 60; // rows per im2col chunk, as in kernels/conv.c
const round4 = (x: number) => (x + 3) & ~3;
const round8 = (x: number) => (x + 7) & ~7;

/** The kernel pool and the per-thread scratch block (slot i at base + i * perThread), for tests. */
export function kernelThreads(): { pool: KernelPool; scratch: { base: number; perThread: number } | undefined } | undefined {
  return pool ? { pool, scratch } : undefined;
}

/** The kernel module, when the wasm backend is active with trend's kernels. */
export function kernelModule(): KernelModule | undefined {
  return tf.getBackend() === 'wasm' ? K : undefined;
}

/** Memory offset of a tensor's data on the wasm heap. */
function offsetOf(t: { dataId: object }): number {
  return (tf.backend() as unknown as WasmBackend).dataIdMap.get(t.dataId).memoryOffset;
}

function off(b: WasmBackend, t: TensorInfo): number {
  return b.dataIdMap.get(t.dataId).memoryOffset;
}

function pair(v: number | number[]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0]!, v[1] ?? v[0]!];
}

type KernelArgs = { inputs: Record<string, TensorInfo>; backend: unknown; attrs: Record<string, unknown> };

/**
 * Runs a memory-bound kernel over n units of `unit` floats each (elements: 1; images: H*W*C) on
 * both threads when the pass is big enough to pay for waking the worker (64K floats); `args(a, e)`
 * gives its arguments for the units [a, e). Each unit's result depends on that unit alone, so the
 * split never changes a value. Element ranges are split at multiples of 16 (whole SIMD vectors).
 */
function bothThreads(fn: string, n: number, unit: number, args: (a: number, e: number) => number[]): void {
  if (n * unit < 65536 || pool!.threads < 2) {
    pool!.run(fn, args(0, n), [[0, n]]);
    return;
  }
  const ranges = pool!.split(n, unit === 1 ? 16 : 1);
  pool!.run(fn, (i) => args(ranges[i]![0], ranges[i]![1]), ranges);
}

let originalBackpropInput: ((args: KernelArgs) => TensorInfo) | undefined;

function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize as number,
    attrs.strides as number,
    1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined,
  );
  const [N, H, W, C] = input.shape as [number, number, number, number];
  const dx = b.makeOutput(input.shape, 'float32');
  const two = info.filterHeight === 2 && info.filterWidth === 2 && info.strideHeight === 2 && info.strideWidth === 2 && info.padInfo.top === 0 && info.padInfo.left === 0;
  if (two && H % 2 === 0 && W % 2 === 0) {
    const xi = H * W * C * 4;
    const yi = (H / 2) * (W / 2) * C * 4;
    bothThreads('maxpool2x2_backward', N, H * W * C, (a, e) => [off(b, input) + a * xi, off(b, dy) + a * yi, off(b, dx) + a * xi, e - a, H, W, C]);
    return dx;
  }
  K!.maxpool_backward(off(b, input), off(b, dy), off(b, dx), N, H, W, C, info.outHeight, info.outWidth, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left);
  return dx;
}

function reluGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const dx = b.makeOutput(x.shape, 'float32');
  bothThreads('relu_backward', x.shape.reduce((a, c) => a * c, 1), 1, (a, e) => [off(b, x) + 4 * a, off(b, dy) + 4 * a, off(b, dx) + 4 * a, e - a]);
  return dx;
}

let originalSum: ((args: KernelArgs) => TensorInfo) | undefined;

/** Sum over every axis but the last (bias gradients) in one pass; other reductions as shipped. */
function sum(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { x } = args.inputs as { x: TensorInfo };
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(args.attrs.axis as number | number[], x.shape).sort((p, q) => p - q);
  const leading = rank >= 2 && x.dtype === 'float32' && axes.length === rank - 1 && axes.every((a, i) => a === i);
  if (!leading) return originalSum!(args);
  const c = x.shape[rank - 1]!;
  const m = x.shape.slice(0, -1).reduce((p, q) => p * q, 1);
  const out = b.makeOutput(args.attrs.keepDims ? [...new Array(rank - 1).fill(1), c] : [c], 'float32');
  K!.sum_rows(off(b, x), off(b, out), m, c);
  return out;
}

let originalMatMul: ((args: KernelArgs) => TensorInfo) | undefined;

/** Batched matmul without broadcasting, including transposed operands (the shipped path is slow). */
function batchMatMul(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { a, b: bb } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const ta = !!args.attrs.transposeA;
  const tb = !!args.attrs.transposeB;
  if (a.dtype !== 'float32' || a.shape.length !== 3 || bb.shape.length !== 3 || a.shape[0] !== bb.shape[0]) return originalMatMul!(args);
  const [batch, a1, a2] = a.shape as [number, number, number];
  const [, b1, b2] = bb.shape as [number, number, number];
  const [M, Ka] = ta ? [a2, a1] : [a1, a2];
  const [Kb, N] = tb ? [b2, b1] : [b1, b2];
  if (Ka !== Kb) return originalMatMul!(args);
  const out = b.makeOutput([batch, M, N], 'float32');
  // The plain product vectorises over N, so operands are arranged (with cheap transposes) to
  // make the longer output side N: C = A B, or C^T = B^T A^T then transposed back.
  const flip = N < 16 && M > N;
  const tmp: number[] = [];
  const arrange = (t: TensorInfo, transposed: boolean, wantTransposed: boolean, r: number, c: number): number => {
    if (transposed === wantTransposed) return off(b, t);
    const p = malloc(batch * r * c * 4);
    tmp.push(p);
    K!.transpose4(off(b, t), p, 1, batch, r, c, 0, 1, 3, 2);
    return p;
  };
  const co = off(b, out);
  if (!flip) {
    const ao = arrange(a, ta, false, a1, a2);
    const bo = arrange(bb, tb, false, b1, b2);
    for (let i = 0; i < batch; i++) K!.matmul(ao + i * M * Ka * 4, bo + i * Ka * N * 4, co + i * M * N * 4, M, Ka, N, 0, 0);
  } else {
    const bo = arrange(bb, tb, true, b1, b2); // B^T: [N, K]
    const ao = arrange(a, ta, true, a1, a2); // A^T: [K, M]
    const ct = malloc(batch * N * M * 4);
    tmp.push(ct);
    for (let i = 0; i < batch; i++) K!.matmul(bo + i * N * Ka * 4, ao + i * Ka * M * 4, ct + i * N * M * 4, N, Ka, M, 0, 0);
    K!.transpose4(ct, co, 1, batch, N, M, 0, 1, 3, 2);
  }
  tmp.forEach(free);
  return out;
}

interface ConvGeom {
  N: number;
  H: number;
  W: number;
  C: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  pt: number;
  pl: number;
  OH: number;
  OW: number;
  CO: number;
}

function geometry(xShape: number[], filterShape: number[], attrs: Record<string, unknown>): ConvGeom | undefined {
  const dil = pair((attrs.dilations as number | number[] | undefined) ?? 1);
  if (dil[0] !== 1 || dil[1] !== 1) return undefined;
  if (attrs.dataFormat && attrs.dataFormat !== 'NHWC') return undefined;
  const info = tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number], attrs.strides as number, 1, attrs.pad as 'same', attrs.dimRoundingMode as 'floor' | undefined);
  return {
    N: xShape[0]!,
    H: xShape[1]!,
    W: xShape[2]!,
    C: xShape[3]!,
    KH: info.filterHeight,
    KW: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
    OH: info.outHeight,
    OW: info.outWidth,
    CO: info.outChannels,
  };
}

/** y = conv(x, packed filter) (+ bias, ReLU), rows split across threads. */
function runConv(x: number, bp: number, bias: number, y: number, g: ConvGeom, relu: boolean): void {
  const kdim = g.KH * g.KW * g.C;
  const sc = scratchFor(CHUNK * round4(kdim));
  const M = g.N * g.OH * g.OW;
  pool!.run('conv_fwd', (i) => [x, bp, bias, y, sc(i), g.N, g.H, g.W, g.C, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.OH, g.OW, g.CO, relu ? 1 : 0], pool!.split(M, CHUNK));
}

/**
 * The filter in the layout conv_fwd takes: 8-column panels for the GEMM, or, when the kernel
 * module's conv_is_narrow says conv_fwd takes its direct kernel (few outputs over many inputs),
 * column-major rows.
 */
function packFilter(b: WasmBackend, filter: TensorInfo, flip: boolean): number {
  const [KH, KW, CI, CO] = filter.shape as [number, number, number, number];
  const [cin, n] = flip ? [CO, CI] : [CI, CO]; // the channels the packed conv reads and writes
  const kdim = KH * KW * cin;
  const bp = malloc(kdim * round8(n) * 4);
  K!.pack_filter(off(b, filter), bp, KH, KW, CI, CO, flip ? 1 : 0);
  if (!K!.conv_is_narrow(cin, n)) return bp;
  const bt = malloc(n * round4(kdim) * 4);
  K!.narrow_from_panels(bp, bt, kdim, n, round4(kdim));
  free(bp);
  return bt;
}

let originalConv2D: ((args: KernelArgs) => TensorInfo) | undefined;
let originalFused: ((args: KernelArgs) => TensorInfo) | undefined;

function conv2d(args: KernelArgs, fused: boolean): TensorInfo {
  const b = args.backend as WasmBackend;
  const { x, filter, bias } = args.inputs as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo };
  const act = (args.attrs.activation as string | undefined) ?? 'linear';
  const g = geometry(x.shape, filter.shape, args.attrs);
  if (!g || (act !== 'linear' && act !== 'relu') || x.dtype !== 'float32' || (bias && bias.shape.length !== 1)) {
    return (fused ? originalFused : originalConv2D)!(args);
  }
  return convForward(b, x, filter, bias, g, act === 'relu');
}

function convForward(b: WasmBackend, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | undefined, g: ConvGeom, relu: boolean): TensorInfo {
  const out = b.makeOutput([g.N, g.OH, g.OW, g.CO], 'float32');
  const bp = packFilter(b, filter, false);
  runConv(off(b, x), bp, bias ? off(b, bias) : 0, off(b, out), g, relu);
  free(bp);
  return out;
}

/** Filter gradient: two fixed row partitions (partial sums added in order), on 1 or 2 threads. */
function backpropFilterGemm(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const fs = args.attrs.filterShape as [number, number, number, number];
  const g = geometry(x.shape, fs, args.attrs)!;
  const kdim = g.KH * g.KW * g.C;
  const out = b.makeOutput(fs, 'float32');
  const o0 = off(b, out);
  const o1 = malloc(kdim * g.CO * 4);
  const heap = heapF32();
  heap.fill(0, o0 >> 2, (o0 >> 2) + kdim * g.CO);
  heap.fill(0, o1 >> 2, (o1 >> 2) + kdim * g.CO);
  const sc = scratchFor(CHUNK * round4(kdim));
  const M = g.N * g.OH * g.OW;
  const half = Math.ceil(M / 2 / CHUNK) * CHUNK;
  const parts: Array<[number, number]> = [
    [0, Math.min(M, half)],
    [Math.min(M, half), M],
  ];
  // Partition i accumulates into its own buffer; on one thread both use scratch slot 0.
  const argsFor = (i: number, slot: number) => [off(b, x), off(b, dy), i === 0 ? o0 : o1, sc(slot), g.N, g.H, g.W, g.C, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.OH, g.OW, g.CO];
  if (pool!.threads >= 2) pool!.run('conv_dw', (i) => argsFor(i, i), parts);
  else parts.forEach((p, i) => pool!.run('conv_dw', () => argsFor(i, 0), [p]));
  K!.add_into(o0, o1, kdim * g.CO);
  free(o1);
  return out;
}

/**
 * Input gradient. At stride 1 with at least 8 input channels: a forward conv of dy with the
 * flipped, transposed filter. Otherwise (strided, or few input channels): dP = dY W^T by GEMM,
 * then col2im, split across threads by image.
 */
function backpropInputGemm(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const inputShape = args.attrs.inputShape as [number, number, number, number];
  const g = geometry(inputShape, filter.shape, args.attrs);
  if (!g) return originalBackpropInput!(args);
  if (g.sh !== 1 || g.sw !== 1 || g.KH - 1 - g.pt < 0 || g.KW - 1 - g.pl < 0) {
    const out = b.makeOutput(inputShape, 'float32');
    heapF32().fill(0, off(b, out) >> 2, (off(b, out) >> 2) + inputShape.reduce((p, q) => p * q, 1));
    const n = g.KH * g.KW * g.C;
    const bp = malloc(g.CO * round8(n) * 4);
    K!.pack_filter_t(off(b, filter), bp, g.KH, g.KW, g.C, g.CO);
    const sc = scratchFor(CHUNK * n);
    const per = Math.ceil(g.N / pool!.threads);
    const ranges = Array.from({ length: pool!.threads }, (_, i) => [Math.min(g.N, i * per), Math.min(g.N, (i + 1) * per)] as [number, number]);
    pool!.run('conv_dx_col2im', (i) => [off(b, dy), bp, off(b, out), sc(i), g.H, g.W, g.C, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.OH, g.OW, g.CO], ranges);
    free(bp);
    return out;
  }
  const [KH, KW, CI, CO] = filter.shape as [number, number, number, number];
  const out = b.makeOutput(inputShape, 'float32');
  const bp = packFilter(b, filter, true);
  runConv(off(b, dy), bp, 0, off(b, out), { N: g.N, H: g.OH, W: g.OW, C: CO, KH, KW, sh: 1, sw: 1, pt: KH - 1 - g.pt, pl: KW - 1 - g.pl, OH: g.H, OW: g.W, CO: CI }, false);
  free(bp);
  return out;
}

/**
 * TrendConv2D: conv + optional bias + optional ReLU in one pass, with a gradient whose parts are
 * computed only when needed (TF.js's fused op computes every input's gradient eagerly, so an
 * input gradient also paid for the filter gradient). The ReLU gradient uses the saved output.
 */
export const CONV_OP = 'TrendConv2D';

function trendConv(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { x, filter, bias } = args.inputs as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo };
  const g = geometry(x.shape, filter.shape, { strides: args.attrs.strides, pad: args.attrs.pad })!;
  return convForward(b, x, filter, bias, g, !!args.attrs.relu);
}

function registerConvGradient(): void {
  tf.registerGradient({
    kernelName: CONV_OP,
    inputsToSave: ['x', 'filter'],
    outputsToSave: [true],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const d = dy as tf.Tensor4D;
      const g = attrs.relu ? (tf.engine().runKernel(RELU_GRAD, { dy: d, x: y }) as tf.Tensor4D) : d;
      const conv = { strides: attrs.strides, pad: attrs.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
      return {
        x: () => tf.engine().runKernel('Conv2DBackpropInput', { dy: g, filter }, { ...conv, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        filter: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: g }, { ...conv, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        bias: () => tf.sum(g, [0, 1, 2]),
      };
    },
  });
}

/** conv(x, w) (+ bias) (then ReLU), through TrendConv2D on wasm and stock ops elsewhere. */
export function conv2dOp(x: tf.Tensor4D, w: tf.Tensor4D, bias: tf.Tensor | undefined, stride: number, relu: boolean): tf.Tensor4D {
  if (kernelModule()) {
    return tf.engine().runKernel(CONV_OP, bias ? { x, filter: w, bias } : { x, filter: w }, { strides: stride, pad: 'same', relu } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  }
  let y = bias ? tf.fused.conv2d({ x, filter: w, bias, strides: stride, pad: 'same' }) : tf.conv2d(x, w, stride, 'same');
  if (relu) y = tf.relu(y);
  return y;
}

/** Identity shares the data (as the cpu backend does) instead of copying it. */
function identity({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { x } = inputs as { x: TensorInfo };
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

let originalMaxPool: ((args: KernelArgs) => TensorInfo) | undefined;

function maxPool(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { x } = args.inputs as { x: TensorInfo };
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const fs = pair(args.attrs.filterSize as number | number[]);
  const st = pair(args.attrs.strides as number | number[]);
  const even = H % 2 === 0 && W % 2 === 0;
  if (x.dtype !== 'float32' || fs[0] !== 2 || fs[1] !== 2 || st[0] !== 2 || st[1] !== 2 || !(args.attrs.pad === 'valid' || (args.attrs.pad === 'same' && even))) {
    return originalMaxPool!(args);
  }
  const out = b.makeOutput([N, Math.floor(H / 2), Math.floor(W / 2), C], 'float32');
  const xi = H * W * C * 4;
  const yi = Math.floor(H / 2) * Math.floor(W / 2) * C * 4;
  bothThreads('maxpool2x2', N, H * W * C, (a, e) => [off(b, x) + a * xi, off(b, out) + a * yi, e - a, H, W, C]);
  return out;
}

/**
 * Runs one of our kernels outside the op registry: allocates float32 outputs of the given shapes,
 * lets `run` write them (it gets their heap offsets) and returns them as tensors.
 */
function callDirect(shapes: number[][], run: (outs: number[]) => void): tf.Tensor[] {
  const b = tf.backend() as unknown as WasmBackend;
  const outs = shapes.map((shape) => b.makeOutput(shape, 'float32'));
  run(outs.map((o) => off(b, o)));
  return outs.map((o) => tf.engine().makeTensorFromTensorInfo(o as tf.TensorInfo));
}

/** DoReFa activation quantisation with `levels` = 2^k - 1, and its straight-through gradient. */
export function actQuant(x: tf.Tensor, levels: number): tf.Tensor {
  return callDirect([x.shape], ([y]) => K!.act_quant(offsetOf(x), y!, x.size, levels))[0]!;
}

export function actQuantGrad(x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  return callDirect([x.shape], ([dx]) => K!.act_quant_backward(offsetOf(x), offsetOf(dy), dx!, x.size))[0]!;
}

/**
 * One SGD step for a weight w with gradient g and velocity v, as new tensors (w', v'): never in
 * place, since XNNPACK caches packed weights by tensor.
 */
export function sgdStep(w: tf.Tensor, g: tf.Tensor, v: tf.Tensor, lr: number, mu: number, wd: number): [tf.Tensor, tf.Tensor] {
  const [wo, vo] = callDirect([w.shape, w.shape], ([wo, vo]) => K!.sgd_step(offsetOf(w), offsetOf(g), offsetOf(v), wo!, vo!, w.size, lr, mu, wd));
  return [wo!, vo!];
}

/**
 * Batch norm in training mode as one kernel with outputs [y, batch mean, batch variance], and a
 * closed-form backward kernel (TF.js's gradient is built from Tile and broadcasts, slow on wasm).
 */
export const BN_OP = 'TrendBatchNormTrain';
const BN_GRAD = 'TrendBatchNormGrad';

/** A channels-last shape seen as a [rows, channels] matrix. */
function rowsByChannels(shape: number[]): [number, number] {
  const c = shape[shape.length - 1]!;
  return [tf.util.sizeFromShape(shape) / c, c];
}

function bnTrain({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as WasmBackend;
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const [M, C] = rowsByChannels(x.shape);
  const y = b.makeOutput(x.shape, 'float32');
  const mean = b.makeOutput([C], 'float32');
  const variance = b.makeOutput([C], 'float32');
  // acc: C doubles of the shared scratch (the kernel runs on this thread alone)
  K!.bn_train_forward(off(b, x), off(b, gamma), off(b, beta), off(b, y), off(b, mean), off(b, variance), scratchFor(2 * C)(0), M, C, attrs.eps as number);
  return [y, mean, variance];
}

function bnGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as WasmBackend;
  const { x, dy, gamma, mean, variance } = inputs as Record<string, TensorInfo>;
  const [M, C] = rowsByChannels(x!.shape);
  const dx = b.makeOutput(x!.shape, 'float32');
  const dg = b.makeOutput([C], 'float32');
  const db = b.makeOutput([C], 'float32');
  // acc: 4C doubles of the shared scratch
  K!.bn_train_backward(off(b, x!), off(b, dy!), off(b, gamma!), off(b, mean!), off(b, variance!), off(b, dx), off(b, dg), off(b, db), scratchFor(8 * C)(0), M, C, attrs.eps as number);
  return [dx, dg, db];
}

function registerBnGradient(): void {
  tf.registerGradient({
    kernelName: BN_OP,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      const [x, gamma, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const dy = (Array.isArray(dys) ? dys[0] : dys)!;
      const [dx, dg, db] = tf.engine().runKernel(BN_GRAD, { x, dy, gamma, mean, variance }, attrs) as tf.Tensor[];
      return { x: () => dx!, gamma: () => dg!, beta: () => db! };
    },
  });
}

/** Training-mode batch norm: [y, batch mean, batch variance]. */
export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  if (kernelModule()) {
    const [y, mean, variance] = tf.engine().runKernel(BN_OP, { x, gamma, beta }, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return { y: y!, mean: mean!, variance: variance! };
  }
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return { y: tf.batchNorm(x, mean, variance, beta, gamma, eps), mean, variance };
}

export const RELU_GRAD = 'TrendReluGrad';

export function registerWasmKernels(
  k: KernelModule,
  kernelPool: KernelPool,
  alloc: (n: number) => number,
  release: (p: number) => void,
): void {
  K = k;
  pool = kernelPool;
  malloc = alloc;
  free = release;
  const original = (name: string) => tf.getKernel(name, 'wasm').kernelFunc as unknown as (a: KernelArgs) => TensorInfo;
  originalBackpropInput = original('Conv2DBackpropInput');
  originalSum = original('Sum');
  originalMatMul = original('BatchMatMul');
  originalConv2D = original('Conv2D');
  originalFused = original('FusedConv2D');
  originalMaxPool = original('MaxPool');
  const reg = (kernelName: string, kernelFunc: (a: KernelArgs) => TensorInfo) => {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  };
  reg('Conv2D', (a) => conv2d(a, false));
  reg('FusedConv2D', (a) => conv2d(a, true));
  reg('Conv2DBackpropFilter', backpropFilterGemm);
  reg('Conv2DBackpropInput', backpropInputGemm);
  reg('MaxPoolGrad', maxPoolGrad);
  reg(RELU_GRAD, reluGrad);
  reg('Sum', sum);
  reg('BatchMatMul', batchMatMul);
  reg('Identity', identity);
  reg('MaxPool', maxPool);
  reg(CONV_OP, trendConv);
  registerConvGradient();
  reg(BN_OP, bnTrain as unknown as (a: KernelArgs) => TensorInfo);
  reg(BN_GRAD, bnGrad as unknown as (a: KernelArgs) => TensorInfo);
  registerBnGradient();
  // The ReLU gradient calls the fused kernel on wasm and keeps the stock formula elsewhere.
  tf.unregisterGradient?.('Relu');
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [x] = saved as [tf.Tensor];
      const g = dy as tf.Tensor;
      return {
        x: () => (tf.getBackend() === 'wasm' && K ? (tf.engine().runKernel(RELU_GRAD, { dy: g, x }) as tf.Tensor) : tf.mul(g, tf.cast(tf.step(x), 'float32'))),
      };
    },
  });
}
