/**
 * Convolutions: Conv2D and FusedConv2D (bias, linear/ReLU) as im2col in 60-row chunks and a 5x8
 * register-blocked GEMM with fused multiply-add (kernels/conv.c), rows split across threads;
 * Conv2DBackpropFilter (missing as shipped) as im2col(x)^T dy in two fixed row partitions whose
 * partial sums are added in order (same bits on 1 or 2 threads); Conv2DBackpropInput at stride 1
 * as a forward convolution of dy with the flipped filter (the shipped kernel is a scalar loop);
 * and TrendConv2D, conv + bias + ReLU with a gradient computed part by part.
 */
import { tf } from '../../tf.js';
import {
  CHUNK,
  grainFor,
  free,
  heapF32,
  k,
  kernelModule,
  malloc,
  off,
  pair,
  round4,
  round8,
  scratchFor,
  stock,
  threads,
  type KernelArgs,
  type TensorInfo,
  type WasmBackend,
} from './memory.js';
import { RELU_GRAD } from './elementwise.js';

/** A convolution's geometry: input N x H x W x C, filter KH x KW, strides, top/left padding, output OH x OW x CO. */
export interface ConvGeom {
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
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number,
    1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined,
  );
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

/**
 * y = conv(x, packed filter) (+ bias, ReLU), rows split across threads. A 1x1 stride-1 convolution
 * reads x as its GEMM's rows, few outputs over many inputs take the direct kernel, and wide layers
 * gather im2col rows (conv_fwd); narrow ones first copy x into a zero-padded buffer so that their
 * GEMM reads each window in place (conv_fwd_padded). All give the same bits.
 */
function runConv(x: number, bp: number, bias: number, y: number, g: ConvGeom, relu: boolean): void {
  const kdim = g.KH * g.KW * g.C;
  const sc = scratchFor(CHUNK * round4(kdim)); // im2col rows (or, implicit, row pointers)
  const M = g.N * g.OH * g.OW;
  const pointwise = g.KH === 1 && g.KW === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pl === 0 && g.OH === g.H && g.OW === g.W;
  const grain = threads().grain(M, CHUNK);
  // The implicit GEMM wins where gathering im2col rows is a large share of the work (few input or
  // output channels: 2.2x on 4->4 at 28x28); on wide layers the explicit rows' GEMM was faster
  // (14x14 32->64: 14 ms against 17, in a step).
  const implicit = g.C < 32 || g.CO < 32;
  if (pointwise || k().conv_is_narrow(g.C, g.CO) || !implicit) {
    threads().runChunks(
      'conv_fwd',
      (t) => [x, bp, bias, y, sc(t), g.N, g.H, g.W, g.C, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.OH, g.OW, g.CO, relu ? 1 : 0],
      M,
      grain,
    );
    return;
  }
  const { xp, Hp, Wp } = padInput(x, g);
  threads().runChunks('conv_fwd_padded', (t) => [xp, bp, bias, y, sc(t), Hp, Wp, g.C, g.KH, g.KW, g.sh, g.sw, g.OH, g.OW, g.CO, relu ? 1 : 0], M, grain);
  free(xp);
}

/** x copied into a zero-padded buffer that holds every window the convolution reads (free it after). */
function padInput(x: number, g: ConvGeom): { xp: number; Hp: number; Wp: number } {
  const Hp = (g.OH - 1) * g.sh + g.KH;
  const Wp = (g.OW - 1) * g.sw + g.KW;
  const xp = malloc(g.N * Hp * Wp * g.C * 4);
  if (!xp) throw new Error(`out of wasm memory for a padded convolution input (${g.N * Hp * Wp * g.C * 4} bytes)`);
  threads().runChunks('pad_input', () => [x, xp, g.H, g.W, g.C, Hp, Wp, g.pt, g.pl], g.N, grainFor(g.N, Hp * Wp * g.C, 1));
  return { xp, Hp, Wp };
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
  k().pack_filter(off(b, filter), bp, KH, KW, CI, CO, flip ? 1 : 0);
  if (!k().conv_is_narrow(cin, n)) return bp;
  const bt = malloc(n * round4(kdim) * 4);
  k().narrow_from_panels(bp, bt, kdim, n, round4(kdim));
  free(bp);
  return bt;
}

export function conv2d(args: KernelArgs, fused: boolean): TensorInfo {
  const b = args.backend as WasmBackend;
  const { x, filter, bias } = args.inputs as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo };
  const act = (args.attrs.activation as string | undefined) ?? 'linear';
  const g = geometry(x.shape, filter.shape, args.attrs);
  if (!g || (act !== 'linear' && act !== 'relu') || x.dtype !== 'float32' || (bias && bias.shape.length !== 1)) {
    return stock(fused ? 'FusedConv2D' : 'Conv2D', args);
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

/**
 * Filter gradient im2col(x)^T dy, reading the windows in place from a zero-padded copy of x
 * (conv_dw_padded): two fixed row partitions whose partial sums are added in order, so the same
 * bits on 1 or 2 threads.
 */
export function backpropFilterGemm(args: KernelArgs): TensorInfo {
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
  const sc = scratchFor(CHUNK);
  const M = g.N * g.OH * g.OW;
  const half = Math.ceil(M / 2 / CHUNK) * CHUNK;
  const parts: Array<[number, number]> = [
    [0, Math.min(M, half)],
    [Math.min(M, half), M],
  ];
  const { xp, Hp, Wp } = padInput(off(b, x), g);
  // Partition i accumulates into its own buffer; on one thread both use scratch slot 0.
  const argsFor = (i: number, slot: number) => [xp, off(b, dy), i === 0 ? o0 : o1, sc(slot), Hp, Wp, g.C, g.KH, g.KW, g.sh, g.sw, g.OH, g.OW, g.CO];
  if (threads().threads >= 2) threads().run('conv_dw_padded', (i) => argsFor(i, i), parts);
  else parts.forEach((p, i) => threads().run('conv_dw_padded', () => argsFor(i, 0), [p]));
  free(xp);
  k().add_into(o0, o1, kdim * g.CO);
  free(o1);
  return out;
}

/**
 * Input gradient. At stride 1 with at least 8 input channels: a forward conv of dy with the
 * flipped, transposed filter. Otherwise (strided, or few input channels): dP = dY W^T by GEMM,
 * then col2im, split across threads by image.
 */
export function backpropInputGemm(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const inputShape = args.attrs.inputShape as [number, number, number, number];
  const g = geometry(inputShape, filter.shape, args.attrs);
  if (!g) return stock('Conv2DBackpropInput', args);
  if (g.sh !== 1 || g.sw !== 1 || g.KH - 1 - g.pt < 0 || g.KW - 1 - g.pl < 0) {
    const out = b.makeOutput(inputShape, 'float32');
    heapF32().fill(0, off(b, out) >> 2, (off(b, out) >> 2) + inputShape.reduce((p, q) => p * q, 1));
    const n = g.KH * g.KW * g.C;
    const bp = malloc(g.CO * round8(n) * 4);
    k().pack_filter_t(off(b, filter), bp, g.KH, g.KW, g.C, g.CO);
    const sc = scratchFor(CHUNK * n);
    threads().runChunks(
      'conv_dx_col2im',
      (t) => [off(b, dy), bp, off(b, out), sc(t), g.H, g.W, g.C, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.OH, g.OW, g.CO],
      g.N,
      threads().grain(g.N, 1),
    );
    free(bp);
    return out;
  }
  const [KH, KW, CI, CO] = filter.shape as [number, number, number, number];
  const out = b.makeOutput(inputShape, 'float32');
  const bp = packFilter(b, filter, true);
  runConv(
    off(b, dy),
    bp,
    0,
    off(b, out),
    { N: g.N, H: g.OH, W: g.OW, C: CO, KH, KW, sh: 1, sw: 1, pt: KH - 1 - g.pt, pl: KW - 1 - g.pl, OH: g.H, OW: g.W, CO: CI },
    false,
  );
  free(bp);
  return out;
}

/**
 * TrendConv2D: conv + optional bias + optional ReLU in one pass, with a gradient whose parts are
 * computed only when needed (TF.js's fused op computes every input's gradient eagerly, so an
 * input gradient also paid for the filter gradient). The ReLU gradient uses the saved output.
 */
export const CONV_OP = 'TrendConv2D';

export function trendConv(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { x, filter, bias } = args.inputs as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo };
  const g = geometry(x.shape, filter.shape, { strides: args.attrs.strides, pad: args.attrs.pad })!;
  return convForward(b, x, filter, bias, g, !!args.attrs.relu);
}

export function registerConvGradient(): void {
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
        filter: () =>
          tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: g }, { ...conv, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        bias: () => tf.sum(g, [0, 1, 2]),
      };
    },
  });
}

/** conv(x, w) (+ bias) (then ReLU), through TrendConv2D on wasm and stock ops elsewhere. */
export function conv2dOp(x: tf.Tensor4D, w: tf.Tensor4D, bias: tf.Tensor | undefined, stride: number, relu: boolean): tf.Tensor4D {
  if (kernelModule()) {
    return tf.engine().runKernel(CONV_OP, bias ? { x, filter: w, bias } : { x, filter: w }, {
      strides: stride,
      pad: 'same',
      relu,
    } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  }
  let y = bias ? tf.fused.conv2d({ x, filter: w, bias, strides: stride, pad: 'same' }) : tf.conv2d(x, w, stride, 'same');
  if (relu) y = tf.relu(y);
  return y;
}
