// The executor's parts on their own: planning, the failure policy, one node run by key, explain.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Dag } from '../../src/compiler/dag.js';
import type { Artifact } from '../../src/runtime/artifact.js';
import { explainNodes } from '../../src/runtime/executor/explain.js';
import { readiness, runGraph } from '../../src/runtime/executor/graph.js';
import { planRun } from '../../src/runtime/executor/plan.js';
import { RunLog } from '../../src/runtime/executor/records.js';
import { nodeContext, runNode, runNodeByKey } from '../../src/runtime/executor/run-node.js';
import type { OpProvider } from '../../src/runtime/executor/types.js';
import { Store } from '../../src/store/store.js';
import { TOY } from '../helpers/cli.js';
import { plan } from '../helpers/compile.js';

/** Operations that record what they ran and fail on node ids containing `fail`. */
function fakeOps(ran: string[], fail = '\0'): OpProvider {
  return {
    init: async () => 'fake',
    // Loosely typed: these fakes stand in for every operation.
    get: (async (op: string) => async (ctx: { node: { id: string }; inputs: Record<string, Artifact | Artifact[]> }) => {
      ran.push(ctx.node.id);
      if (ctx.node.id.includes(fail)) throw new Error(`fake failure in ${ctx.node.id}`);
      let acc = 1;
      for (const v of Object.values(ctx.inputs)) for (const a of Array.isArray(v) ? v : [v]) acc += (a.summary as { value: number }).value;
      return { artifact: { summary: { op, value: acc }, tensors: { data: { dtype: 'float32', shape: [1], data: new Float32Array([acc]) } } } };
    }) as unknown as OpProvider['get'],
  };
}

const stores: Store[] = [];
async function freshStore(): Promise<Store> {
  const s = await Store.open(join(mkdtempSync(join(tmpdir(), 'trend-parts-')), 'cache'));
  stores.push(s);
  return s;
}
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('plan', () => {
  it('selects what --only needs, and says why each node must run', async () => {
    const dag = await plan(TOY);
    const store = await freshStore();
    const all = planRun(dag, store);
    expect(all.nodes.length).toBe(dag.nodes.length);
    expect(all.toRun.every((t) => t.reason === 'not stored')).toBe(true);
    const only = planRun(dag, store, { only: ['predict/a'], force: ['train/*'] });
    expect(only.nodes.map((n) => n.id)).toEqual(['dataset/toy', 'train/a', 'predict/a']);
    expect(only.toRun.map((t) => `${t.node.id}: ${t.reason}`)).toEqual(['dataset/toy: not stored', 'train/a: forced', 'predict/a: not stored']);
  });
});

describe('failure policy', () => {
  it('keep-going skips dependants of a failure, waits on pending inputs, runs the rest', () => {
    expect(readiness(['ran', 'failed'], 'keep-going')).toBe('skip');
    expect(readiness(['skipped', 'pending'], 'keep-going')).toBe('skip');
    expect(readiness(['cached', 'pending'], 'keep-going')).toBe('wait');
    expect(readiness(['cached', 'ran'], 'keep-going')).toBe('ready');
    expect(readiness([], 'keep-going')).toBe('ready');
  });

  it('runGraph lets other branches finish and skips what needs the failed node', async () => {
    const dag: Dag = await plan(TOY);
    const store = await freshStore();
    const ran: string[] = [];
    const ctx = nodeContext(dag, store, fakeOps(ran, 'train/b'), { pipeline: 'toy.trend' });
    const p = planRun(dag, store);
    const r = await runGraph(p.nodes, { jobs: 2, policy: 'keep-going', isCached: p.isCached, runNode: (n) => runNode(ctx, n), log: ctx.log, emit: () => {} });
    expect(r.interrupted).toBe(false);
    const s = ctx.log.statuses;
    expect(s.get('train/b')).toBe('failed');
    expect(s.get('predict/b')).toBe('skipped');
    expect(s.get('matrix/transfer1')).toBe('skipped');
    expect(s.get('transfer/pgd/a->a')).toBe('ran');
    expect(s.get('transfer/pgd/c->a')).toBe('ran');
    expect(ran).not.toContain('predict/b');
  });
});

describe('run one node by key', () => {
  it('reads its inputs from the store and writes its artifact there', async () => {
    const dag = await plan(TOY);
    const store = await freshStore();
    const ran: string[] = [];
    const first = nodeContext(dag, store, fakeOps(ran), { pipeline: 'toy.trend' });
    await runNodeByKey(first, dag.byId.get('dataset/toy')!.key);
    await runNodeByKey(first, dag.byId.get('train/a')!.key);
    // A second process (a fresh context, nothing in memory) runs the next node from the store.
    const second = nodeContext(dag, store, fakeOps(ran), { pipeline: 'toy.trend' });
    const key = dag.byId.get('predict/a')!.key;
    await runNodeByKey(second, key);
    expect(ran).toEqual(['dataset/toy', 'train/a', 'predict/a']);
    expect(second.log.status('predict/a')).toBe('ran');
    expect(store.meta(key)!.inputs).toEqual({ data: dag.byId.get('dataset/toy')!.key, models: [dag.byId.get('train/a')!.key] });
    // Stored now: running it again takes it from the store.
    await runNodeByKey(second, key);
    expect(second.log.status('predict/a')).toBe('cached');
    expect(ran.length).toBe(3);
    await expect(runNodeByKey(second, 'f'.repeat(32))).rejects.toThrow(/no node of this pipeline has key/);
  });
});

describe('explain', () => {
  it('names every node new when the pipeline never ran, and none once all are stored', async () => {
    const dag = await plan(TOY);
    const store = await freshStore();
    const items = explainNodes(dag, store, undefined);
    expect(items.length).toBe(dag.nodes.length);
    expect(new Set(items.map((i) => i.reason))).toEqual(new Set(['new node (no earlier run of this pipeline)']));
    const ctx = nodeContext(dag, store, fakeOps([]), { pipeline: 'toy.trend' });
    for (const n of dag.nodes) await runNodeByKey(ctx, n.key);
    expect(explainNodes(dag, store, undefined)).toEqual([]);
  });
});

it('a run log counts statuses', () => {
  const log = new RunLog([]);
  log.set('a', 'cached');
  log.ran('b', 5);
  expect(log.counts()).toEqual({ cached: 1, ran: 1, failed: 0, skipped: 0, pending: 0 });
});
