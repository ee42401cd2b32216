/**
 * Where nodes run: a NodeRunner takes each node the graph starts and settles it in the run's log
 * ('ran', 'cached' or 'failed') with where it ran. The local runner computes in this process;
 * the Slurm runner (slurm/driver.ts) submits jobs. The graph (graph.ts) and the failure policy
 * are the same for both.
 */
import type { DagNode } from '../../compiler/dag.js';
import type { RunHeader } from './records.js';
import { runNode, type NodeContext } from './run-node.js';
import { currentHost } from '../../store/owner.js';

export interface NodeRunner {
  /** The executor's name, recorded with the run. */
  readonly name: 'local' | 'slurm';
  /** How many nodes the graph may start at once. */
  readonly capacity: number;
  /** Runs one node whose inputs are done; its outcome goes to ctx.log. */
  run(n: DagNode): Promise<void>;
  /** Called once the graph is done (or interrupted and drained). */
  close(): Promise<void>;
}

export type RunnerFactory = (ctx: NodeContext, run: RunHeader) => Promise<NodeRunner>;

/** Runs one node in this process and records where it ran (for `executor`'s run). */
export async function runHere(ctx: NodeContext, n: DagNode, executor: 'local' | 'slurm'): Promise<void> {
  await runNode(ctx, n);
  if (ctx.log.status(n.id) === 'ran') ctx.log.placements.set(n.id, { host: currentHost(), executor, wallMs: ctx.log.timings.get(n.id)! });
}

/** Runs nodes in this process, `jobs` at once. */
export function localRunner(jobs: number): RunnerFactory {
  return async (ctx) => ({
    name: 'local',
    capacity: jobs,
    run: (n) => runHere(ctx, n, 'local'),
    async close() {},
  });
}
