/**
 * The one registration list of trend's wasm kernels (as tfjs-backend-wasm's
 * register_all_kernels.ts): which kernel name each family's implementation serves, which shipped
 * kernels are kept as fallbacks, and the gradients that call our kernels. Each kernel is checked
 * against the cpu backend in test/runtime/kernels.test.ts.
 */
import { tf } from '../../tf.js';
import type { KernelPool } from '../kernel-pool.js';
import { BN_GRAD, BN_OP, bnGrad, bnTrain, registerBnGradient } from './batch-norm.js';
import { backpropFilterGemm, backpropInputGemm, CONV_OP, conv2d, registerConvGradient, trendConv } from './conv.js';
import { binary, identity, RELU_GRAD, reluGrad, sum } from './elementwise.js';
import { batchMatMul } from './matmul.js';
import { keepStock, setKernelState, type KernelImpl, type KernelModule } from './memory.js';
import { maxPool, maxPoolGrad } from './pool.js';

/** Shipped kernels ours replace only in part (the rest of their cases run the original). */
const STOCK_FALLBACKS = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Sum', 'BatchMatMul', 'MaxPool', 'Add', 'Multiply'];

const KERNELS: Array<[string, KernelImpl]> = [
  ['Conv2D', (a) => conv2d(a, false)],
  ['FusedConv2D', (a) => conv2d(a, true)],
  ['Conv2DBackpropFilter', backpropFilterGemm],
  ['Conv2DBackpropInput', backpropInputGemm],
  [CONV_OP, trendConv],
  ['MaxPool', maxPool],
  ['MaxPoolGrad', maxPoolGrad],
  [RELU_GRAD, reluGrad],
  ['Sum', sum],
  ['Identity', identity],
  ['Add', binary('Add', 0)],
  ['Multiply', binary('Multiply', 1)],
  ['BatchMatMul', batchMatMul],
  [BN_OP, bnTrain as unknown as KernelImpl],
  [BN_GRAD, bnGrad as unknown as KernelImpl],
];

let registered = false;

export function registerWasmKernels(k: KernelModule, pool: KernelPool, malloc: (n: number) => number, free: (p: number) => void): void {
  setKernelState(k, pool, malloc, free);
  if (!registered) STOCK_FALLBACKS.forEach(keepStock);
  for (const [kernelName, impl] of KERNELS) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: impl as unknown as tf.KernelFunc });
  }
  registerConvGradient();
  registerBnGradient();
  // The ReLU gradient calls our kernel on wasm and keeps the stock formula elsewhere.
  tf.unregisterGradient?.('Relu');
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [x] = saved as [tf.Tensor];
      const g = dy as tf.Tensor;
      return {
        x: () => (tf.getBackend() === 'wasm' ? (tf.engine().runKernel(RELU_GRAD, { dy: g, x }) as tf.Tensor) : tf.mul(g, tf.cast(tf.step(x), 'float32'))),
      };
    },
  });
  registered = true;
}
