// Keys hold exactly what changes results. For every node of a pipeline that uses every
// operation, method, attack, quantiser, noise and classifier kind, each parameter in the node's
// key is replaced in turn, and the operation run again on the same inputs: first by a stand-in
// that throws when it is used as a value (so a number the operation computes with is caught at
// once, whatever the data), then by other valid values. A parameter is used if the stand-in
// makes the operation fail, or some value changes what it produces (its tensors, its summary
// less echoes of the parameters themselves, and for a model, its logits and input gradients as
// every later step sees them) on the pipeline's inputs or on a few inputs made to show effects
// that depend on the data. A parameter that is not used is in the key for nothing: it splits the
// cache, or worse, promises a setting that is silently ignored (bpda on a K-bit quantiser,
// momentum under Adam, an ensemble's tie-break seed). Such a parameter fails the test.
import type { OpName, OpParams } from '../../src/compiler/contract.js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Dag, DagNode } from '../../src/compiler/dag.js';
import { jsonSafe } from '../../src/compiler/jsonsafe.js';
import {
  ATTACKS,
  ARCHS,
  DATASET_PARAMS,
  DATASETS,
  ENSEMBLE_PARAMS,
  METHOD_PARAMS,
  METHODS,
  MODEL_PARAMS,
  SMOOTH_PARAMS,
  type ParamSpec,
} from '../../src/compiler/schema.js';
import { canonicalJson, type Artifact } from '../../src/runtime/artifact.js';
import { lossGrad, oneHot } from '../../src/runtime/attacks/base.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { datasetIdentity } from '../../src/runtime/data/files.js';
import { modelTarget } from '../../src/runtime/eval/classifier.js';
import type { OpImpl } from '../../src/runtime/executor/types.js';
import { Model } from '../../src/runtime/models/model.js';
import { createOps } from '../../src/runtime/ops/registry.js';
import { rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { imageBatch, labelBatch, range } from '../../src/runtime/training/batches.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSource, planChecked } from '../../src/compiler/compile.js';
import { encodeSafetensors } from '../../src/runtime/export.js';
import { inspectWeights } from '../../src/runtime/models/inspect-weights.js';
import { plainSpec } from '../helpers/runtime.js';

/**
 * Every operation, training method, attack, quantiser, noise and classifier kind, at toy sizes on
 * a sliver of MNIST (ten classes; barely trained models, so votes, noise and attacks are
 * contested). Attacked models have input noise and batch-statistic input quantisation, so that an
 * attack's seed and batch can matter; TREND has four candidates for k=3, so its selection has a
 * choice to make; epochs=3, so the learning-rate schedule takes effect.
 */
const PIPELINE = `dataset mnist subset train=20 test=12 val=1/5 seed=1
train epochs=3 batch=16 lr=1/20 momentum=4/5 wd=1/1000

attack tp = pgd eps=1/10 steps=1 step=1/20
attack t1 = pgd norm=l1 eps=5 steps=1 topk=1/20
attack tf = fgsm eps=1/10

model a  = mlp width=1/8 quant input 2bit noise input 1/10
model b  = mlp width=1/8 quant input 2bit qstats=image noise input 1/10 seed 2 train adversarial attack=t1 mix=1/2
model h  = mlp width=1/8 quant input halftone bpda=identity quant weight 2bit quant activation 2bit noise weight learned noise activation 1/10 optimizer adam lr=1/100 schedule=constant train avg attacks=[tp, tf]
model f  = mlp width=1/8 noise input 1/10 seed 3..4
model mx = mlp width=1/8 train max attacks=[tp, tf]
model ea = mlp width=1/8 train eat attacks=[tp, tf]
model r1 = mlp width=1/8 from a train ramp pair=[tp, tf] lambda=1 beta=1/2 gp=true
model r2 = mlp width=1/8 train ramp pair=[tf, tp] lambda=1 gp=false

ensemble e = a, b seed=1
ensemble t = trend k=3 objective=max from a, b, f.1, f.2 using pgd norm=l1
smooth s  = a sd=2 m=3 vote=soft average=logits seed=1 batch=5
smooth s2 = b sd=1/2 m=3 seed=1 batch=5

transfer pgd eps=1/10 steps=2 step=1/20, pgd norm=l1 eps=5 steps=2 topk=1/20, pgd norm=l2 eps=1 steps=2 restarts=2, fgsm eps=1/10, cw c=10 kappa=1/10 steps=4 search=2 lr=1/10, deepfool steps=3 candidates=4 eps=3/10, epgd eps=1/10 steps=2 m=2 sd=1/4 from a, b, f.1, f.2 to a, b, f.1, f.2, e, s, s2 with images=8 batch=4 seed=1
transfer fgsm eps=[1/20, 1/10, 1/5] from f to f with images=8 batch=4
evaluate e against agd eps=1/10 steps=2 step=1/20, empir eps=1/10 steps=2 step=1/20 with images=8 batch=4 seed=1
evaluate t against dag eps=1/10 steps=2 step=1/20, ugd eps=1/10 steps=2 step=1/20 with images=8 batch=4 seed=1
evaluate s against pgd eps=1/10 steps=2 step=1/20, epgd eps=1/10 steps=2 m=2 with images=8 batch=4 seed=1
evaluate a against pgd eps=1/10 steps=2 step=1/20, fgsm eps=1/10 with images=8 batch=4 seed=1 union
evaluate a against apgd eps=1/10 steps=5 loss=dlr rho=1/2 restarts=2, apgd norm=l1 eps=5 steps=5, apgdt norm=l2 eps=1 steps=5 targets=2 with images=8 batch=4 seed=1
evaluate a against apgd eps=1/10 steps=4 eot=2, apgdt norm=l1 eps=5 steps=5 targets=2 largereps=true, autoattack eps=3/10 with images=4 batch=4 seed=1
evaluate a against fabt eps=3/10 steps=10 restarts=2 targets=2 alpha_max=1/5 eta=11/10 beta=4/5 with images=8 batch=4 seed=1
evaluate a against square eps=1/10 queries=4 p_init=1/2 restarts=2, square norm=l2 eps=1 queries=4, nattack eps=1/10 steps=2 population=4 sigma=1/5 lr=1/10 with images=8 batch=4 seed=1
`;

/**
 * Key parameters that no run of the operation can show to matter, each with the reason it
 * belongs in the key anyway. Nothing else may be here.
 */
const NOT_MUTABLE: Array<{ what: string; reason: string; applies: (op: string, path: Path, value: unknown) => boolean }> = [
  {
    what: "an ensemble's vote rule",
    reason: "a choice with one allowed value ('majority'): it names the rule and cannot split the cache",
    applies: (_op, path, value) => path.at(-1) === 'vote' && value === 'majority',
  },
];

/** Fields of a summary that repeat the node's own parameters (they would hide an unused one). */
const ECHO: Record<string, string[]> = {
  dataset: ['name', 'shape', 'classes'],
  train: ['spec', 'method'],
  predict: ['kind', 'smooth'],
  adversarial: ['attack'],
  robust: ['attack', 'kind'],
  matrix: ['sources', 'targets', 'attacks.sweep'],
};

type Path = Array<string | number>;

function leaves(v: unknown, path: Path = []): Array<{ path: Path; value: unknown }> {
  if (v !== null && typeof v === 'object') {
    const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
    return entries.flatMap(([k, x]) => leaves(x, [...path, k]));
  }
  return [{ path, value: v }];
}

/**
 * A stand-in that throws as soon as it is used as a value (arithmetic, comparison by size,
 * conversion to a string or number): copying it around, as spreads, JSON copies and summaries
 * do, is not a use. A parameter whose stand-in makes the operation fail is read.
 */
const POISON = {
  [Symbol.toPrimitive](): never {
    throw new Error('poisoned parameter used');
  },
};

function setAt(obj: unknown, path: Path, value: unknown): unknown {
  const copy = structuredClone(obj) as Record<string | number, unknown>;
  let o = copy;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[path.at(-1)!] = value;
  return copy;
}

const pathName = (p: Path) =>
  p
    .map((k) => (typeof k === 'number' ? `[${k}]` : k))
    .join('.')
    .replace(/\.\[/g, '[');

const CHOICES: Record<string, readonly string[]> = {
  arch: ['cnn', 'mlp', ...Object.keys(ARCHS)],
  attack: Object.keys(ATTACKS),
  bpda: ['sigmoid', 'identity'],
  stats: ['batch', 'image'],
  vote: SMOOTH_PARAMS.vote!.type.t === 'choice' ? SMOOTH_PARAMS.vote!.type.choices : [],
};
function choicesFor(key: string, path: Path): readonly string[] | undefined {
  if (CHOICES[key]) return CHOICES[key];
  if (key === 'name') return path.length === 1 ? Object.keys(DATASETS) : path.includes('method') ? METHODS : undefined;
  if (key === 'kind') return path.includes('input') ? ['bits', 'halftone'] : ['model', 'ensemble', 'smooth'];
  const tables: Array<Record<string, ParamSpec>> = [
    MODEL_PARAMS,
    DATASET_PARAMS,
    ENSEMBLE_PARAMS,
    SMOOTH_PARAMS,
    ...Object.values(METHOD_PARAMS),
    ...Object.values(ATTACKS).map((a) => a.params),
  ];
  for (const t of tables) {
    const s = t[key];
    if (s?.type.t === 'choice') return s.type.choices;
  }
  return undefined;
}

/** Other valid-looking values for one leaf, most likely to matter first. */
function alternatives(path: Path, value: unknown): unknown[] {
  const key = String([...path].reverse().find((k) => typeof k === 'string'));
  if (typeof value === 'boolean') return [!value];
  if (value === null) {
    if (key === 'weightBits' || key === 'activationBits') return [2];
    if (key === 'input') return [{ kind: 'bits', bits: 2, stats: 'batch' }];
    return [5];
  }
  if (typeof value === 'number') return [...new Set([value + 1, value - 1, value * 2, Math.floor(value / 2)])].filter((x) => x >= 0 && x !== value);
  if (typeof value === 'string' && /^-?\d+(\/\d+)?$/.test(value)) {
    const [a, b] = value.split('/');
    const x = Number(a) / Number(b ?? 1);
    return [x / 2, x * 1.5, x + 0.1, x + 1].filter((y) => y !== x).map(String);
  }
  if (typeof value === 'string') return (choicesFor(key, path) ?? []).filter((c) => c !== value);
  return [];
}

let ops: { get(op: string): Promise<OpImpl> };

interface Planned {
  dag: Dag;
  artifacts: Map<string, Artifact>;
}
const planned: Planned[] = [];

async function runOp(pl: Planned, n: DagNode, params: unknown): Promise<Artifact> {
  const impl = await ops.get(n.op);
  const inputs: Record<string, Artifact | Artifact[]> = {};
  for (const [role, v] of Object.entries(n.inputs)) inputs[role] = Array.isArray(v) ? v.map((id) => pl.artifacts.get(id)!) : pl.artifacts.get(v)!;
  const res = await impl({
    node: n,
    params: params as OpParams<OpName>,
    inputs,
    progress: () => {},
    log: () => {},
    backend: 'wasm',
    signal: new AbortController().signal,
  });
  return res.artifact;
}

/**
 * Other inputs on which to run an operation, for parameters whose effect depends on the data:
 * a parameter is used if changing it changes the result on some input. For a smoothed
 * classifier, sharper models; for a selection, a matrix whose pairwise TM makes the sum and the
 * max objectives choose different members.
 */
function otherInputs(pl: Planned, n: DagNode, params: unknown): Array<Map<string, Artifact>> {
  if (JSON.stringify(params).includes('"kind":"smooth"')) {
    // Models with confident logits (the output layer scaled up): a soft vote over noisy samples
    // then tends to differ between averaging logits and averaging probabilities.
    return [20, 200].map((scale) => {
      const artifacts = new Map(pl.artifacts);
      for (const [id, a] of pl.artifacts) {
        if (!id.startsWith('train/')) continue;
        const tensors = { ...a.tensors };
        for (const k of ['p/out/w', 'p/out/b']) tensors[k] = { ...tensors[k]!, data: Float32Array.from(tensors[k]!.data, (v) => v * scale) };
        artifacts.set(id, { ...a, tensors });
      }
      return artifacts;
    });
  }
  if (n.op !== 'select') return [];
  const p = params as { attackIndex: number; candidates: Array<{ col: number; row: number }> };
  if (p.candidates.length !== 4) return [];
  const matrixId = n.inputs.matrix as string;
  const m = structuredClone(pl.artifacts.get(matrixId)!.summary) as { attacks: Array<{ tm: Array<Array<number | null>> }> };
  // Pairs 01, 02 cost 0, 12 costs 0.9, the rest 0.5: by sum {0,1,2} (0.9) wins, by max {0,1,3} (0.5).
  const cost = (i: number, j: number) => ([i, j].sort().join() === '0,1' || [i, j].sort().join() === '0,2' ? 0 : [i, j].sort().join() === '1,2' ? 0.9 : 0.5);
  const tm = m.attacks[p.attackIndex]!.tm;
  p.candidates.forEach((ci, i) => p.candidates.forEach((cj, j) => i !== j && (tm[cj.row]![ci.col] = cost(i, j))));
  const artifacts = new Map(pl.artifacts);
  artifacts.set(matrixId, { summary: m as unknown as Artifact['summary'], tensors: {} });
  return [artifacts];
}

function stripEcho(op: string, summary: unknown): unknown {
  const s = structuredClone(summary) as Record<string, unknown>;
  for (const f of ECHO[op] ?? []) {
    const [head, tail] = f.split('.');
    if (!tail) delete s[head!];
    else if (Array.isArray(s[head!])) for (const x of s[head!] as Array<Record<string, unknown>>) delete x[tail];
  }
  return s;
}

/** What later steps can observe of an artifact. */
function observable(pl: Planned, op: string, a: Artifact): string {
  const parts = [canonicalJson(stripEcho(op, a.summary))];
  for (const k of Object.keys(a.tensors).sort()) {
    const t = a.tensors[k]!;
    parts.push(`${k}:${t.shape.join('x')}:${Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')}`);
  }
  if (op === 'train') {
    // The model as every consumer sees it: logits and input gradients on a probe batch.
    const data = pl.artifacts.get(pl.dag.nodes[0]!.id)!;
    const idx = range(0, 8);
    const m = Model.fromArtifact(a);
    const t = modelTarget(m);
    tf.tidy(() => {
      const x = imageBatch(data.tensors.testX!, idx);
      const yh = oneHot(labelBatch(data.tensors.testY!, idx), m.spec.classes);
      parts.push(Array.from(t.logits(x, rng(0, 'probe')).dataSync()).join(','));
      parts.push(Array.from(lossGrad(t, x, yh, rng(0, 'probe')).dataSync()).join(','));
    });
    m.dispose();
  }
  return parts.join('\n');
}

describe('every key parameter changes what its operation produces', () => {
  const unused: string[] = [];
  const skipped = new Set<string>();

  beforeAll(async () => {
    await selectBackend('wasm');
    ops = createOps('wasm');
    // An imported model: weights written in trend's own layout for an mlp on MNIST.
    const w = join(mkdtempSync(join(tmpdir(), 'trend-keys-')), 'w.safetensors');
    const donor = Model.create(plainSpec('mlp', 1 / 8, [28, 28, 1], 10), 5);
    const named = Object.fromEntries(Object.entries(donor.tensors()).map(([k, t]) => [k.replace(/^p\//, ''), t]));
    writeFileSync(w, encodeSafetensors(named, { format: 'trend' }));
    donor.dispose();
    for (const src of [PIPELINE + `model w = mlp width=1/8 weights="${w}"\nevaluate w against fgsm eps=1/10 with images=8 batch=4\n`]) {
      const c = checkSource(src, 'test.trend');
      if (!c.checked) throw new Error(c.diagnostics.map((d) => d.message).join('\n'));
      const weights = await inspectWeights(c.checked);
      expect(weights.diagnostics).toEqual([]);
      const pl: Planned = {
        dag: await planChecked(c.checked, '0.0.0-test', await datasetIdentity(c.checked.dataset), weights.checksums),
        artifacts: new Map(),
      };
      for (const n of pl.dag.nodes) pl.artifacts.set(n.id, await runOp(pl, n, jsonSafe(n.params)));
      planned.push(pl);
    }
  }, 600_000);

  it('the pipeline covers every operation and every schema parameter', () => {
    const nodes = planned.flatMap((pl) => pl.dag.nodes);
    expect(new Set(nodes.map((n) => n.op))).toEqual(new Set(['dataset', 'train', 'predict', 'adversarial', 'transfer', 'matrix', 'select', 'robust', 'union']));
    const names = new Set(nodes.flatMap((n) => leaves(jsonSafe(n.params)).map((l) => String([...l.path].reverse().find((k) => typeof k === 'string')))));
    const schemaNames = new Map<string, string>();
    for (const [k] of Object.entries(DATASET_PARAMS)) schemaNames.set(k, 'dataset');
    for (const [k] of Object.entries(MODEL_PARAMS)) schemaNames.set(k, 'model');
    for (const [m, t] of Object.entries(METHOD_PARAMS)) for (const k of Object.keys(t)) schemaNames.set(k, `method ${m}`);
    for (const [a, info] of Object.entries(ATTACKS)) for (const k of Object.keys(info.params)) schemaNames.set(k, `attack ${a}`);
    for (const k of Object.keys(ENSEMBLE_PARAMS)) schemaNames.set(k, 'ensemble');
    for (const k of Object.keys(SMOOTH_PARAMS)) schemaNames.set(k, 'smooth');
    // Written under another name in the key, or kept out of it on purpose.
    const renamed: Record<string, string> = { qstats: 'stats', path: 'identity', attacks: 'attack', pair: 'attack', weights: 'checksum' };
    const missing = [...schemaNames].filter(([k]) => !names.has(renamed[k] ?? k)).map(([k, where]) => `${where}: ${k}`);
    expect(missing).toEqual([]);
  });

  it('no key parameter is ignored', async () => {
    // Nodes grouped by (operation, parameters): the nodes of a group differ only in their
    // inputs, and a parameter is used if changing it changes the result on some node's inputs
    // (the first node of a group, in DAG order, depends on the keys, so on the dataset identity).
    const groups = new Map<string, Array<{ pl: Planned; n: DagNode }>>();
    for (const pl of planned) {
      for (const n of pl.dag.nodes) {
        const sig = `${n.op} ${canonicalJson(jsonSafe(n.params))}`;
        groups.set(sig, [...(groups.get(sig) ?? []), { pl, n }]);
      }
    }
    for (const group of groups.values()) {
      const first = group[0]!;
      const params = jsonSafe(first.n.params);
      // The comparison means something only if a rerun reproduces the artifact.
      expect(observable(first.pl, first.n.op, await runOp(first.pl, first.n, params)), `${first.n.id} is not deterministic`).toBe(
        observable(first.pl, first.n.op, first.pl.artifacts.get(first.n.id)!),
      );
      for (const { path, value } of leaves(params)) {
        const skip = NOT_MUTABLE.find((x) => x.applies(first.n.op, path, value));
        if (skip) {
          skipped.add(skip.what);
          continue;
        }
        const alts = alternatives(path, value);
        let matters = false;
        for (const { pl, n } of group) {
          const base = observable(pl, n.op, pl.artifacts.get(n.id)!);
          for (const ctx of [pl, ...otherInputs(pl, n, params).map((artifacts) => ({ ...pl, artifacts }))]) {
            const before = ctx === pl ? base : observable(ctx, n.op, await runOp(ctx, n, params));
            for (const alt of [POISON, ...alts]) {
              try {
                matters = observable(ctx, n.op, await runOp(ctx, n, setAt(params, path, alt))) !== before;
              } catch {
                matters = true; // the operation read the value (and could not work with this one)
              }
              if (matters) break;
            }
            if (matters) break;
          }
          if (matters) break;
        }
        if (!matters)
          unused.push(
            `${group.map((g) => g.n.id).join(', ')}: ${pathName(path)} = ${JSON.stringify(value)}${alts.length ? ` (tried ${alts.map((x) => JSON.stringify(x)).join(', ')})` : ' (no other value to try)'}`,
          );
      }
    }
    expect(unused).toEqual([]);
    for (const x of NOT_MUTABLE) expect(skipped, `NOT_MUTABLE lists ${x.what}, which no key holds any more`).toContain(x.what);
  }, 900_000);
});
