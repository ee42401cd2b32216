/**
 * Running one node (as DVC's _reproduce_stage): take its lock, take it from the store if another
 * process stored it meanwhile, else read its inputs from the store (recomputing one whose payload
 * is corrupt or missing), compute it, and store the artifact. A failure is recorded, never stored.
 * Callable for one node key alone (a Slurm job): inputs come from the store, the artifact goes to it.
 */
import type { Dag, DagNode } from '../../compiler/dag.js';
import { UserError } from '../../compiler/diagnostics.js';
import { jsonSafe } from '../../compiler/jsonsafe.js';
import { OP_VERSIONS } from '../../compiler/ops.js';
import type { Store } from '../../store/store.js';
import { PACKAGE_VERSION } from '../../version.js';
import { decodeArtifact, encodeArtifact, type Artifact } from '../artifact.js';
import { ArtifactCache } from './artifact-cache.js';
import { nodeByKey } from './plan.js';
import { RunLog, where } from './records.js';
import { StepError, type OpProvider, type OpResult, type RunEvent } from './types.js';

/** Starts the backend once, on first use, and announces it. */
export class Backend {
  private started: Promise<string> | undefined;
  name: string | undefined;
  constructor(
    private readonly ops: OpProvider,
    private readonly emit: (e: RunEvent) => void,
  ) {}
  get(): Promise<string> {
    this.started ??= this.ops.init().then((b) => {
      this.name = b;
      this.emit({ type: 'backend', name: b });
      return b;
    });
    return this.started;
  }
}

/** What running a node needs: the DAG it belongs to, the store, the operations, the run's log. */
export interface NodeContext {
  dag: Dag;
  store: Store;
  ops: OpProvider;
  backend: Backend;
  /** The pipeline path recorded with each artifact. */
  pipeline: string;
  /** Ids of nodes computed even if stored. */
  forced: ReadonlySet<string>;
  cache: ArtifactCache;
  log: RunLog;
  emit: (e: RunEvent) => void;
  signal?: AbortSignal;
}

/** A context for running single nodes of `dag` outside a whole run (one per process). */
export function nodeContext(dag: Dag, store: Store, ops: OpProvider, o: { pipeline: string; emit?: (e: RunEvent) => void; signal?: AbortSignal }): NodeContext {
  const emit = o.emit ?? (() => {});
  return {
    dag,
    store,
    ops,
    backend: new Backend(ops, emit),
    pipeline: o.pipeline,
    forced: new Set(),
    cache: new ArtifactCache(),
    log: new RunLog(dag.nodes),
    emit,
    ...(o.signal ? { signal: o.signal } : {}),
  };
}

/** Runs the node with this key; its status is then in ctx.log. */
export async function runNodeByKey(ctx: NodeContext, key: string): Promise<void> {
  await runNode(ctx, nodeByKey(ctx.dag, key));
}

/** Runs one node under its lock; the outcome ('cached', 'ran' or 'failed') goes to ctx.log and events. */
export async function runNode(ctx: NodeContext, n: DagNode): Promise<void> {
  const { store, emit } = ctx;
  await store.locks.acquire(n.key, (owner) => emit({ type: 'node-wait', id: n.id, ...(owner ? { owner } : {}) }));
  try {
    if (!ctx.forced.has(n.id) && store.has(n.key)) {
      ctx.log.set(n.id, 'cached');
      emit({ type: 'node-end', id: n.id, status: 'cached' });
      return;
    }
    const ms = await compute(ctx, n);
    ctx.log.ran(n.id, ms);
    emit({ type: 'node-end', id: n.id, status: 'ran', ms });
  } catch (e) {
    const msg = describeError(e);
    ctx.log.failed(n, msg);
    emit({ type: 'node-end', id: n.id, status: 'failed', error: msg, where: where(n) });
  } finally {
    store.locks.release(n.key);
  }
}

/** Computes a node and stores its artifact; returns the milliseconds it took. */
async function compute(ctx: NodeContext, n: DagNode): Promise<number> {
  const b = await ctx.backend.get();
  ctx.emit({ type: 'node-start', id: n.id, op: n.op, label: n.id });
  const started = new Date();
  const t = performance.now();
  const inputs: Record<string, Artifact | Artifact[]> = {};
  for (const [role, v] of Object.entries(n.inputs)) {
    inputs[role] = Array.isArray(v) ? await Promise.all(v.map((i) => loadInput(ctx, i))) : await loadInput(ctx, v);
  }
  const res = await callOp(ctx, n, inputs, b);
  const bytes = encodeArtifact(res.artifact);
  const ms = performance.now() - t;
  const inputKeys: Record<string, string | string[]> = {};
  for (const [role, v] of Object.entries(n.inputs)) inputKeys[role] = Array.isArray(v) ? v.map((i) => ctx.dag.byId.get(i)!.key) : ctx.dag.byId.get(v)!.key;
  // A forced recompute replaces the stored result: other bytes mean it is not reproducible
  // (or ran on another backend); the run records which, and says so.
  const previous = ctx.store.meta(n.key);
  const stored = ctx.store.put(
    {
      key: n.key,
      op: n.op,
      opVersion: OP_VERSIONS[n.op],
      params: jsonSafe(n.params),
      inputs: inputKeys,
      packageVersion: PACKAGE_VERSION,
      backend: b,
      startedAt: started.toISOString(),
      endedAt: new Date().toISOString(),
      ms: Math.round(ms),
      summary: res.artifact.summary,
      id: n.id,
      pipeline: ctx.pipeline,
      ...(res.extra ? { extra: jsonSafe(res.extra) } : {}),
    },
    bytes,
  );
  const replaced = previous && previous.checksum !== stored.checksum ? { checksum: previous.checksum, backend: previous.backend } : undefined;
  ctx.log.outputs.set(n.id, { checksum: stored.checksum, ...(replaced ? { replaced } : {}) });
  if (replaced) {
    const why = replaced.backend === b ? 'on the same backend: this node is not reproducible' : `on another backend (${replaced.backend} before)`;
    ctx.emit({
      type: 'node-log',
      id: n.id,
      message: `recomputed with other bytes than the stored result (${replaced.checksum.slice(0, 12)} -> ${stored.checksum.slice(0, 12)}) ${why}`,
    });
  }
  ctx.cache.set(n.key, res.artifact, bytes.length);
  return Math.round(ms);
}

/** Calls the node's operation; the run's abort signal reaches it, and an aborted call fails. */
async function callOp(ctx: NodeContext, n: DagNode, inputs: Record<string, Artifact | Artifact[]>, backend: string): Promise<OpResult> {
  const impl = await ctx.ops.get(n.op);
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  const res = await impl({
    node: n,
    params: jsonSafe(n.params),
    inputs,
    backend,
    signal: controller.signal,
    progress: (p) => ctx.emit({ type: 'node-progress', id: n.id, progress: p }),
    log: (m) => ctx.emit({ type: 'node-log', id: n.id, message: m }),
  }).finally(() => ctx.signal?.removeEventListener('abort', onAbort));
  if (ctx.signal?.aborted) throw new StepError('interrupted');
  return res;
}

/** An input artifact, from memory or the store; a corrupt or missing payload is recomputed first. */
async function loadInput(ctx: NodeContext, id: string, depth = 0): Promise<Artifact> {
  const n = ctx.dag.byId.get(id)!;
  const hit = ctx.cache.get(n.key);
  if (hit) return hit;
  const bytes = ctx.store.read(n.key, true);
  if (!bytes) {
    if (depth > 2) throw new StepError(`input ${id} cannot be read back from the store`);
    ctx.emit({ type: 'node-log', id, message: `stored payload of ${id} is missing or corrupt; recomputing it` });
    ctx.store.deleteNode(n.key);
    await runNode(ctx, n);
    if (ctx.log.status(id) === 'failed') throw new StepError(`input ${id} failed to recompute`);
    return loadInput(ctx, id, depth + 1);
  }
  const a = decodeArtifact(bytes);
  ctx.cache.set(n.key, a, bytes.length);
  return a;
}

export function describeError(e: unknown): string {
  if (e instanceof StepError || e instanceof UserError) return e.message;
  const err = e as Error;
  const msg = err?.message ?? String(e);
  if (/out of memory|Cannot allocate|Array buffer allocation failed|OOM/i.test(msg)) return `out of memory: ${msg}`;
  return process.env.TREND_DEBUG ? `${msg}\n${err?.stack ?? ''}` : msg;
}
