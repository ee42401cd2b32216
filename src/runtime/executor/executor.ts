/**
 * The executor: runs a DAG in dependency order, skipping nodes whose key is in the store.
 *
 * - A node runs under a per-node lock shared by all processes using the store; a process that
 *   finds the lock taken waits, then finds the artifact cached (each node is computed once).
 * - Only finished results are stored; a failed or interrupted step leaves nothing behind, and
 *   its dependents are skipped while independent branches go on.
 * - An input whose payload is corrupt or missing is dropped and recomputed before use.
 * - Every run leaves a run record: node keys with status, timings, backend, package version.
 */
import { randomBytes } from 'node:crypto';
import type { Dag, DagNode } from '../../compiler/dag.js';
import { didYouMean, UserError } from '../../compiler/diagnostics.js';
import { digest } from '../../compiler/hash.js';
import { jsonSafe } from '../../compiler/jsonsafe.js';
import { OP_VERSIONS } from '../../compiler/ops.js';
import type { RunNode, RunRecord, Store } from '../../store/store.js';
import { PACKAGE_VERSION } from '../../version.js';
import { decodeArtifact, encodeArtifact, type Artifact } from '../artifact.js';
import { StepError, type OpProvider, type RunEvent } from './types.js';

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
}

export type NodeStatus = 'cached' | 'ran' | 'failed' | 'skipped' | 'pending';

export interface ExecuteResult {
  runId: string;
  status: 'ok' | 'failed' | 'interrupted';
  statuses: Map<string, NodeStatus>;
  counts: Record<NodeStatus, number>;
  ms: number;
  backend?: string;
  errors: Array<{ id: string; message: string; where: string }>;
}

/** Finds nodes named on the command line: an id, an id prefix ending in '/', a glob, or a key prefix. */
export function selectNodes(dag: Dag, refs: string[]): Set<string> {
  const out = new Set<string>();
  for (const ref of refs) {
    let hits: DagNode[];
    if (dag.byId.has(ref)) hits = [dag.byId.get(ref)!];
    else if (ref.includes('*')) {
      const re = new RegExp('^' + ref.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
      hits = dag.nodes.filter((n) => re.test(n.id));
    } else if (ref.endsWith('/')) hits = dag.nodes.filter((n) => n.id.startsWith(ref));
    else hits = /^[0-9a-f]{4,}$/.test(ref) ? dag.nodes.filter((n) => n.key.startsWith(ref)) : [];
    if (hits.length === 0) {
      const guess = didYouMean(ref, dag.nodes.map((n) => n.id));
      throw new UserError(`no node matches '${ref}'${guess ? `; did you mean '${guess}'?` : ''} (see trendc plan for node ids)`);
    }
    hits.forEach((h) => out.add(h.id));
  }
  return out;
}

function ancestors(dag: Dag, ids: Set<string>): Set<string> {
  const out = new Set<string>();
  const visit = (id: string) => {
    if (out.has(id)) return;
    out.add(id);
    for (const v of Object.values(dag.byId.get(id)!.inputs)) for (const i of Array.isArray(v) ? v : [v]) visit(i);
  };
  ids.forEach(visit);
  return out;
}

export function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${t}-${randomBytes(3).toString('hex')}`;
}

/** A small cache of decoded artifacts (they are immutable), bounded by bytes. */
class ArtifactCache {
  private readonly map = new Map<string, { a: Artifact; bytes: number }>();
  private total = 0;
  constructor(private readonly limit = 1 << 30) {}
  get(key: string): Artifact | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e.a;
  }
  set(key: string, a: Artifact, bytes: number): void {
    if (bytes > this.limit / 4) return;
    this.map.set(key, { a, bytes });
    this.total += bytes;
    for (const [k, e] of this.map) {
      if (this.total <= this.limit) break;
      this.map.delete(k);
      this.total -= e.bytes;
    }
  }
}

export async function execute(dag: Dag, store: Store, ops: OpProvider, opts: ExecuteOptions): Promise<ExecuteResult> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const emit = (e: RunEvent) => opts.onEvent?.(e);
  const runId = newRunId();
  const only = opts.only?.length ? ancestors(dag, selectNodes(dag, opts.only)) : undefined;
  const forced = opts.forceAll ? new Set(dag.nodes.map((n) => n.id)) : opts.force?.length ? selectNodes(dag, opts.force) : new Set<string>();
  const needed = dag.nodes.filter((n) => !only || only.has(n.id));
  const statuses = new Map<string, NodeStatus>(needed.map((n) => [n.id, 'pending']));
  const errors: ExecuteResult['errors'] = [];
  const where = (n: DagNode) => `${n.loc.file}:${n.loc.line}`;

  const isCached = (n: DagNode) => !forced.has(n.id) && store.has(n.key);
  const cachedCount = needed.filter(isCached).length;
  emit({ type: 'run-start', runId, total: needed.length, toRun: needed.length - cachedCount, cached: cachedCount });

  const runNodes = (): RunNode[] =>
    needed.map((n) => ({
      id: n.id,
      key: n.key,
      op: n.op,
      status: statuses.get(n.id)!,
      ...(timings.has(n.id) ? { ms: timings.get(n.id)! } : {}),
      ...(nodeErrors.has(n.id) ? { error: nodeErrors.get(n.id)! } : {}),
      params: jsonSafe(n.params),
      inputs: n.inputs,
      info: jsonSafe(n.info),
      line: n.loc.line,
    }));
  const timings = new Map<string, number>();
  const nodeErrors = new Map<string, string>();
  let backend: string | undefined;
  const record = (): RunRecord => ({
    id: runId,
    pipeline: opts.pipeline,
    textHash: digest(opts.source),
    source: opts.source,
    pid: process.pid,
    startedAt,
    status: 'running',
    ...(backend ? { backend } : {}),
    packageVersion: PACKAGE_VERSION,
    nodes: runNodes(),
  });

  if (opts.dryRun) {
    for (const n of needed) statuses.set(n.id, isCached(n) ? 'cached' : 'pending');
    return finish('ok', false);
  }

  let initPromise: Promise<string> | undefined;
  const ensureBackend = async () => {
    initPromise ??= ops.init().then((b) => {
      backend = b;
      emit({ type: 'backend', name: b });
      return b;
    });
    return initPromise;
  };
  // When some node must run, the backend starts before anything is recorded or run: one that
  // cannot load (not installed, no GPU) fails the command (a UserError saying what to install)
  // instead of every node, and leaves no run record behind.
  if (needed.length > cachedCount) await ensureBackend();

  const startRecord = record();
  store.putRun(startRecord);
  // A `cache gc` that began before this record existed does not protect this run's nodes: wait
  // for it to finish before deciding what is cached.
  await store.waitForGc();

  const cache = new ArtifactCache();
  const loadInput = async (id: string, depth = 0): Promise<Artifact> => {
    const n = dag.byId.get(id)!;
    const hit = cache.get(n.key);
    if (hit) return hit;
    let bytes = store.read(n.key, true);
    if (!bytes) {
      if (depth > 2) throw new StepError(`input ${id} cannot be read back from the store`);
      emit({ type: 'node-log', id, message: `stored payload of ${id} is missing or corrupt; recomputing it` });
      store.deleteNode(n.key);
      await computeNode(n);
      if (statuses.get(id) === 'failed') throw new StepError(`input ${id} failed to recompute`);
      return loadInput(id, depth + 1);
    }
    const a = decodeArtifact(bytes);
    cache.set(n.key, a, bytes.length);
    return a;
  };

  const computeNode = async (n: DagNode): Promise<void> => {
    const lockName = n.key;
    await store.locks.acquire(lockName, (owner) => emit({ type: 'node-wait', id: n.id, ...(owner ? { owner } : {}) }));
    try {
      if (!forced.has(n.id) && store.has(n.key)) {
        statuses.set(n.id, 'cached');
        emit({ type: 'node-end', id: n.id, status: 'cached' });
        return;
      }
      const b = await ensureBackend();
      emit({ type: 'node-start', id: n.id, op: n.op, label: n.id });
      const started = new Date();
      const t = performance.now();
      const inputs: Record<string, Artifact | Artifact[]> = {};
      for (const [role, v] of Object.entries(n.inputs)) {
        inputs[role] = Array.isArray(v) ? await Promise.all(v.map((i) => loadInput(i))) : await loadInput(v);
      }
      const impl = await ops.get(n.op);
      const controller = new AbortController();
      const onAbort = () => controller.abort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const res = await impl({
        node: n,
        params: jsonSafe(n.params),
        inputs,
        backend: b,
        signal: controller.signal,
        progress: (p) => emit({ type: 'node-progress', id: n.id, progress: p }),
        log: (m) => emit({ type: 'node-log', id: n.id, message: m }),
      }).finally(() => opts.signal?.removeEventListener('abort', onAbort));
      if (opts.signal?.aborted) throw new StepError('interrupted');
      const bytes = encodeArtifact(res.artifact);
      const ms = performance.now() - t;
      const inputKeys: Record<string, string | string[]> = {};
      for (const [role, v] of Object.entries(n.inputs)) inputKeys[role] = Array.isArray(v) ? v.map((i) => dag.byId.get(i)!.key) : dag.byId.get(v)!.key;
      store.put(
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
          pipeline: opts.pipeline,
          ...(res.extra ? { extra: jsonSafe(res.extra) } : {}),
        },
        bytes,
      );
      cache.set(n.key, res.artifact, bytes.length);
      timings.set(n.id, Math.round(ms));
      statuses.set(n.id, 'ran');
      emit({ type: 'node-end', id: n.id, status: 'ran', ms: Math.round(ms) });
    } catch (e) {
      const msg = describeError(e);
      statuses.set(n.id, 'failed');
      nodeErrors.set(n.id, msg);
      errors.push({ id: n.id, message: msg, where: where(n) });
      emit({ type: 'node-end', id: n.id, status: 'failed', error: msg, where: where(n) });
    } finally {
      store.locks.release(lockName);
    }
  };

  // Scheduling: a node starts when its inputs are done; a failed input skips its dependents.
  const jobs = Math.max(1, opts.jobs ?? 1);
  const inFlight = new Map<string, Promise<void>>();
  const remaining = [...needed];
  const inputIds = (n: DagNode) => Object.values(n.inputs).flatMap((v) => (Array.isArray(v) ? v : [v]));
  while (remaining.length || inFlight.size) {
    if (opts.signal?.aborted) break;
    let started = false;
    for (let i = 0; i < remaining.length && inFlight.size < jobs; i++) {
      const n = remaining[i]!;
      const ins = inputIds(n).map((id) => statuses.get(id));
      if (ins.some((s) => s === 'failed' || s === 'skipped')) {
        statuses.set(n.id, 'skipped');
        emit({ type: 'node-end', id: n.id, status: 'skipped' });
        remaining.splice(i--, 1);
        continue;
      }
      if (ins.some((s) => s === 'pending')) continue;
      remaining.splice(i--, 1);
      if (isCached(n)) {
        statuses.set(n.id, 'cached');
        emit({ type: 'node-end', id: n.id, status: 'cached' });
        continue;
      }
      const p = computeNode(n).finally(() => inFlight.delete(n.id));
      inFlight.set(n.id, p);
      started = true;
    }
    if (inFlight.size) await Promise.race(inFlight.values());
    else if (!started && remaining.length) {
      // Nothing runnable and nothing running: every remaining node waits on a pending input
      // outside the selection, which cannot happen for a well-formed DAG.
      for (const n of remaining) statuses.set(n.id, 'skipped');
      remaining.length = 0;
    }
  }
  if (opts.signal?.aborted) {
    await Promise.allSettled(inFlight.values());
    for (const n of remaining) statuses.set(n.id, 'skipped');
    return finish('interrupted', true);
  }
  return finish(errors.length ? 'failed' : 'ok', true);

  function finish(status: ExecuteResult['status'], write: boolean): ExecuteResult {
    const counts: Record<NodeStatus, number> = { cached: 0, ran: 0, failed: 0, skipped: 0, pending: 0 };
    for (const s of statuses.values()) counts[s]++;
    const ms = performance.now() - t0;
    if (write) store.putRun({ ...record(), status, endedAt: new Date().toISOString() });
    emit({ type: 'run-end', runId, status, counts, ms });
    return { runId, status, statuses, counts, ms, ...(backend ? { backend } : {}), errors };
  }
}

function describeError(e: unknown): string {
  if (e instanceof StepError || e instanceof UserError) return e.message;
  const err = e as Error;
  const msg = err?.message ?? String(e);
  if (/out of memory|Cannot allocate|Array buffer allocation failed|OOM/i.test(msg)) return `out of memory: ${msg}`;
  return process.env.TREND_DEBUG ? `${msg}\n${err?.stack ?? ''}` : msg;
}
