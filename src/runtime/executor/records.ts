/**
 * Run records: what a run did to each of its nodes (status, timing, error), kept while it runs
 * and written to the store when it starts and when it ends.
 */
import { randomBytes } from 'node:crypto';
import type { DagNode } from '../../compiler/dag.js';
import { digest } from '../../compiler/hash.js';
import { jsonSafe } from '../../compiler/jsonsafe.js';
import type { Placement, RunNode, RunRecord } from '../../store/store.js';
import { PACKAGE_VERSION } from '../../version.js';
import { currentHost } from '../../store/owner.js';

export type NodeStatus = 'cached' | 'ran' | 'failed' | 'skipped' | 'pending';

export interface RunError {
  id: string;
  message: string;
  where: string;
}

/** What identifies a run: set once, when it starts. */
export interface RunHeader {
  id: string;
  pipeline: string;
  source: string;
  startedAt: string;
  /** `run --only`: the nodes asked for. */
  only?: string[];
}

let lastRunMs = 0;

/**
 * A run's id and start time, from one instant: `20261201T031145123Z-1a2b3c` (UTC to the
 * millisecond, then 3 random bytes). Ids made by one process strictly increase (a second id in
 * the same millisecond takes the next one), so runs started one after another sort by id as by
 * start time; `Store.runs()` orders by start time first in any case.
 */
export function newRunStart(now = Date.now()): { id: string; startedAt: string } {
  const ms = Math.max(now, lastRunMs + 1);
  lastRunMs = ms;
  const startedAt = new Date(ms).toISOString();
  const t = startedAt.replace(/[-:.]/g, '');
  return { id: `${t}-${randomBytes(3).toString('hex')}`, startedAt };
}

/** The statuses, timings and errors of a run's nodes; every node starts 'pending'. */
export class RunLog {
  readonly statuses: Map<string, NodeStatus>;
  readonly timings = new Map<string, number>();
  readonly nodeErrors = new Map<string, string>();
  /** Where each node that ran was computed. */
  readonly placements = new Map<string, Placement>();
  /** The payload checksum of each node that ran, and the other bytes it replaced (if any). */
  readonly outputs = new Map<string, { checksum: string; replaced?: { checksum: string; backend: string } }>();
  readonly errors: RunError[] = [];

  constructor(nodes: readonly DagNode[]) {
    this.statuses = new Map(nodes.map((n) => [n.id, 'pending']));
  }

  status(id: string): NodeStatus | undefined {
    return this.statuses.get(id);
  }

  set(id: string, status: NodeStatus): void {
    this.statuses.set(id, status);
  }

  ran(id: string, ms: number): void {
    this.timings.set(id, ms);
    this.statuses.set(id, 'ran');
  }

  failed(n: DagNode, message: string): void {
    this.statuses.set(n.id, 'failed');
    this.nodeErrors.set(n.id, message);
    this.errors.push({ id: n.id, message, where: where(n) });
  }

  counts(): Record<NodeStatus, number> {
    const counts: Record<NodeStatus, number> = { cached: 0, ran: 0, failed: 0, skipped: 0, pending: 0 };
    for (const s of this.statuses.values()) counts[s]++;
    return counts;
  }
}

/** Where a node comes from in its pipeline, as `file:line`. */
export function where(n: DagNode): string {
  return `${n.loc.file}:${n.loc.line}`;
}

/** The run record of `nodes` as `log` has them now (status 'running': the caller sets the end). */
export function runRecord(head: RunHeader, nodes: readonly DagNode[], log: RunLog, backend?: string, executor?: 'local' | 'slurm'): RunRecord {
  return {
    id: head.id,
    pipeline: head.pipeline,
    textHash: digest(head.source),
    source: head.source,
    pid: process.pid,
    host: currentHost(),
    ...(executor ? { executor } : {}),
    ...(head.only?.length ? { only: head.only } : {}),
    startedAt: head.startedAt,
    status: 'running',
    ...(backend ? { backend } : {}),
    packageVersion: PACKAGE_VERSION,
    nodes: nodes.map((n) => runNode(n, log)),
  };
}

/** A node's parameters and info in JSON form, made once per node (a run writes its record twice). */
const jsonParts = new WeakMap<DagNode, { params: unknown; info: unknown }>();

function runNode(n: DagNode, log: RunLog): RunNode {
  let parts = jsonParts.get(n);
  if (!parts) jsonParts.set(n, (parts = { params: jsonSafe(n.params), info: jsonSafe(n.info) }));
  return {
    id: n.id,
    key: n.key,
    op: n.op,
    status: log.statuses.get(n.id)!,
    ...(log.timings.has(n.id) ? { ms: log.timings.get(n.id)! } : {}),
    ...(log.nodeErrors.has(n.id) ? { error: log.nodeErrors.get(n.id)! } : {}),
    ...(log.placements.has(n.id) ? { placement: log.placements.get(n.id)! } : {}),
    ...(log.outputs.get(n.id) ?? {}),
    params: parts.params,
    inputs: n.inputs,
    info: parts.info,
    line: n.loc.line,
  };
}

/** How many nodes of a stored run have each status. */
export function countStatuses(nodes: readonly RunNode[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of nodes) c[n.status] = (c[n.status] ?? 0) + 1;
  return c;
}
