/**
 * Kernels added to (or replacing) the wasm backend's, each checked against the cpu backend in
 * test/runtime/kernels.test.ts:
 *
 * - Conv2DBackpropFilter (missing as shipped): a forward convolution over the transposed input
 *   with the transposed output gradient as its filter, dilation = the forward stride, run by the
 *   backend's own XNNPACK Conv2D.
 * - Conv2DBackpropInput at stride 1: a forward convolution of the output gradient with the filter
 *   flipped and its channel axes swapped (the shipped kernel is a scalar loop).
 * - MaxPoolGrad, the ReLU gradient (Step, Cast and Multiply as shipped), Sum over leading axes
 *   (bias gradients) and BatchMatMul: one SIMD pass each, from trend's own kernel module
 *   (kernels/kernels.c), which shares the backend's memory.
 */
import { tf } from '../tf.js';

export interface KernelModule {
  transpose4(x: number, y: number, d0: number, d1: number, d2: number, d3: number, p0: number, p1: number, p2: number, p3: number): void;
  relu_backward(x: number, dy: number, dx: number, n: number): void;
  maxpool_backward(x: number, dy: number, dx: number, N: number, H: number, W: number, C: number, OH: number, OW: number, kh: number, kw: number, sh: number, sw: number, pt: number, pl: number): void;
  sum_rows(x: number, y: number, m: number, c: number): void;
  sgd_update(w: number, g: number, v: number, n: number, lr: number, mu: number, wd: number): void;
  matmul(a: number, b: number, c: number, M: number, K: number, N: number, ta: number, tb: number): void;
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
}

let K: KernelModule | undefined;
let conv2dRaw: ((...a: number[]) => number) | undefined;

/** The kernel module, when the wasm backend is active with trend's kernels. */
export function kernelModule(): KernelModule | undefined {
  return tf.getBackend() === 'wasm' ? K : undefined;
}

/** Memory offset of a tensor's data on the wasm heap. */
export function offsetOf(t: { dataId: object }): number {
  return (tf.backend() as unknown as WasmBackend).dataIdMap.get(t.dataId).memoryOffset;
}

function off(b: WasmBackend, t: TensorInfo): number {
  return b.dataIdMap.get(t.dataId).memoryOffset;
}
function tid(b: WasmBackend, t: TensorInfo): number {
  return b.dataIdMap.get(t.dataId).id;
}

function transpose(b: WasmBackend, x: TensorInfo, perm: [number, number, number, number]): TensorInfo {
  const s = x.shape as [number, number, number, number];
  const out = b.makeOutput(perm.map((p) => s[p]!), 'float32');
  K!.transpose4(off(b, x), off(b, out), s[0], s[1], s[2], s[3], ...perm);
  return out;
}

/** XNNPACK convolution with explicit pads (no 'same' flag), NHWC input and HWIO filter. */
function conv(b: WasmBackend, x: TensorInfo, filter: TensorInfo, pads: [number, number, number, number], stride: [number, number], dilation: [number, number]): TensorInfo {
  const [n, h, w, ci] = x.shape as [number, number, number, number];
  const [kh, kw, , co] = filter.shape as [number, number, number, number];
  const [pt, pr, pb, pl] = pads;
  const oh = Math.floor((h + pt + pb - (dilation[0] * (kh - 1) + 1)) / stride[0]) + 1;
  const ow = Math.floor((w + pl + pr - (dilation[1] * (kw - 1) + 1)) / stride[1]) + 1;
  const out = b.makeOutput([n, oh, ow, co], 'float32');
  conv2dRaw!(tid(b, x), n, h, w, tid(b, filter), kh, kw, pt, pr, pb, pl, 0, dilation[0], dilation[1], stride[0], stride[1], ci, co, tid(b, out));
  return out;
}

function pair(v: number | number[]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0]!, v[1] ?? v[0]!];
}

type KernelArgs = { inputs: Record<string, TensorInfo>; backend: unknown; attrs: Record<string, unknown> };

function backpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const filterShape = attrs.filterShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    attrs.strides as number,
    1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined,
  );
  const [, H, W] = x.shape as [number, number, number, number];
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const pb = info.filterHeight - 1 + sh * (info.outHeight - 1) + 1 - H - pt;
  const pr = info.filterWidth - 1 + sw * (info.outWidth - 1) + 1 - W - pl;
  const xT = transpose(b, x, [3, 1, 2, 0]); // [Ci, H, W, N]
  const dyT = transpose(b, dy, [1, 2, 0, 3]); // [OH, OW, N, Co]
  let src = xT;
  let cropped: tf.Tensor | undefined;
  if (pb < 0 || pr < 0) {
    // The forward pass ignored trailing rows/columns (floor rounding): crop them here.
    const t = tf.engine().makeTensorFromTensorInfo(xT as tf.TensorInfo);
    cropped = tf.slice(t, [0, 0, 0, 0], [-1, H + Math.min(0, pb), W + Math.min(0, pr), -1]);
    src = cropped as unknown as TensorInfo;
  }
  const r = conv(b, src, dyT, [pt, Math.max(0, pr), Math.max(0, pb), pl], [1, 1], [sh, sw]); // [Ci, KH, KW, Co]
  const out = transpose(b, r, [1, 2, 0, 3]);
  if (cropped) cropped.dispose();
  b.disposeData(xT.dataId);
  b.disposeData(dyT.dataId);
  b.disposeData(r.dataId);
  return out;
}

let originalBackpropInput: ((args: KernelArgs) => TensorInfo) | undefined;

function backpropInput(args: KernelArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const b = backend as WasmBackend;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const inputShape = attrs.inputShape as [number, number, number, number];
  const [sh, sw] = pair(attrs.strides as number | number[]);
  const [kh, kw, ci, co] = filter.shape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], [sh, sw], 1, attrs.pad as 'same', attrs.dimRoundingMode as 'floor' | undefined);
  const pt = kh - 1 - info.padInfo.top;
  const pl = kw - 1 - info.padInfo.left;
  const pb = inputShape[1] - info.outHeight + info.padInfo.top;
  const pr = inputShape[2] - info.outWidth + info.padInfo.left;
  if (sh !== 1 || sw !== 1 || pt < 0 || pl < 0 || pb < 0 || pr < 0) return originalBackpropInput!(args);
  // w'[kh, kw, co, ci] = w[KH-1-kh, KW-1-kw, ci, co]
  const wf = b.makeOutput([kh, kw, co, ci], 'float32');
  const heap = new Float32Array((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer);
  const src = off(b, filter) >> 2;
  const dst = off(b, wf) >> 2;
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) heap[dst + ((y * kw + x) * co + o) * ci + i] = heap[src + (((kh - 1 - y) * kw + (kw - 1 - x)) * ci + i) * co + o]!;
  const out = conv(b, dy, wf, [pt, pr, pb, pl], [1, 1], [1, 1]);
  b.disposeData(wf.dataId);
  return out;
}

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
  K!.maxpool_backward(off(b, input), off(b, dy), off(b, dx), N, H, W, C, info.outHeight, info.outWidth, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left);
  return dx;
}

function reluGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const dx = b.makeOutput(x.shape, 'float32');
  K!.relu_backward(off(b, x), off(b, dy), off(b, dx), x.shape.reduce((a, c) => a * c, 1));
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
  const ao = off(b, a);
  const bo = off(b, bb);
  const co = off(b, out);
  for (let i = 0; i < batch; i++) K!.matmul(ao + i * M * Ka * 4, bo + i * Ka * N * 4, co + i * M * N * 4, M, Ka, N, ta ? 1 : 0, tb ? 1 : 0);
  return out;
}

export const RELU_GRAD = 'TrendReluGrad';

export function registerWasmKernels(k: KernelModule, cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number): void {
  K = k;
  conv2dRaw = cwrap('Conv2D', null, new Array(19).fill('number'));
  const original = (name: string) => tf.getKernel(name, 'wasm').kernelFunc as unknown as (a: KernelArgs) => TensorInfo;
  originalBackpropInput = original('Conv2DBackpropInput');
  originalSum = original('Sum');
  originalMatMul = original('BatchMatMul');
  const reg = (kernelName: string, kernelFunc: (a: KernelArgs) => TensorInfo) => {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  };
  reg('Conv2DBackpropFilter', backpropFilter);
  reg('Conv2DBackpropInput', backpropInput);
  reg('MaxPoolGrad', maxPoolGrad);
  reg(RELU_GRAD, reluGrad);
  reg('Sum', sum);
  reg('BatchMatMul', batchMatMul);
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
