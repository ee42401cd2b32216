/** Helpers shared by the operations. */
import { summaryAs, type OpName, type TrainParams } from '../../compiler/contract.js';
import { num } from '../../compiler/jsonsafe.js';
import type { Artifact } from '../artifact.js';
import type { OpContext } from '../executor/types.js';
import type { ModelSpec } from '../models/model.js';
import type { NoiseConfig } from '../models/net.js';

export function single(a: Artifact | Artifact[] | undefined, role: string): Artifact {
  if (!a || Array.isArray(a)) throw new Error(`input '${role}' missing`);
  return a;
}
export function list(a: Artifact | Artifact[] | undefined): Artifact[] {
  return a === undefined ? [] : Array.isArray(a) ? a : [a];
}

export function modelSpec(p: Omit<TrainParams, 'train' | 'method'>, data: Artifact): ModelSpec {
  const ds = summaryAs('dataset', data.summary);
  const noise: ModelSpec['noise'] = {};
  for (const k of ['input', 'weight', 'activation'] as const) {
    const n = p.noise[k];
    if (n) noise[k] = { learned: n.learned, sd: num(n.sd) } satisfies NoiseConfig;
  }
  return {
    arch: p.arch,
    width: num(p.width),
    shape: p.shape,
    classes: p.classes,
    input: p.input,
    weightBits: p.weightBits,
    activationBits: p.activationBits,
    noise,
    mean: ds.mean,
    std: ds.std,
  };
}

/** Test images (and labels) the attack nodes use: the first n of the test split. */
export function testCount(data: Artifact, images?: number): number {
  const n = data.tensors.testY!.shape[0]!;
  return images === undefined ? n : Math.min(n, images);
}

/**
 * Progress of a node that works through `total` images (attacks report fractions of a batch as
 * they step): images/s and ETA since the start, at most one event per 100 ms unless forced.
 */
export function imageProgress<K extends OpName>(ctx: OpContext<K>, phase: string, total: number): (done: number, force?: boolean) => void {
  const t0 = performance.now();
  let last = -Infinity;
  return (done, force = false) => {
    const now = performance.now();
    if (!force && now - last < 100) return;
    last = now;
    const rate = now > t0 ? done / ((now - t0) / 1000) : 0;
    const round1 = (v: number) => Math.round(v * 10) / 10;
    ctx.progress({ phase, done: Math.floor(done), total, unit: 'images', ...(rate > 0 ? { rate: round1(rate), eta: round1((total - done) / rate) } : {}) });
  };
}
