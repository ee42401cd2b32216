/**
 * The ONNX graph (opset 13) of a described network: NCHW float input in [0, 1], the
 * normalisation and input quantiser as graph nodes, convolutions with TensorFlow's "same" padding
 * written as explicit pads (bottom/right take the odd pixel), batch norm, ReLU or DoReFa
 * activations (Clip, Round half to even), pooling, shortcuts, logits out. DoReFa weights are
 * written already quantised (the caller quantises them as trend does); dense layers after a
 * flatten get their rows permuted from trend's HWC order to ONNX's CHW order.
 */
import type { TensorData } from '../artifact.js';
import type { ConvDesc, DenseDesc, LayerDesc, NetworkDesc } from './network.js';
import { DT, modelProto, tensorProto, valueInfo, type AttrValue, type NodeDef } from './proto.js';

export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'logits';

export interface OnnxOptions {
  desc: NetworkDesc;
  /** Stored parameters by name (as in model.safetensors). */
  params: Record<string, TensorData>;
  /** A DoReFa-quantised weight as trend computes it (same layout as the stored one). */
  quantized: (name: string, bits: number) => Float32Array;
  producerVersion: string;
  doc: string;
  metadata: Record<string, string>;
}

class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly inits: Uint8Array[] = [];
  private n = 0;
  private consts = new Map<string, string>();

  init(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
    this.inits.push(tensorProto(name, dims, data));
    return name;
  }

  /** A float constant (one per distinct value and shape). */
  scalar(v: number, dims: number[] = []): string {
    const key = `${v}@${dims.join('x')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.init(`const_${this.consts.size}`, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(v));
      this.consts.set(key, name);
    }
    return name;
  }

  node(op: string, inputs: string[], attrs?: Record<string, AttrValue>, output?: string): string {
    const out = output ?? `${op.toLowerCase()}_${this.n}`;
    this.nodes.push({ op, inputs, outputs: [out], name: `${op}_${this.n++}`, ...(attrs ? { attrs } : {}) });
    return out;
  }
}

function param(o: OnnxOptions, name: string): TensorData {
  const t = o.params[name];
  if (!t) throw new Error(`model lacks parameter ${name}`);
  return t;
}

function weightValues(o: OnnxOptions, l: ConvDesc | DenseDesc): Float32Array {
  return l.weight_quant ? o.quantized(l.weight, l.weight_quant.bits) : (param(o, l.weight).data as Float32Array);
}

/** HWIO -> OIHW. */
function oihw(w: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh!; y++)
    for (let x = 0; x < kw!; x++)
      for (let i = 0; i < ci!; i++) for (let c = 0; c < co!; c++) out[((c * ci! + i) * kh! + y) * kw! + x] = w[((y * kw! + x) * ci! + i) * co! + c]!;
  return out;
}

/** [in, out] with `in` in HWC order (or plain features) -> [out, in] with `in` in CHW order. */
function gemmWeight(w: Float32Array, nin: number, nout: number, hwc: number[] | undefined): Float32Array {
  const out = new Float32Array(w.length);
  const [H, W, C] = hwc ?? [1, 1, nin];
  for (let h = 0; h < H!; h++)
    for (let x = 0; x < W!; x++)
      for (let c = 0; c < C!; c++) {
        const src = (h * W! + x) * C! + c;
        const dst = (c * H! + h) * W! + x;
        for (let j = 0; j < nout; j++) out[j * nin + dst] = w[src * nout + j]!;
      }
  return out;
}

function preprocess(g: GraphBuilder, d: NetworkDesc): string {
  const C = d.input.shape[2];
  const mean = g.init('normalize_mean', [1, C, 1, 1], Float32Array.from(d.normalize.mean));
  const std = g.init('normalize_std', [1, C, 1, 1], Float32Array.from(d.normalize.std));
  const h = g.node('Div', [g.node('Sub', [ONNX_INPUT, mean]), std]);
  const q = d.input_quant;
  if (!q) return h;
  const perImage = q.kind === 'halftone' || q.statistics === 'image';
  const red = { keepdims: { i: 1 }, ...(perImage ? { axes: { ints: [1, 2, 3] } } : {}) };
  const lo = g.node('ReduceMin', [h], red);
  const hi = g.node('ReduceMax', [h], red);
  if (q.kind === 'bits') {
    const w = g.node('Max', [g.node('Div', [g.node('Sub', [hi, lo]), g.scalar(2 ** q.bits)]), g.scalar(1e-12)]);
    const half = g.node('Div', [w, g.scalar(2)]);
    const xs = g.node('Where', [g.node('GreaterOrEqual', [h, hi]), g.node('Sub', [h, half]), h]);
    const steps = g.node('Floor', [g.node('Div', [g.node('Sub', [xs, lo]), w])]);
    return g.node('Add', [g.node('Add', [g.node('Mul', [steps, w]), half]), lo]);
  }
  const mu = g.node('ReduceMean', [h], red);
  const z = g.node('Div', [g.node('Sub', [h, mu]), g.node('Max', [g.node('Sub', [hi, lo]), g.scalar(1e-12)])]);
  const k = g.init('halftone_kernel', [C, 1, 3, 3], Float32Array.from(Array.from({ length: C }, () => q.kernel.flat()).flat()));
  const r = g.node('Conv', [z, k], { group: { i: C }, kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] }, strides: { ints: [1, 1] } });
  return g.node('Add', [g.node('Mul', [g.node('Sign', [g.node('Add', [r, g.scalar(1e-3)])]), g.scalar(0.5)]), g.scalar(0.5)]);
}

function layer(g: GraphBuilder, o: OnnxOptions, l: LayerDesc, ins: string[], out: string, shapeOf: (id: string) => number[]): string {
  switch (l.op) {
    case 'conv2d': {
      const ws = param(o, l.weight).shape;
      const w = g.init(l.weight, [ws[3]!, ws[2]!, ws[0]!, ws[1]!], oihw(weightValues(o, l), ws));
      const b = l.bias ? [g.init(l.bias, [ws[3]!], param(o, l.bias).data as Float32Array)] : [];
      const { top, left, bottom, right } = l.pads;
      return g.node(
        'Conv',
        [ins[0]!, w, ...b],
        { kernel_shape: { ints: l.kernel }, strides: { ints: l.strides }, pads: { ints: [top, left, bottom, right] } },
        out,
      );
    }
    case 'dense': {
      const [nin, nout] = param(o, l.weight).shape as [number, number];
      const src = o.desc.layers.find((x) => x.id === l.inputs[0]);
      const hwc = src?.op === 'flatten' ? shapeOf(src.inputs[0]!) : undefined;
      const w = g.init(l.weight, [nout, nin], gemmWeight(weightValues(o, l), nin, nout, hwc));
      const b = g.init(l.bias, [nout], param(o, l.bias).data as Float32Array);
      return g.node('Gemm', [ins[0]!, w, b], { transB: { i: 1 } }, out);
    }
    case 'batch_norm': {
      const p = [l.gamma, l.beta, l.mean, l.var].map((n) => g.init(n, param(o, n).shape, param(o, n).data as Float32Array));
      return g.node('BatchNormalization', [ins[0]!, ...p], { epsilon: { f: l.epsilon } }, out);
    }
    case 'relu':
      return g.node('Relu', ins, undefined, out);
    case 'dorefa_activation': {
      const n = 2 ** l.bits - 1;
      const c = g.node('Clip', [ins[0]!, g.scalar(0), g.scalar(1)]);
      return g.node('Div', [g.node('Round', [g.node('Mul', [c, g.scalar(n)])]), g.scalar(n)], undefined, out);
    }
    case 'max_pool':
      return g.node('MaxPool', ins, { kernel_shape: { ints: l.kernel }, strides: { ints: l.strides } }, out);
    case 'add':
      return g.node('Add', ins, undefined, out);
    case 'global_avg_pool':
      return g.node('Flatten', [g.node('GlobalAveragePool', ins)], { axis: { i: 1 } }, out);
    case 'flatten':
      return g.node('Flatten', ins, { axis: { i: 1 } }, out);
  }
}

/** The ONNX model's bytes. */
export function buildOnnx(o: OnnxOptions): Uint8Array {
  const g = new GraphBuilder();
  const d = o.desc;
  const values = new Map<string, string>([['input', preprocess(g, d)]]);
  const shapes = new Map<string, number[]>([['input', d.input.shape]]);
  for (const l of d.layers) {
    const ins = l.inputs.map((i) => values.get(i)!);
    values.set(
      l.id,
      layer(g, o, l, ins, l.id === d.output.id ? ONNX_OUTPUT : l.id, (id) => shapes.get(id)!),
    );
    shapes.set(l.id, l.shape);
  }
  const [H, W, C] = d.input.shape;
  return modelProto(
    {
      name: `trend_${d.arch}`,
      nodes: g.nodes,
      initializers: g.inits,
      inputs: [valueInfo(ONNX_INPUT, DT.FLOAT, ['N', C, H, W])],
      outputs: [valueInfo(ONNX_OUTPUT, DT.FLOAT, ['N', d.classes])],
      doc: o.doc,
    },
    o.producerVersion,
    o.doc,
    o.metadata,
  );
}
