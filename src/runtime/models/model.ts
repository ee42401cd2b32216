/**
 * A model: its spec, its parameters as TF.js variables, and a forward pass from pixel-space
 * images in [0, 1] to logits. Normalisation (per-channel z-score from the training split), input
 * noise and input quantisation happen inside, so attacks budget in pixel units.
 * Initialisation is seeded JS (one stream per parameter), so a seed gives the same weights on
 * every backend; weights follow PyTorch's default initialisation, as the papers' models did.
 */
import { tensor, type Artifact, type TensorData } from '../artifact.js';
import { rng, seedFrom } from '../rng.js';
import { tf } from '../tf.js';
import { runningStats, type BnBatchStats, type ForwardCtx, type NoiseConfig, type ParamDecl } from './net.js';
import { halftone, inputQuant } from './quant.js';
import { buildArch } from './zoo.js';

export interface ModelSpec {
  arch: string;
  width: number;
  shape: [number, number, number];
  classes: number;
  /**
   * K-bit input quantisation (backward: identity) reads `stats`; halftone reads `bpda`. Models
   * trained before keys dropped them may also carry the other field, which nothing reads.
   */
  input: { kind: 'bits'; bits: number; stats: 'batch' | 'image'; bpda?: string } | { kind: 'halftone'; bpda: 'sigmoid' | 'identity'; stats?: string } | null;
  weightBits: number | null;
  activationBits: number | null;
  noise: { input?: NoiseConfig; weight?: NoiseConfig; activation?: NoiseConfig };
  mean: number[];
  std: number[];
}

export interface ApplyOpts extends ForwardCtx {
  /** Gaussian noise sd added to the normalised input (smoothing). */
  smoothSd?: number;
}

function initValues(d: ParamDecl, seed: number): Float32Array {
  const n = d.shape.reduce((a, b) => a * b, 1);
  switch (d.init.kind) {
    case 'torch': {
      const r = rng(seed, `init/${d.name}`);
      const b = 1 / Math.sqrt(d.init.fanIn);
      return Float32Array.from({ length: n }, () => (2 * r() - 1) * b);
    }
    case 'zeros':
      return new Float32Array(n);
    case 'ones':
      return new Float32Array(n).fill(1);
    case 'const':
      return new Float32Array(n).fill(d.init.value);
  }
}

/** The parameters a model of this spec has, in the order the network declares them. */
export function modelDecls(spec: Omit<ModelSpec, 'mean' | 'std'>): ParamDecl[] {
  return archOf(spec).decls;
}

function archOf(spec: Omit<ModelSpec, 'mean' | 'std'>): { decls: ParamDecl[]; forward: ReturnType<typeof buildArch>['forward'] } {
  const { net, forward } = buildArch(spec, {
    ...(spec.weightBits ? { weightBits: spec.weightBits } : {}),
    ...(spec.activationBits ? { activationBits: spec.activationBits } : {}),
    ...(spec.noise.weight ? { weightNoise: spec.noise.weight } : {}),
    ...(spec.noise.activation ? { activationNoise: spec.noise.activation } : {}),
  });
  const decls = [...net.decls];
  if (spec.noise.input?.learned) decls.push({ name: 'noise/input', shape: [], init: { kind: 'const', value: spec.noise.input.sd }, trainable: true });
  return { decls, forward };
}

export class Model {
  readonly vars = new Map<string, tf.Variable>();
  readonly decls: ParamDecl[];
  private readonly forward: ReturnType<typeof buildArch>['forward'];
  private readonly mean: tf.Tensor;
  private readonly std: tf.Tensor;

  private constructor(
    readonly spec: ModelSpec,
    values: (d: ParamDecl) => Float32Array,
  ) {
    const { decls, forward } = archOf(spec);
    this.decls = decls;
    this.forward = forward;
    for (const d of this.decls) {
      const init = tf.tensor(values(d), d.shape, 'float32');
      this.vars.set(d.name, tf.variable(init, d.trainable, `${d.name}#${Math.random().toString(36).slice(2)}`));
      init.dispose();
    }
    this.mean = tf.keep(tf.tensor1d(spec.mean));
    this.std = tf.keep(tf.tensor1d(spec.std));
  }

  static create(spec: ModelSpec, seed: number): Model {
    return new Model(spec, (d) => initValues(d, seed));
  }

  static fromArtifact(a: Artifact): Model {
    const spec = (a.summary as unknown as { spec: ModelSpec }).spec;
    return new Model(spec, (d) => {
      const t = a.tensors[`p/${d.name}`];
      if (!t) throw new Error(`model artifact lacks parameter ${d.name}`);
      return t.data as Float32Array;
    });
  }

  /** A model with the given parameter values (imported weights, already checked against the spec). */
  static fromValues(spec: ModelSpec, values: Map<string, Float32Array>): Model {
    return new Model(spec, (d) => {
      const v = values.get(d.name);
      if (!v) throw new Error(`imported weights lack parameter ${d.name}`);
      return v;
    });
  }

  /** Copies weights from another model of the same architecture (fine-tuning). */
  loadFrom(other: Model): void {
    for (const d of this.decls) {
      const src = other.vars.get(d.name);
      if (!src || src.shape.join() !== d.shape.join()) throw new Error(`cannot fine-tune: parameter ${d.name} differs between the models`);
      tf.tidy(() => this.vars.get(d.name)!.assign(tf.add(src, tf.scalar(0))));
    }
  }

  /** Moves each batch-norm layer's running mean and variance towards the batch statistics of a training forward (ForwardCtx.updates); disposes them. */
  applyRunningStats(stats: BnBatchStats[]): void {
    for (const u of runningStats(this.vars, stats)) {
      this.vars.get(u.name)!.assign(u.value);
      u.value.dispose();
    }
  }

  trainable(): tf.Variable[] {
    return this.decls.filter((d) => d.trainable).map((d) => this.vars.get(d.name)!);
  }

  get usesNoise(): boolean {
    const n = this.spec.noise;
    return !!(n.input || n.weight || n.activation);
  }

  logits(x: tf.Tensor4D, opts: ApplyOpts): tf.Tensor2D {
    let h: tf.Tensor = tf.div(tf.sub(x, this.mean), this.std);
    const ni = this.spec.noise.input;
    if (ni) {
      if (!opts.rng) throw new Error('input noise needs a seeded stream');
      const eps = tf.randomNormal(h.shape, 0, 1, 'float32', seedFrom(opts.rng));
      h = tf.add(h, tf.mul(eps, ni.learned ? this.vars.get('noise/input')! : tf.scalar(ni.sd)));
    }
    if (opts.smoothSd && opts.smoothSd > 0) {
      if (!opts.rng) throw new Error('smoothing noise needs a seeded stream');
      h = tf.add(h, tf.randomNormal(h.shape, 0, opts.smoothSd, 'float32', seedFrom(opts.rng)));
    }
    const q = this.spec.input;
    if (q?.kind === 'bits') h = inputQuant(h as tf.Tensor4D, q.bits, q.stats === 'image');
    else if (q?.kind === 'halftone') h = halftone(h as tf.Tensor4D, q.bpda);
    return this.forward(this.vars, h, opts) as tf.Tensor2D;
  }

  paramCount(): number {
    return this.decls.filter((d) => d.trainable).reduce((s, d) => s + d.shape.reduce((a, b) => a * b, 1), 0);
  }

  tensors(): Record<string, TensorData> {
    const out: Record<string, TensorData> = {};
    for (const d of this.decls) out[`p/${d.name}`] = tensor('float32', d.shape, this.vars.get(d.name)!.dataSync() as Float32Array);
    return out;
  }

  /** Current values of every parameter (to keep the best-validation weights). */
  snapshot(): Map<string, Float32Array> {
    return new Map(this.decls.map((d) => [d.name, (this.vars.get(d.name)!.dataSync() as Float32Array).slice()]));
  }

  restore(s: Map<string, Float32Array>): void {
    for (const d of this.decls) tf.tidy(() => this.vars.get(d.name)!.assign(tf.tensor(s.get(d.name)!, d.shape)));
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.mean.dispose();
    this.std.dispose();
  }
}
