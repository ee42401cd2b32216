/** Batch norm in training mode: one forward kernel and a closed-form backward kernel. */
import { tf } from '../../tf.js';
import { k, kernelModule, off, scratchFor, type KernelArgs, type TensorInfo, type WasmBackend } from './memory.js';

/**
 * Batch norm in training mode as one kernel with outputs [y, batch mean, batch variance], and a
 * closed-form backward kernel (TF.js's gradient is built from Tile and broadcasts, slow on wasm).
 */
export const BN_OP = 'TrendBatchNormTrain';
export const BN_GRAD = 'TrendBatchNormGrad';

/** A channels-last shape seen as a [rows, channels] matrix. */
function rowsByChannels(shape: number[]): [number, number] {
  const c = shape[shape.length - 1]!;
  return [tf.util.sizeFromShape(shape) / c, c];
}

export function bnTrain({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as WasmBackend;
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const [M, C] = rowsByChannels(x.shape);
  const y = b.makeOutput(x.shape, 'float32');
  const mean = b.makeOutput([C], 'float32');
  const variance = b.makeOutput([C], 'float32');
  // acc: C doubles of the shared scratch (the kernel runs on this thread alone)
  k().bn_train_forward(off(b, x), off(b, gamma), off(b, beta), off(b, y), off(b, mean), off(b, variance), scratchFor(2 * C)(0), M, C, attrs.eps as number);
  return [y, mean, variance];
}

export function bnGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as WasmBackend;
  const { x, dy, gamma, mean, variance } = inputs as Record<string, TensorInfo>;
  const [M, C] = rowsByChannels(x!.shape);
  const dx = b.makeOutput(x!.shape, 'float32');
  const dg = b.makeOutput([C], 'float32');
  const db = b.makeOutput([C], 'float32');
  // acc: 4C doubles of the shared scratch
  k().bn_train_backward(
    off(b, x!),
    off(b, dy!),
    off(b, gamma!),
    off(b, mean!),
    off(b, variance!),
    off(b, dx),
    off(b, dg),
    off(b, db),
    scratchFor(8 * C)(0),
    M,
    C,
    attrs.eps as number,
  );
  return [dx, dg, db];
}

export function registerBnGradient(): void {
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
