/**
 * Weights from a file (`model m = ARCH weights="file.safetensors"`): which tensors a zoo
 * architecture needs, under which names and in which layout, whether a file holds exactly those,
 * and the conversion to trend's parameters. Two layouts (docs/import.md):
 *
 *   trend    what `trendc export` writes: trend's parameter names (`conv1/w`, `s1b1_bn1/mean`),
 *            conv kernels HWIO, dense weights [in, out]
 *   pytorch  a PyTorch state dict saved with safetensors: module names (`conv1.weight`,
 *            `layer1.0.bn1.running_mean`, `fc.weight`), conv kernels OIHW, linear weights
 *            [out, in] over NCHW-flattened features; `*.num_batches_tracked` is ignored
 *
 * A file is in trend's layout when its metadata says `format: trend` or a tensor name has a `/`
 * (no PyTorch module name does). Either layout may add the normalisation the model applies to its
 * [0, 1] input: `normalize/mean` and `normalize/std` (trend) or `normalize.mean` and
 * `normalize.std` (pytorch), one value per channel; without them the model uses the dataset's
 * training-split statistics, as a model trained by trend does.
 *
 * No TF.js here: the planner checks a file against an architecture before any backend loads.
 */
import type { ParamDecl } from './net.js';
import { FLOAT_DTYPES, readFloat32, type SafetensorsFile } from './safetensors.js';
import { VGG } from './layout.js';

export type WeightsLayout = 'trend' | 'pytorch';

/** What the name maps need of a model: its architecture and input shape. */
export interface ArchShape {
  arch: string;
  shape: [number, number, number];
}

/** One parameter as a file holds it. */
export interface FileParam {
  /** trend's name of the parameter. */
  trend: string;
  /** Its name in the file. */
  name: string;
  /** Its shape in the file's layout. */
  shape: number[];
  /** Reorders the file's values into trend's layout. */
  toTrend(values: Float32Array): Float32Array;
}

export interface WeightsProblem {
  kind: 'missing' | 'extra' | 'shape' | 'dtype';
  /** The tensor's name in the file. */
  name: string;
  /** trend's name, where the file's name maps to one. */
  trend?: string;
  expected?: number[];
  actual?: number[];
  dtype?: string;
}

const NORMALIZE: Record<WeightsLayout, [string, string]> = {
  trend: ['normalize/mean', 'normalize/std'],
  pytorch: ['normalize.mean', 'normalize.std'],
};
const IGNORED: Record<WeightsLayout, RegExp | undefined> = { trend: undefined, pytorch: /\.num_batches_tracked$/ };

export function detectLayout(f: SafetensorsFile): WeightsLayout {
  if (f.metadata.format === 'trend') return 'trend';
  // PNI's noise scales keep trend's names (`noise/conv1`) in both layouts.
  return [...f.tensors.keys()].some((n) => n.includes('/') && !n.startsWith('noise/')) ? 'trend' : 'pytorch';
}

/** PyTorch's parameter name for each of trend's parameter suffixes. */
const SUFFIX: Record<string, string> = { w: 'weight', b: 'bias', gamma: 'weight', beta: 'bias', mean: 'running_mean', var: 'running_var' };

/** torchvision's module of each part of a basic block. */
const BLOCK_PART: Record<string, string> = { c1: 'conv1', bn1: 'bn1', c2: 'conv2', bn2: 'bn2', sc: 'downsample.0', scbn: 'downsample.1' };

/**
 * The PyTorch module that holds each of trend's layers, per architecture:
 *   mlp       fc1, fc2, out -> fc1, fc2, fc3
 *   cnn       conv1, conv2, out -> conv1, conv2, fc
 *   resnet    stem, stem_bn -> conv1, bn1; sSbB_c1/bn1/c2/bn2/sc/scbn -> layerS.(B-1).conv1/bn1/conv2/bn2/
 *             downsample.0/downsample.1; out -> fc (torchvision's names)
 *   vgg       convI (and bnI) -> features.K (K+1), K counting every module of a Sequential of
 *             conv[, bn], relu per layer and one max-pool per 'M'; out -> classifier
 */
function torchModule(arch: string, layer: string): string | undefined {
  if (layer === 'out') return arch === 'mlp' ? 'fc3' : arch.startsWith('vgg') ? 'classifier' : 'fc';
  if (arch === 'mlp' || arch === 'cnn') return layer;
  if (arch.startsWith('resnet')) {
    if (layer === 'stem') return 'conv1';
    if (layer === 'stem_bn') return 'bn1';
    const m = /^s(\d+)b(\d+)_(c1|bn1|c2|bn2|sc|scbn)$/.exec(layer);
    return m ? `layer${m[1]}.${Number(m[2]) - 1}.${BLOCK_PART[m[3]!]}` : undefined;
  }
  const m = /^(conv|bn)(\d+)$/.exec(layer);
  const cfg = VGG[arch.replace(/bn$/, '')];
  if (!m || !cfg) return undefined;
  const perLayer = arch.endsWith('bn') ? 3 : 2;
  let index = 0;
  let conv = 0;
  for (const v of cfg) {
    if (v === 'M') {
      index++;
      continue;
    }
    if (++conv === Number(m[2])) return `features.${index + (m[1] === 'bn' ? 1 : 0)}`;
    index += perLayer;
  }
  return undefined;
}

/** trend's name to PyTorch's: `s1b1_bn1/mean` -> `layer1.0.bn1.running_mean`; noise scales keep theirs. */
export function torchName(arch: string, trend: string): string {
  if (trend.startsWith('noise/')) return trend;
  const slash = trend.lastIndexOf('/');
  const module = torchModule(arch, trend.slice(0, slash));
  const suffix = SUFFIX[trend.slice(slash + 1)];
  if (!module || !suffix) throw new Error(`no PyTorch name for parameter ${trend} of ${arch}`);
  return `${module}.${suffix}`;
}

/** OIHW -> HWIO. */
function fromOihw(o: number, i: number, kh: number, kw: number): (v: Float32Array) => Float32Array {
  return (v) => {
    const out = new Float32Array(v.length);
    for (let a = 0; a < o; a++)
      for (let b = 0; b < i; b++)
        for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out[((y * kw + x) * i + b) * o + a] = v[((a * i + b) * kh + y) * kw + x]!;
    return out;
  };
}

/**
 * [out, in] -> [in, out]; where the dense layer reads a flattened [h, w, c] map, PyTorch's input
 * index is NCHW's (c, y, x) and trend's NHWC's (y, x, c).
 */
function fromOutIn(inN: number, outN: number, map?: [number, number, number]): (v: Float32Array) => Float32Array {
  return (v) => {
    const out = new Float32Array(v.length);
    for (let t = 0; t < inN; t++) {
      let p = t;
      if (map) {
        const [h, w, c] = map;
        const ch = t % c;
        const yx = (t - ch) / c;
        p = ch * h * w + yx;
      }
      for (let o = 0; o < outN; o++) out[t * outN + o] = v[o * inN + p]!;
    }
    return out;
  };
}

/** The [h, w, c] map a dense layer flattens, when it reads a flattened image or conv map. */
function flattened(a: ArchShape, decls: ParamDecl[], d: ParamDecl): [number, number, number] | undefined {
  if (a.arch === 'mlp') return d.name === 'fc1/w' ? a.shape : undefined;
  if (a.arch.startsWith('resnet') || d.name !== 'out/w') return undefined;
  // cnn and vgg: the last conv's channels, on a square map (every zoo input is square).
  const lastConv = [...decls].reverse().find((x) => x.shape.length === 4);
  const c = lastConv ? lastConv.shape[3]! : a.shape[2];
  const side = Math.round(Math.sqrt(d.shape[0]! / c));
  if (side * side * c !== d.shape[0]) throw new Error(`${a.arch}: cannot tell the feature map the dense layer reads (${d.shape[0]} inputs, ${c} channels)`);
  return [side, side, c];
}

/** The tensors a file in `layout` must hold for a model with these parameters. */
export function fileParams(a: ArchShape, decls: ParamDecl[], layout: WeightsLayout): FileParam[] {
  const same = (v: Float32Array) => v;
  if (layout === 'trend') return decls.map((d) => ({ trend: d.name, name: d.name, shape: d.shape, toTrend: same }));
  return decls.map((d) => {
    const name = torchName(a.arch, d.name);
    if (d.shape.length === 4) {
      const [kh, kw, i, o] = d.shape as [number, number, number, number];
      return { trend: d.name, name, shape: [o, i, kh, kw], toTrend: fromOihw(o, i, kh, kw) };
    }
    if (d.shape.length === 2) {
      const [i, o] = d.shape as [number, number];
      return { trend: d.name, name, shape: [o, i], toTrend: fromOutIn(i, o, flattened(a, decls, d)) };
    }
    return { trend: d.name, name, shape: d.shape, toTrend: same };
  });
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Every way the file differs from what the model needs: missing, extra, mis-shaped or non-float tensors. */
export function matchWeights(f: SafetensorsFile, params: FileParam[], layout: WeightsLayout, channels: number): WeightsProblem[] {
  const problems: WeightsProblem[] = [];
  const want = new Map<string, { trend?: string; shape: number[] }>(params.map((p) => [p.name, { trend: p.trend, shape: p.shape }]));
  const norm = NORMALIZE[layout];
  const normGiven = norm.filter((n) => f.tensors.has(n));
  // The normalisation is optional, but its two tensors go together.
  if (normGiven.length) for (const n of norm) want.set(n, { shape: [channels] });
  for (const [name, w] of want) {
    const e = f.tensors.get(name);
    const t = w.trend !== undefined ? { trend: w.trend } : {};
    if (!e) problems.push({ kind: 'missing', name, ...t, expected: w.shape });
    else if (!(FLOAT_DTYPES as readonly string[]).includes(e.dtype)) problems.push({ kind: 'dtype', name, ...t, dtype: e.dtype });
    else if (!sameShape(e.shape, w.shape)) problems.push({ kind: 'shape', name, ...t, expected: w.shape, actual: e.shape });
  }
  const ignored = IGNORED[layout];
  for (const [name, e] of f.tensors) {
    if (!want.has(name) && !ignored?.test(name)) problems.push({ kind: 'extra', name, actual: e.shape });
  }
  return problems;
}

export interface LoadedWeights {
  /** trend's parameter name -> values in trend's layout. */
  values: Map<string, Float32Array>;
  /** The normalisation the file gives, if it gives one. */
  normalize?: { mean: number[]; std: number[] };
}

/** The parameters in trend's layout (call matchWeights first: this assumes the file fits). */
export function loadWeights(f: SafetensorsFile, params: FileParam[], layout: WeightsLayout): LoadedWeights {
  const values = new Map(params.map((p) => [p.trend, p.toTrend(readFloat32(f, p.name))]));
  const [mean, std] = NORMALIZE[layout];
  if (!f.tensors.has(mean)) return { values };
  return { values, normalize: { mean: [...readFloat32(f, mean)], std: [...readFloat32(f, std)] } };
}

/** A problem in words, naming the tensor in the file (and trend's name where it differs). */
export function describeProblem(p: WeightsProblem, arch: string): string {
  const shape = (s: number[] | undefined) => `[${(s ?? []).join(', ')}]`;
  const also = p.trend && p.trend !== p.name ? ` (trend's ${p.trend})` : '';
  switch (p.kind) {
    case 'missing':
      return `lacks tensor '${p.name}'${also}, which ${arch} needs with shape ${shape(p.expected)}`;
    case 'extra':
      return `has tensor '${p.name}' ${shape(p.actual)}, which ${arch} does not have`;
    case 'shape':
      return `has tensor '${p.name}'${also} of shape ${shape(p.actual)}; ${arch} expects ${shape(p.expected)}`;
    case 'dtype':
      return `has tensor '${p.name}'${also} of dtype ${p.dtype}; parameters must be F32, F64, F16 or BF16`;
  }
}
