/**
 * The complete description of a zoo network, layer by layer, as `model.json` gives it and as the
 * ONNX graph is built from: every layer's type, inputs (so shortcuts are explicit), output shape,
 * parameters by name (as in model.safetensors), strides, explicit padding per side, pooling and
 * its rounding, batch-norm epsilon, the activation and its quantiser, and the input pipeline
 * (normalisation, then the input quantiser with its formula and where its statistics come from).
 *
 * It mirrors ../models/zoo.ts and ../models/net.ts; the ONNX export test holds the two together
 * (every architecture, plain and quantised, against trend's own logits), and `describeNetwork`
 * checks that it names exactly the parameters the model declares.
 */
import { ch, VGG } from '../models/layout.js';
import { HALFTONE_KERNEL } from '../models/quant.js';
import type { ModelSpec } from '../models/model.js';
import type { NoiseConfig } from '../models/net.js';

export const MODEL_FORMAT = 'trend-model/1';
export const BN_EPSILON = 1e-5;

export const FORMULAS = {
  normalize: 'x[n,h,w,c] = (pixel/255 - mean[c]) / std[c]',
  inputBits:
    'lo = min(x), hi = max(x) over the statistics set; w = max((hi - lo) / 2^bits, 1e-12); x2 = x - w/2 where x >= hi, else x; q = floor((x2 - lo) / w) * w + w/2 + lo',
  halftone:
    'per image: z = (x - mean(x)) / max(max(x) - min(x), 1e-12) over all its pixels and channels; r = conv3x3(z, kernel) per channel (zero padding 1 on every side) + 1e-3; q = 0.5 * sign(r) + 0.5',
  doreFaWeights: 't = tanh(w); m = max(|t|) over the whole tensor; q = m * (2 * round(((t / (2m)) + 1/2) * (2^bits - 1)) / (2^bits - 1) - 1)',
  doreFaActivations: 'y = round(clip(x, 0, 1) * (2^bits - 1)) / (2^bits - 1)',
  batchNorm: 'y = (x - mean) / sqrt(var + epsilon) * gamma + beta (running statistics)',
  rounding: 'round() is round half to even',
  learnedNoise: 'x + alpha * std(x) * N(0, 1), alpha the parameter noise/<layer>, std over the whole tensor (biased, + 1e-12 under the root)',
  fixedNoise: 'x + sd * N(0, 1)',
};

export interface Pads {
  top: number;
  bottom: number;
  left: number;
  right: number;
}
export type WeightQuant = { kind: 'dorefa'; bits: number } | null;
export interface NoiseDesc {
  learned: boolean;
  sd: number;
  /** The learned scale's parameter, when learned. */
  param: string | null;
  formula: string;
}

interface Base {
  id: string;
  inputs: string[];
  /** Output shape without the batch axis: [H, W, C] (NHWC) or [features]. */
  shape: number[];
}
export type ConvDesc = Base & {
  op: 'conv2d';
  weight: string;
  weight_layout: 'HWIO';
  bias: string | null;
  kernel: [number, number];
  strides: [number, number];
  padding: 'same';
  pads: Pads;
  weight_quant: WeightQuant;
  weight_noise: NoiseDesc | null;
};
export type DenseDesc = Base & {
  op: 'dense';
  weight: string;
  weight_layout: '[in, out]';
  bias: string;
  weight_quant: WeightQuant;
  weight_noise: NoiseDesc | null;
};
export type LayerDesc =
  | ConvDesc
  | DenseDesc
  | (Base & { op: 'batch_norm'; gamma: string; beta: string; mean: string; var: string; epsilon: number })
  | (Base & { op: 'relu'; noise: NoiseDesc | null })
  | (Base & { op: 'dorefa_activation'; bits: number; noise: NoiseDesc | null })
  | (Base & { op: 'max_pool'; kernel: [2, 2]; strides: [2, 2]; pads: Pads; rounding: 'floor' })
  | (Base & { op: 'add' })
  | (Base & { op: 'global_avg_pool' })
  | (Base & { op: 'flatten'; order: 'HWC' });

export type InputQuantDesc =
  | { kind: 'bits'; bits: number; statistics: 'batch' | 'image'; statistics_over: string; formula: string }
  | { kind: 'halftone'; kernel: number[][]; formula: string }
  | null;

export interface NetworkDesc {
  format: typeof MODEL_FORMAT;
  arch: string;
  width: number;
  classes: number;
  input: { layout: 'NHWC'; shape: [number, number, number]; dtype: 'float32'; range: [0, 1]; value: string };
  normalize: { mean: number[]; std: number[]; formula: string; source: string };
  input_quant: InputQuantDesc;
  input_noise: NoiseDesc | null;
  rounding: string;
  /** Layers in order of evaluation; the first reads "input" (the normalised, quantised image). */
  layers: LayerDesc[];
  output: { id: string; meaning: 'logits' };
}

const ZERO_PADS: Pads = { top: 0, bottom: 0, left: 0, right: 0 };

/** TensorFlow's "same" padding along one axis: output ceil(n/s); any odd pixel goes to the end (bottom/right). */
export function samePads(n: number, k: number, s: number): [number, number, number] {
  const out = Math.ceil(n / s);
  const total = Math.max((out - 1) * s + k - n, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2), out];
}

function noiseDesc(cfg: NoiseConfig | undefined, param: string): NoiseDesc | null {
  if (!cfg) return null;
  return { learned: cfg.learned, sd: cfg.sd, param: cfg.learned ? param : null, formula: cfg.learned ? FORMULAS.learnedNoise : FORMULAS.fixedNoise };
}

type Val = { id: string; shape: number[] };
type Role = 'first' | 'hidden' | 'last';

/** Walks an architecture as zoo.ts builds it, recording each layer (the same names, order and roles). */
class Describer {
  readonly layers: LayerDesc[] = [];
  readonly params = new Set<string>();
  private actIndex = 0;
  private pools = 0;
  constructor(readonly spec: ModelSpec) {}

  private push(l: LayerDesc): Val {
    this.layers.push(l);
    return { id: l.id, shape: l.shape };
  }

  private use(...names: string[]): void {
    for (const n of names) this.params.add(n);
  }

  /** DoReFa applies to 'hidden' weights only; the first and last layers keep full precision. */
  private weightQuant(role: Role): WeightQuant {
    return this.spec.weightBits && this.spec.weightBits < 32 && role === 'hidden' ? { kind: 'dorefa', bits: this.spec.weightBits } : null;
  }

  private weightNoise(name: string): NoiseDesc | null {
    const d = noiseDesc(this.spec.noise.weight, `noise/${name}`);
    if (d?.param) this.use(d.param);
    return d;
  }

  conv(name: string, x: Val, cout: number, k: number, stride: number, bias: boolean, role: Role): Val {
    const [H, W] = x.shape as [number, number, number];
    const [top, bottom, OH] = samePads(H, k, stride);
    const [left, right, OW] = samePads(W, k, stride);
    this.use(`${name}/w`, ...(bias ? [`${name}/b`] : []));
    return this.push({
      id: name,
      op: 'conv2d',
      inputs: [x.id],
      shape: [OH, OW, cout],
      weight: `${name}/w`,
      weight_layout: 'HWIO',
      bias: bias ? `${name}/b` : null,
      kernel: [k, k],
      strides: [stride, stride],
      padding: 'same',
      pads: { top, bottom, left, right },
      weight_quant: this.weightQuant(role),
      weight_noise: this.weightNoise(name),
    });
  }

  /** As Net.convAct: a plain ReLU (no quantiser, no noise) is fused and takes no activation index. */
  convAct(name: string, x: Val, cout: number, k: number, stride: number, bias: boolean, role: Role): Val {
    const y = this.conv(name, x, cout, k, stride, bias, role);
    if (this.spec.activationBits || this.spec.noise.activation) return this.act(y);
    return this.push({ id: `${name}_relu`, op: 'relu', inputs: [y.id], shape: y.shape, noise: null });
  }

  dense(name: string, x: Val, cout: number, role: 'hidden' | 'last'): Val {
    this.use(`${name}/w`, `${name}/b`);
    return this.push({
      id: name,
      op: 'dense',
      inputs: [x.id],
      shape: [cout],
      weight: `${name}/w`,
      weight_layout: '[in, out]',
      bias: `${name}/b`,
      weight_quant: this.weightQuant(role),
      weight_noise: this.weightNoise(name),
    });
  }

  bn(name: string, x: Val): Val {
    const p = (s: string) => `${name}/${s}`;
    this.use(p('gamma'), p('beta'), p('mean'), p('var'));
    return this.push({
      id: name,
      op: 'batch_norm',
      inputs: [x.id],
      shape: x.shape,
      gamma: p('gamma'),
      beta: p('beta'),
      mean: p('mean'),
      var: p('var'),
      epsilon: BN_EPSILON,
    });
  }

  /** ReLU, or DoReFa activation quantisation (which clips at 0 and 1 instead); then any activation noise. */
  act(x: Val): Val {
    const id = `act${this.actIndex++}`;
    const noise = noiseDesc(this.spec.noise.activation, `noise/${id}`);
    if (noise?.param) this.use(noise.param);
    const bits = this.spec.activationBits;
    if (bits) return this.push({ id, op: 'dorefa_activation', inputs: [x.id], shape: x.shape, bits, noise });
    return this.push({ id, op: 'relu', inputs: [x.id], shape: x.shape, noise });
  }

  /** 2x2 max pooling, stride 2, no padding, output floor(n/2); skipped (as in zoo.ts) once a side is under 2. */
  maxPool2(x: Val): Val {
    const [H, W, C] = x.shape as [number, number, number];
    if (H < 2 || W < 2) return x;
    const id = `pool${++this.pools}`;
    return this.push({
      id,
      op: 'max_pool',
      inputs: [x.id],
      shape: [Math.floor(H / 2), Math.floor(W / 2), C],
      kernel: [2, 2],
      strides: [2, 2],
      pads: ZERO_PADS,
      rounding: 'floor',
    });
  }

  flatten(x: Val): Val {
    return this.push({ id: 'flatten', op: 'flatten', inputs: [x.id], shape: [x.shape.reduce((a, b) => a * b, 1)], order: 'HWC' });
  }

  globalAvgPool(x: Val): Val {
    return this.push({ id: 'global_avg_pool', op: 'global_avg_pool', inputs: [x.id], shape: [x.shape[2]!] });
  }

  add(id: string, a: Val, b: Val): Val {
    return this.push({ id, op: 'add', inputs: [a.id, b.id], shape: a.shape });
  }
}

const INPUT: Val = { id: 'input', shape: [] };

function mlp(d: Describer): Val {
  const w = d.spec.width;
  let h = d.flatten({ ...INPUT, shape: d.spec.shape });
  h = d.act(d.dense('fc1', h, ch(256, w), 'hidden'));
  h = d.act(d.dense('fc2', h, ch(128, w), 'hidden'));
  return d.dense('out', h, d.spec.classes, 'last');
}

function cnn(d: Describer): Val {
  const w = d.spec.width;
  let h = d.maxPool2(d.convAct('conv1', { ...INPUT, shape: d.spec.shape }, ch(32, w), 3, 1, true, 'first'));
  h = d.maxPool2(d.convAct('conv2', h, ch(64, w), 3, 1, true, 'hidden'));
  return d.dense('out', d.flatten(h), d.spec.classes, 'last');
}

function basicBlock(d: Describer, p: string, x: Val, cout: number, stride: number): Val {
  let m = d.act(d.bn(`${p}_bn1`, d.conv(`${p}_c1`, x, cout, 3, stride, false, 'hidden')));
  m = d.bn(`${p}_bn2`, d.conv(`${p}_c2`, m, cout, 3, 1, false, 'hidden'));
  const short = stride !== 1 || x.shape[2] !== cout ? d.bn(`${p}_scbn`, d.conv(`${p}_sc`, x, cout, 1, stride, false, 'hidden')) : x;
  return d.act(d.add(`${p}_add`, m, short));
}

function resnet(d: Describer): Val {
  const blocks = d.spec.arch === 'resnet18' ? [2, 2, 2, 2] : [3, 4, 6, 3];
  const planes = [64, 128, 256, 512].map((p) => ch(p, d.spec.width));
  let h = d.act(d.bn('stem_bn', d.conv('stem', { ...INPUT, shape: d.spec.shape }, planes[0]!, 3, 1, false, 'first')));
  blocks.forEach((n, stage) => {
    for (let b = 0; b < n; b++) h = basicBlock(d, `s${stage + 1}b${b + 1}`, h, planes[stage]!, b === 0 && stage > 0 ? 2 : 1);
  });
  return d.dense('out', d.globalAvgPool(h), d.spec.classes, 'last');
}

function vgg(d: Describer): Val {
  const cfg = VGG[d.spec.arch.replace(/bn$/, '')];
  if (!cfg) throw new Error(`unknown architecture ${d.spec.arch}`);
  const bn = d.spec.arch.endsWith('bn');
  let h: Val = { ...INPUT, shape: d.spec.shape };
  let i = 0;
  for (const v of cfg) {
    if (v === 'M') {
      h = d.maxPool2(h);
      continue;
    }
    const cout = ch(v, d.spec.width);
    const role = ++i === 1 ? 'first' : 'hidden';
    h = bn ? d.act(d.bn(`bn${i}`, d.conv(`conv${i}`, h, cout, 3, 1, false, role))) : d.convAct(`conv${i}`, h, cout, 3, 1, true, role);
  }
  return d.dense('out', d.flatten(h), d.spec.classes, 'last');
}

function inputQuant(spec: ModelSpec): InputQuantDesc {
  const q = spec.input;
  if (!q) return null;
  if (q.kind === 'halftone') return { kind: 'halftone', kernel: HALFTONE_KERNEL.map((r) => [...r]), formula: FORMULAS.halftone };
  const over =
    q.stats === 'image'
      ? 'each image on its own: min and max over all its pixels and channels (after normalisation)'
      : 'the whole batch the model is called on: min and max over every value of every image in it (after normalisation), so an image quantises differently in another batch; trend evaluates in batches of up to 500 test images in test-set order (attacks in their own batches)';
  return { kind: 'bits', bits: q.bits, statistics: q.stats, statistics_over: over, formula: FORMULAS.inputBits };
}

/**
 * The network of a model spec. `paramNames`, when given (the names a trained model stores), must
 * be exactly the parameters the description uses: anything else means this file and zoo.ts disagree.
 */
export function describeNetwork(spec: ModelSpec, paramNames?: string[]): NetworkDesc {
  const d = new Describer(spec);
  const walk = spec.arch === 'mlp' ? mlp : spec.arch === 'cnn' ? cnn : spec.arch.startsWith('resnet') ? resnet : vgg;
  const out = walk(d);
  const inputNoise = noiseDesc(spec.noise.input, 'noise/input');
  if (inputNoise?.param) d.params.add(inputNoise.param);
  if (paramNames) {
    const stored = new Set(paramNames);
    const missing = [...d.params].filter((n) => !stored.has(n));
    const extra = paramNames.filter((n) => !d.params.has(n));
    if (missing.length || extra.length)
      throw new Error(`the ${spec.arch} description and its parameters disagree: missing ${missing.join(', ') || '-'}; extra ${extra.join(', ') || '-'}`);
  }
  return {
    format: MODEL_FORMAT,
    arch: spec.arch,
    width: spec.width,
    classes: spec.classes,
    input: { layout: 'NHWC', shape: spec.shape, dtype: 'float32', range: [0, 1], value: 'pixel / 255 (float32)' },
    normalize: {
      mean: spec.mean,
      std: spec.std,
      formula: FORMULAS.normalize,
      source: 'per-channel mean and standard deviation of the training split (pixels / 255)',
    },
    input_quant: inputQuant(spec),
    input_noise: inputNoise,
    rounding: FORMULAS.rounding,
    layers: d.layers,
    output: { id: out.id, meaning: 'logits' },
  };
}
