/**
 * The job side (`trendc exec-node`): run the nodes of one job from the store, write an outcome
 * per node into the job's directory. Inputs are read from the shared store and the artifacts go
 * to it; a worker never opens the LMDB index (the caller opens the store without it), so workers
 * on other hosts never write LMDB over NFS.
 */
import { join } from 'node:path';
import type { Dag } from '../../../compiler/dag.js';
import type { Store } from '../../../store/store.js';
import { nodeByKey } from '../plan.js';
import { nodeContext, runNode } from '../run-node.js';
import type { OpProvider, RunEvent } from '../types.js';
import { writeJson, type JobSpec, type NodeOutcome } from './job.js';
import { currentHost } from '../../../store/owner.js';

/** Runs the job's nodes in order; returns how many failed. */
export async function runJob(
  dag: Dag,
  store: Store,
  ops: OpProvider,
  spec: JobSpec,
  dir: string,
  o: { signal?: AbortSignal; emit?: (e: RunEvent) => void },
): Promise<number> {
  const ctx = nodeContext(dag, store, ops, { pipeline: spec.pipeline, ...o });
  const nodes = spec.keys.map((k) => nodeByKey(dag, k));
  const forced = new Set(spec.forced ?? []);
  ctx.forced = new Set(nodes.filter((n) => forced.has(n.key)).map((n) => n.id));
  let failed = 0;
  for (const n of nodes) {
    const startedAt = new Date().toISOString();
    if (o.signal?.aborted) ctx.log.failed(n, 'interrupted before it started');
    else await runNode(ctx, n);
    const status = ctx.log.status(n.id);
    const outcome: NodeOutcome = {
      key: n.key,
      id: n.id,
      status: status === 'ran' || status === 'cached' ? status : 'failed',
      ...(ctx.log.nodeErrors.has(n.id) ? { error: ctx.log.nodeErrors.get(n.id)! } : {}),
      ...(ctx.log.timings.has(n.id) ? { ms: ctx.log.timings.get(n.id)! } : {}),
      ...(ctx.log.outputs.get(n.id) ?? {}),
      host: currentHost(),
      startedAt,
      endedAt: new Date().toISOString(),
    };
    if (outcome.status === 'failed') failed++;
    writeJson(join(dir, 'nodes', `${n.key}.json`), outcome);
  }
  return failed;
}
