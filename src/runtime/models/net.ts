/**
 * A small functional network builder: layers declare their parameters (shape, initialiser) when
 * the network is built, and are closures over a parameter map at run time. Quantisation and
 * noise injection are applied inside the layers, as the model spec says.
 */
import { tf } from '../tf.js';
import type { Rng } from '../rng.js';
import { seedFrom } from '../rng.js';
import { batchNormTrain } from '../backends/wasm-kernels/batch-norm.js';
import { conv2dOp } from '../backends/wasm-kernels/conv.js';
import { quantizeActivations, quantizeWeights } from './quant.js';

/** 'torch': PyTorch's default for conv and dense weights (Kaiming-uniform, a = sqrt 5): U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
export type Init = { kind: 'torch'; fanIn: number } | { kind: 'zeros' } | { kind: 'ones' } | { kind: 'const'; value: number };

export interface ParamDecl {
  name: string;
  shape: number[];
  init: Init;
  /** False for batch-norm running statistics. */
  trainable: boolean;
}

export interface NoiseConfig {
  /** Learned (PNI): the parameter named `noise/<layer>` scales std(w)·ε; fixed: this sd. */
  learned: boolean;
  sd: number;
}

export interface ForwardCtx {
  training: boolean;
  /** Draws noise seeds; required when the model injects noise. */
  rng?: Rng;
  /**
   * Training mode: each batch-norm layer's batch statistics, kept for its running averages, which
   * `runningStats` computes once the gradient tape is done (inside it, the tape saved their
   * inputs for a backward pass they take no part in: about a third of a ResNet step's kernels).
   */
  updates?: BnBatchStats[];
}

/** One batch-norm layer's statistics of a training batch (mean and biased variance over n values). */
export interface BnBatchStats {
  layer: string;
  mean: tf.Tensor;
  variance: tf.Tensor;
  n: number;
}

/**
 * The new running mean and variance of each layer in `stats`: momentum averages with the batch's
 * mean and unbiased variance. Disposes the batch statistics; the caller assigns and disposes the
 * results.
 */
export function runningStats(P: Params, stats: BnBatchStats[]): Array<{ name: string; value: tf.Tensor }> {
  const out: Array<{ name: string; value: tf.Tensor }> = [];
  for (const s of stats) {
    const [mean, variance] = tf.tidy(() => [
      tf.add(tf.mul(P.get(`${s.layer}/mean`)!, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM)),
      tf.add(tf.mul(P.get(`${s.layer}/var`)!, 1 - BN_MOMENTUM), tf.mul(s.variance, (BN_MOMENTUM * s.n) / Math.max(1, s.n - 1))),
    ]);
    out.push({ name: `${s.layer}/mean`, value: mean! }, { name: `${s.layer}/var`, value: variance! });
    s.mean.dispose();
    s.variance.dispose();
  }
  return out;
}

export type Params = Map<string, tf.Tensor>;
export type Layer = (P: Params, x: tf.Tensor, ctx: ForwardCtx) => tf.Tensor;

export interface NetOptions {
  weightBits?: number;
  activationBits?: number;
  weightNoise?: NoiseConfig;
  activationNoise?: NoiseConfig;
}

const BN_MOMENTUM = 0.1;
const BN_EPS = 1e-5;

function noise(P: Params, name: string, x: tf.Tensor, cfg: NoiseConfig, ctx: ForwardCtx): tf.Tensor {
  if (!ctx.rng) throw new Error('noise injection needs a seeded stream');
  const eps = tf.randomNormal(x.shape, 0, 1, 'float32', seedFrom(ctx.rng));
  const scale = cfg.learned ? tf.mul(P.get(`noise/${name}`)!, tf.sqrt(tf.add(tf.moments(x).variance, 1e-12))) : tf.scalar(cfg.sd);
  return tf.add(x, tf.mul(eps, scale));
}

export class Net {
  readonly decls: ParamDecl[] = [];
  private layerIndex = 0;
  constructor(readonly opts: NetOptions) {}

  private declare(name: string, shape: number[], init: Init, trainable = true): void {
    if (this.decls.some((d) => d.name === name)) throw new Error(`duplicate parameter ${name}`);
    this.decls.push({ name, shape, init, trainable });
  }

  /** 'first' and 'last' layers keep full-precision weights (DoReFa convention). */
  private weight(P: Params, name: string, role: 'first' | 'hidden' | 'last', ctx: ForwardCtx): tf.Tensor {
    let w = P.get(`${name}/w`)!;
    if (this.opts.weightBits && role === 'hidden') w = quantizeWeights(w, this.opts.weightBits);
    if (this.opts.weightNoise) w = noise(P, name, w, this.opts.weightNoise, ctx);
    return w;
  }

  private declareNoise(name: string): void {
    if (this.opts.weightNoise?.learned) this.declare(`noise/${name}`, [], { kind: 'const', value: this.opts.weightNoise.sd });
  }

  conv(name: string, cin: number, cout: number, k: number, stride: number, opts: { bias: boolean; role?: 'first' | 'hidden' }): Layer {
    this.declare(`${name}/w`, [k, k, cin, cout], { kind: 'torch', fanIn: k * k * cin });
    if (opts.bias) this.declare(`${name}/b`, [cout], { kind: 'zeros' });
    this.declareNoise(name);
    const role = opts.role ?? 'hidden';
    return (P, x, ctx) =>
      conv2dOp(x as tf.Tensor4D, this.weight(P, name, role, ctx) as tf.Tensor4D, opts.bias ? P.get(`${name}/b`)! : undefined, stride, false);
  }

  /**
   * A convolution followed by the activation: fused (one pass, ReLU gradient from the output)
   * when the activation is a plain ReLU without noise; otherwise conv then act().
   */
  convAct(name: string, cin: number, cout: number, k: number, stride: number, opts: { bias: boolean; role?: 'first' | 'hidden' }): Layer {
    if (this.opts.activationBits || this.opts.activationNoise) return seq(this.conv(name, cin, cout, k, stride, opts), this.act());
    this.declare(`${name}/w`, [k, k, cin, cout], { kind: 'torch', fanIn: k * k * cin });
    if (opts.bias) this.declare(`${name}/b`, [cout], { kind: 'zeros' });
    this.declareNoise(name);
    const role = opts.role ?? 'hidden';
    return (P, x, ctx) => conv2dOp(x as tf.Tensor4D, this.weight(P, name, role, ctx) as tf.Tensor4D, opts.bias ? P.get(`${name}/b`)! : undefined, stride, true);
  }

  dense(name: string, cin: number, cout: number, role: 'hidden' | 'last' = 'hidden'): Layer {
    this.declare(`${name}/w`, [cin, cout], { kind: 'torch', fanIn: cin });
    this.declare(`${name}/b`, [cout], { kind: 'zeros' });
    this.declareNoise(name);
    return (P, x, ctx) => tf.fused.matMul({ a: x as tf.Tensor2D, b: this.weight(P, name, role, ctx) as tf.Tensor2D, bias: P.get(`${name}/b`)! });
  }

  bn(name: string, c: number): Layer {
    this.declare(`${name}/gamma`, [c], { kind: 'ones' });
    this.declare(`${name}/beta`, [c], { kind: 'zeros' });
    this.declare(`${name}/mean`, [c], { kind: 'zeros' }, false);
    this.declare(`${name}/var`, [c], { kind: 'ones' }, false);
    return (P, x, ctx) => {
      const gamma = P.get(`${name}/gamma`)!;
      const beta = P.get(`${name}/beta`)!;
      if (ctx.training) {
        const { y, mean, variance } = batchNormTrain(x, gamma, beta, BN_EPS);
        ctx.updates?.push({ layer: name, mean: tf.keep(mean), variance: tf.keep(variance), n: x.size / c });
        return y;
      }
      // Evaluation: the per-channel affine map x*a + b, a = gamma/sqrt(var + eps),
      // b = beta - mean*a. Its input gradient is one multiply (TF.js's batchNorm gradient tiles
      // the statistics to the full tensor, which made attacks on BN nets 3-4x slower).
      const a = tf.mul(gamma, tf.rsqrt(tf.add(P.get(`${name}/var`)!, BN_EPS)));
      const b = tf.sub(beta, tf.mul(P.get(`${name}/mean`)!, a));
      return tf.add(tf.mul(x, a), b);
    };
  }

  /** ReLU, or DoReFa activation quantisation; then activation noise if configured. */
  act(): Layer {
    const name = `act${this.layerIndex++}`;
    if (this.opts.activationNoise?.learned) this.declare(`noise/${name}`, [], { kind: 'const', value: this.opts.activationNoise.sd });
    return (P, x, ctx) => {
      let y = this.opts.activationBits ? quantizeActivations(x, this.opts.activationBits) : tf.relu(x);
      if (this.opts.activationNoise) y = noise(P, name, y, this.opts.activationNoise, ctx);
      return y;
    };
  }
}

export function seq(...layers: Layer[]): Layer {
  return (P, x, ctx) => layers.reduce((h, l) => l(P, h, ctx), x);
}

export const maxPool2: Layer = (_P, x) => (x.shape[1]! >= 2 && x.shape[2]! >= 2 ? tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid') : x);
export const flatten: Layer = (_P, x) => tf.reshape(x, [x.shape[0]!, -1]);
export const globalAvgPool: Layer = (_P, x) => tf.mean(x, [1, 2]);
