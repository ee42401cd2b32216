/**
 * Planning a run (as DVC's plan_repro): which nodes are selected, which are stored, which must
 * run and why. A function of the DAG and store lookups only, so `run`, `run --dry-run`,
 * `explain` and other executors (one node per Slurm job) plan the same way.
 */
import type { Dag, DagNode } from '../../compiler/dag.js';
import { didYouMean, globToRegExp } from '../../common/names.js';
import { UserError } from '../../compiler/diagnostics.js';
import type { Store } from '../../store/store.js';

export interface PlanOptions {
  /** Run only these nodes (refs as selectNodes takes them) and what they need. */
  only?: string[];
  /** Recompute these nodes even if stored. */
  force?: string[];
  forceAll?: boolean;
}

/** Why a selected node must run. */
export type RunReason = 'forced' | 'not stored';

export interface Plan {
  /** The selected nodes, in the DAG's (dependency) order. */
  nodes: DagNode[];
  forced: ReadonlySet<string>;
  /** The selected nodes that must run, with why, as the store was when planned. */
  toRun: Array<{ node: DagNode; reason: RunReason }>;
  /** Whether a node's artifact can be taken from the store now (the store changes while a run goes on). */
  isCached(n: DagNode): boolean;
}

export function planRun(dag: Dag, store: Store, opts: PlanOptions = {}): Plan {
  const only = opts.only?.length ? ancestors(dag, selectNodes(dag, opts.only)) : undefined;
  const forced = opts.forceAll ? new Set(dag.nodes.map((n) => n.id)) : opts.force?.length ? selectNodes(dag, opts.force) : new Set<string>();
  const nodes = dag.nodes.filter((n) => !only || only.has(n.id));
  const isCached = (n: DagNode) => !forced.has(n.id) && store.has(n.key);
  const toRun = nodes.filter((n) => !isCached(n)).map((node) => ({ node, reason: (forced.has(node.id) ? 'forced' : 'not stored') as RunReason }));
  return { nodes, forced, toRun, isCached };
}

/** Finds nodes named on the command line: an id, an id prefix ending in '/', a glob, or a key prefix. */
export function selectNodes(dag: Dag, refs: string[]): Set<string> {
  const out = new Set<string>();
  for (const ref of refs) {
    let hits: DagNode[];
    if (dag.byId.has(ref)) hits = [dag.byId.get(ref)!];
    else if (ref.includes('*')) {
      const re = globToRegExp(ref);
      hits = dag.nodes.filter((n) => re.test(n.id));
    } else if (ref.endsWith('/')) hits = dag.nodes.filter((n) => n.id.startsWith(ref));
    else hits = /^[0-9a-f]{4,}$/.test(ref) ? dag.nodes.filter((n) => n.key.startsWith(ref)) : [];
    if (hits.length === 0) {
      const guess = didYouMean(
        ref,
        dag.nodes.map((n) => n.id),
      );
      throw new UserError(`no node matches '${ref}'${guess ? `; did you mean '${guess}'?` : ''} (see trendc plan for node ids)`);
    }
    hits.forEach((h) => out.add(h.id));
  }
  return out;
}

/** The nodes `ids` and every node they depend on. */
export function ancestors(dag: Dag, ids: Set<string>): Set<string> {
  const out = new Set<string>();
  const visit = (id: string) => {
    if (out.has(id)) return;
    out.add(id);
    for (const i of inputIds(dag.byId.get(id)!)) visit(i);
  };
  ids.forEach(visit);
  return out;
}

/** The ids of a node's inputs, in role order (list roles flattened). */
export function inputIds(n: DagNode): string[] {
  return Object.values(n.inputs).flatMap((v) => (Array.isArray(v) ? v : [v]));
}

/** The node with this key (a Slurm job is given one key). */
export function nodeByKey(dag: Dag, key: string): DagNode {
  const n = dag.nodes.find((x) => x.key === key);
  if (!n) throw new UserError(`no node of this pipeline has key ${key}`);
  return n;
}
