/**
 * The runtime's operations, loaded lazily: importing this module loads nothing heavy; the
 * backend (and TF.js) load on init(), which the executor calls only if some node must run.
 */
import type { OpName } from '../../compiler/contract.js';
import { StepError, type OpFn, type OpProvider } from '../executor/types.js';

/** One loader per operation of the contract, each typed by its operation. */
const LOADERS: { [K in OpName]: () => Promise<OpFn<K>> } = {
  dataset: async () => (await import('./dataset.js')).datasetOp,
  train: async () => (await import('./train.js')).trainOp,
  predict: async () => (await import('./predict.js')).predictOp,
  adversarial: async () => (await import('./adversarial.js')).adversarialOp,
  transfer: async () => (await import('./transfer.js')).transferOp,
  matrix: async () => (await import('./matrix.js')).matrixOp,
  select: async () => (await import('./select.js')).selectOp,
  robust: async () => (await import('./robust.js')).robustOp,
  union: async () => (await import('./union.js')).unionOp,
};

export function createOps(backend: string): OpProvider {
  return {
    async init() {
      const { selectBackend } = await import('../backends/select.js');
      return (await selectBackend(backend)).description;
    },
    async get<K extends OpName>(op: K): Promise<OpFn<K>> {
      const load: (() => Promise<OpFn<K>>) | undefined = LOADERS[op];
      if (!load) throw new StepError(`no implementation for operation '${op}'`);
      return load();
    },
  };
}
