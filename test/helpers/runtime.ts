import type { ModelSpec } from '../../src/runtime/models/model.js';
import type { TrainSettings } from '../../src/runtime/training/train.js';
import type { OpName, OpParams } from '../../src/compiler/contract.js';
import type { DagNode } from '../../src/compiler/dag.js';
import type { Artifact } from '../../src/runtime/artifact.js';
import type { OpContext } from '../../src/runtime/executor/types.js';
import { jsonSafe } from '../../src/compiler/jsonsafe.js';
import { createOps } from '../../src/runtime/ops/registry.js';
import { datasetIdentity } from '../../src/runtime/data/files.js';
import { datasetOp } from '../../src/runtime/ops/dataset.js';
import { plan } from './compile.js';
import type { AttackTarget } from '../../src/runtime/attacks/base.js';
import { rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';

/**
 * An operation context for calling an op directly in a test. The parameters are taken as the test
 * writes them (some tests give deliberately partial or other-version parameters); K is the
 * operation called, inferred from the call the context is passed to.
 */
export function fakeContext<K extends OpName = OpName>(
  params: unknown,
  inputs: Record<string, Artifact | Artifact[]> = {},
  info: DagNode['info'] = {},
): OpContext<K> {
  return {
    node: {
      id: 'test',
      op: 'dataset',
      key: 'k',
      params: params as DagNode['params'],
      inputs: {},
      loc: { file: 't', line: 1, col: 1, endLine: 1, endCol: 1 },
      info,
    },
    params: params as OpParams<K>,
    inputs,
    progress: () => {},
    log: () => {},
    backend: 'test',
    signal: new AbortController().signal,
  };
}

/** SGD training settings for small test runs (3 epochs, batch 32, lr 0.05), with overrides. */
export function trainSettings(over: Partial<TrainSettings> = {}): TrainSettings {
  return { epochs: 3, batch: 32, lr: '1/20', momentum: '9/10', wd: '0', optimizer: 'sgd', seed: 1, schedule: 'step', ...over };
}

/** A plain (unquantised, noise-free) model spec with one input channel normalised by (0.5, 0.25). */
export function plainSpec(arch: string, width: number, shape: [number, number, number], classes: number): ModelSpec {
  return { arch, width, shape, classes, input: null, weightBits: null, activationBits: null, noise: {}, mean: [0.5], std: [0.25] };
}

/**
 * Plans a pipeline and runs every node in this process on the wasm backend, in DAG order: the
 * node ids, and every artifact and extra metadata by node id.
 */
export async function runPipeline(src: string): Promise<{ ids: string[]; artifacts: Map<string, Artifact>; extras: Map<string, Record<string, unknown>> }> {
  const dag = await plan(src);
  const ops = createOps('wasm');
  const artifacts = new Map<string, Artifact>();
  const extras = new Map<string, Record<string, unknown>>();
  for (const n of dag.nodes) {
    const impl = await ops.get(n.op);
    const inputs: Record<string, Artifact | Artifact[]> = {};
    for (const [role, v] of Object.entries(n.inputs)) inputs[role] = Array.isArray(v) ? v.map((id) => artifacts.get(id)!) : artifacts.get(v)!;
    const res = await impl({
      node: n,
      params: jsonSafe(n.params) as never,
      inputs,
      progress: () => {},
      log: () => {},
      backend: 'wasm',
      signal: new AbortController().signal,
    });
    artifacts.set(n.id, res.artifact);
    extras.set(n.id, res.extra ?? {});
  }
  return { ids: dag.nodes.map((n) => n.id), artifacts, extras };
}

/** A linear classifier on flattened images: logits = x W + b (attacks' closed-form tests). */
export function linear(W: number[][], b: number[]): AttackTarget {
  const w = tf.tensor2d(W);
  const bias = tf.tensor1d(b);
  const t: AttackTarget = {
    classes: b.length,
    members: [],
    logits: (x) => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), w), bias) as tf.Tensor2D,
    predict: (x) => tf.tidy(() => tf.argMax(t.logits(x, rng(0)), 1).dataSync() as Int32Array),
  };
  t.members.push(t);
  return t;
}

/** The MNIST dataset artifact of a seeded subset (seed 0, a tenth held out), planned with the files' real identity. */
export async function mnistSubset(train: number, test: number): Promise<Artifact> {
  const identity = await datasetIdentity({ name: 'mnist' });
  const params = { name: 'mnist', train, test, val: '1/10', seed: 0, shape: [28, 28, 1], classes: 10, identity };
  return (await datasetOp(fakeContext(params))).artifact;
}
