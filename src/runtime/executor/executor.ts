/**
 * The executor: runs a DAG in dependency order, skipping nodes whose key is in the store. It is a
 * composition of its parts (as DVC's reproduce: plan_repro, _reproduce_graph, _reproduce_stage):
 *
 * - plan.ts: the selection (--only, --force), what is stored, what must run and why;
 * - graph.ts: dependency order, `jobs` at once, and the failure policy (`keep-going`: a failed
 *   step's dependents are skipped while independent branches go on);
 * - run-node.ts: one node under a per-node lock shared by all processes using the store (each node
 *   is computed once); only finished results are stored; a corrupt or missing input is recomputed;
 * - records.ts: every run leaves a run record: node keys with status, timings, backend, package version.
 */
import type { Dag } from '../../compiler/dag.js';
import type { Store } from '../../store/store.js';
import { ArtifactCache } from './artifact-cache.js';
import { KEEP_GOING, runGraph, type GraphOptions } from './graph.js';
import { planRun } from './plan.js';
import { newRunStart, RunLog, runRecord, type NodeStatus, type RunError, type RunHeader } from './records.js';
import { Backend, type NodeContext } from './run-node.js';
import { localRunner, type RunnerFactory } from './runner.js';
import type { OpProvider, RunEvent } from './types.js';

export interface ExecuteOptions {
  pipeline: string;
  source: string;
  dryRun?: boolean;
  force?: string[];
  forceAll?: boolean;
  only?: string[];
  jobs?: number;
  onEvent?: (e: RunEvent) => void;
  signal?: AbortSignal;
  /** Where nodes run (default: in this process, `jobs` at once). */
  runner?: RunnerFactory;
}

export interface ExecuteResult {
  runId: string;
  status: 'ok' | 'failed' | 'interrupted';
  statuses: Map<string, NodeStatus>;
  counts: Record<NodeStatus, number>;
  ms: number;
  backend?: string;
  errors: RunError[];
}

export async function execute(dag: Dag, store: Store, ops: OpProvider, opts: ExecuteOptions): Promise<ExecuteResult> {
  const t0 = performance.now();
  const head: RunHeader = { ...newRunStart(), pipeline: opts.pipeline, source: opts.source, ...(opts.only?.length ? { only: opts.only } : {}) };
  const emit = (e: RunEvent) => opts.onEvent?.(e);
  const plan = planRun(dag, store, opts);
  const log = new RunLog(plan.nodes);
  const backend = new Backend(ops, emit);
  const finish = (status: ExecuteResult['status'], write: boolean, executor?: 'local' | 'slurm'): ExecuteResult => {
    const counts = log.counts();
    const ms = performance.now() - t0;
    if (write) store.putRun({ ...runRecord(head, plan.nodes, log, backend.name, executor), status, endedAt: new Date().toISOString() });
    emit({ type: 'run-end', runId: head.id, status, counts, ms });
    return { runId: head.id, status, statuses: log.statuses, counts, ms, ...(backend.name ? { backend: backend.name } : {}), errors: log.errors };
  };
  emit({ type: 'run-start', runId: head.id, total: plan.nodes.length, toRun: plan.toRun.length, cached: plan.nodes.length - plan.toRun.length });

  if (opts.dryRun) {
    for (const n of plan.nodes) log.set(n.id, plan.isCached(n) ? 'cached' : 'pending');
    return finish('ok', false);
  }
  // When some node must run, the backend starts before anything is recorded or run: one that
  // cannot load (not installed, no GPU) fails the command (a UserError saying what to install)
  // instead of every node, and leaves no run record behind.
  if (plan.toRun.length) await backend.get();

  const ctx: NodeContext = { dag, store, ops, backend, pipeline: opts.pipeline, forced: plan.forced, cache: new ArtifactCache(), log, emit, ...signal(opts) };
  // The runner starts before the run is recorded: one that cannot start (no Slurm answering)
  // fails the command and leaves no run behind.
  const runner = await (opts.runner ?? localRunner(opts.jobs ?? 1))(ctx, head);
  store.putRun(runRecord(head, plan.nodes, log, backend.name, runner.name));
  // A `cache gc` that began before this record existed does not protect this run's nodes: wait
  // for it to finish before deciding what is cached.
  await store.waitForGc();

  const graph: GraphOptions = {
    jobs: runner.capacity,
    policy: KEEP_GOING,
    isCached: plan.isCached,
    runNode: (n) => runner.run(n),
    log,
    emit,
    ...signal(opts),
  };
  try {
    const { interrupted } = await runGraph(plan.nodes, graph);
    return finish(interrupted ? 'interrupted' : log.errors.length ? 'failed' : 'ok', true, runner.name);
  } finally {
    await runner.close();
  }
}

const signal = (opts: ExecuteOptions) => (opts.signal ? { signal: opts.signal } : {});
