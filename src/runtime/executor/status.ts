/**
 * Where each node of a pipeline stands against a store (as `dvc status`): its artifact is stored
 * (cached), another live process holds its lock and is computing it (running, with the owner),
 * or nothing has it yet (to run). Reads only: lookups and lock files, never a write.
 */
import type { Dag } from '../../compiler/dag.js';
import { liveHolder } from '../../store/locks.js';
import { formatOwner } from '../../store/owner.js';
import type { Store } from '../../store/store.js';

export type NodeState = 'cached' | 'running' | 'to run';

export interface NodeStatus {
  id: string;
  op: string;
  key: string;
  state: NodeState;
  /** For running nodes: the process computing it (pid@host). */
  owner?: string;
}

export function nodeStatuses(dag: Dag, store: Store | undefined): NodeStatus[] {
  return dag.nodes.map((n) => {
    const base = { id: n.id, op: n.op, key: n.key };
    if (store?.has(n.key)) return { ...base, state: 'cached' };
    const holder = store ? liveHolder(store.root, n.key) : undefined;
    return holder ? { ...base, state: 'running', owner: formatOwner(holder) } : { ...base, state: 'to run' };
  });
}

/** How many nodes are in each state, in a fixed order. */
export function stateCounts(s: NodeStatus[]): Record<NodeState, number> {
  const c: Record<NodeState, number> = { cached: 0, running: 0, 'to run': 0 };
  for (const x of s) c[x.state]++;
  return c;
}
