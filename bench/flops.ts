/**
 * FLOPs of a zoo network, counted from the layers it runs: one forward pass of a single image is
 * traced with tf.profile, and every convolution and matrix product it runs is read from its
 * kernel's input and output shapes. So the count follows the zoo (zoo.ts, net.ts) as built, with
 * no second description of the architectures to drift from it.
 *
 * Convention (the one bench/cnn.ts uses), per image, multiply-adds counted as 2 FLOPs:
 *   conv  2 * Hout * Wout * Cout * Cin * kh * kw      dense  2 * in * out
 * Batch norm, activations, pooling, the normalisation and the loss are not counted. Each gradient
 * of a layer (to its input, to its weights) costs what its forward pass costs, so
 *   forward    F = sum over conv and dense layers
 *   inputGrad  F + F (forward, then every layer's input gradient down to the image)
 *   train      F + (F - F_first) + F (forward, input gradients except the first conv's, whose
 *              input is the image, and every weight gradient)
 */
import type { Model } from '../src/runtime/models/model.js';
import { tf } from '../src/runtime/tf.js';

export interface LayerFlops {
  kernel: string;
  /** Forward FLOPs per image. */
  flops: number;
}

export interface NetFlops {
  layers: LayerFlops[];
  forward: number;
  inputGrad: number;
  train: number;
}

const CONV = new Set(['Conv2D', 'FusedConv2D', 'TrendConv2D']);
const MATMUL = new Set(['BatchMatMul', '_FusedMatMul', 'MatMul']);
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Forward FLOPs of one traced kernel (batch 1), or undefined when it is neither conv nor matmul. */
export function kernelFlops(name: string, inputShapes: number[][], outputShape: number[]): number | undefined {
  if (CONV.has(name)) {
    const [kh, kw, cin] = inputShapes[1]!; // filter [kh, kw, cin, cout]; output [1, Hout, Wout, Cout]
    return 2 * size(outputShape) * kh! * kw! * cin!;
  }
  // The dense layers multiply without transposes: the inner dimension is a's last.
  if (MATMUL.has(name)) return 2 * size(outputShape) * inputShapes[0]!.at(-1)!;
  return undefined;
}

/** Totals under the convention above, from the forward layers in execution order. */
export function totals(layers: LayerFlops[]): NetFlops {
  const forward = layers.reduce((s, l) => s + l.flops, 0);
  const first = layers.find((l) => CONV.has(l.kernel))?.flops ?? 0;
  return { layers, forward, inputGrad: 2 * forward, train: 3 * forward - first };
}

/** The conv and matmul layers a function runs, traced once (give it a single image). */
export async function traceLayers(f: () => tf.Tensor): Promise<LayerFlops[]> {
  const info = await tf.profile(() => tf.tidy(f));
  (info.result as tf.Tensor).dispose();
  const layers: LayerFlops[] = [];
  for (const k of info.kernels) {
    const flops = kernelFlops(k.name, k.inputShapes, k.outputShapes[0]!);
    if (flops !== undefined) layers.push({ kernel: k.name, flops });
  }
  return layers;
}

/** Traces one evaluation-mode forward pass of a single image through the model. */
export async function netFlops(model: Model): Promise<NetFlops> {
  const [h, w, c] = model.spec.shape;
  const x = tf.zeros([1, h, w, c]) as tf.Tensor4D;
  try {
    return totals(await traceLayers(() => model.logits(x, { training: false })));
  } finally {
    x.dispose();
  }
}
