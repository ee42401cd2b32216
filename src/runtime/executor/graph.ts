/**
 * Running a planned selection in dependency order (as DVC's _reproduce_graph): a node starts when
 * its inputs are done, up to `jobs` at once; what a failure does to the rest is a named policy.
 */
import type { DagNode } from '../../compiler/dag.js';
import { inputIds } from './plan.js';
import type { NodeStatus, RunLog } from './records.js';
import type { RunEvent } from './types.js';

/**
 * What a failed node does to the others. `keep-going`: independent branches run to the end, and
 * every node that needs a failed (or skipped) node is skipped.
 */
export type FailurePolicy = 'keep-going';
export const KEEP_GOING: FailurePolicy = 'keep-going';

export interface GraphOptions {
  jobs: number;
  policy: FailurePolicy;
  /** Whether a node ready to run can be taken from the store instead. */
  isCached(n: DagNode): boolean;
  /** Runs one node and records its outcome in `log`. */
  runNode(n: DagNode): Promise<void>;
  log: RunLog;
  emit: (e: RunEvent) => void;
  signal?: AbortSignal;
}

/** What to do with a node now, from its inputs' statuses. */
export function readiness(inputs: Array<NodeStatus | undefined>, policy: FailurePolicy): 'skip' | 'wait' | 'ready' {
  switch (policy) {
    case 'keep-going':
      if (inputs.some((s) => s === 'failed' || s === 'skipped')) return 'skip';
      return inputs.some((s) => s === 'pending') ? 'wait' : 'ready';
  }
}

/** Runs `nodes` (in dependency order); returns whether the run was interrupted. */
export async function runGraph(nodes: readonly DagNode[], o: GraphOptions): Promise<{ interrupted: boolean }> {
  const jobs = Math.max(1, o.jobs);
  const inFlight = new Map<string, Promise<void>>();
  const remaining = [...nodes];
  while (remaining.length || inFlight.size) {
    if (o.signal?.aborted) break;
    const started = startReady(remaining, inFlight, jobs, o);
    if (inFlight.size) await Promise.race(inFlight.values());
    else if (!started && remaining.length) {
      // Nothing runnable and nothing running: every remaining node waits on a pending input
      // outside the selection, which cannot happen for a well-formed DAG.
      for (const n of remaining) o.log.set(n.id, 'skipped');
      remaining.length = 0;
    }
  }
  if (!o.signal?.aborted) return { interrupted: false };
  await Promise.allSettled(inFlight.values());
  for (const n of remaining) o.log.set(n.id, 'skipped');
  return { interrupted: true };
}

/** One pass over the waiting nodes: skip, take from the store, or start what is ready. */
function startReady(remaining: DagNode[], inFlight: Map<string, Promise<void>>, jobs: number, o: GraphOptions): boolean {
  let started = false;
  for (let i = 0; i < remaining.length && inFlight.size < jobs; i++) {
    const n = remaining[i]!;
    const state = readiness(
      inputIds(n).map((id) => o.log.status(id)),
      o.policy,
    );
    if (state === 'wait') continue;
    remaining.splice(i--, 1);
    if (state === 'skip') {
      o.log.set(n.id, 'skipped');
      o.emit({ type: 'node-end', id: n.id, status: 'skipped' });
    } else if (o.isCached(n)) {
      o.log.set(n.id, 'cached');
      o.emit({ type: 'node-end', id: n.id, status: 'cached' });
    } else {
      const p = o.runNode(n).finally(() => inFlight.delete(n.id));
      inFlight.set(n.id, p);
      started = true;
    }
  }
  return started;
}
