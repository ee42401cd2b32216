/**
 * Why each node that would run must run, compared with the last finished run of the pipeline
 * (new node, parameters, inputs, package or code version changed, failed, or dropped from the
 * cache). `trendc explain` prints it.
 */
import type { Dag, DagNode } from '../../compiler/dag.js';
import { jsonSafe } from '../../compiler/jsonsafe.js';
import { OP_VERSIONS } from '../../compiler/ops.js';
import type { RunNode, RunRecord, Store } from '../../store/store.js';
import { PACKAGE_VERSION } from '../../version.js';
import { diffValues, type Change } from '../../common/json-diff.js';
import { planRun } from './plan.js';

export interface Explained {
  id: string;
  reason: string;
  changes: Change[];
}

/** The last run of `pipeline` (an absolute path) that is not still running. */
export function lastFinishedRun(store: Store, pipeline: string): RunRecord | undefined {
  return store
    .runs(pipeline)
    .filter((r) => r.status !== 'running')
    .at(-1);
}

/** Why each node that would run must run, compared with the last run of this pipeline. */
export function explainNodes(dag: Dag, store: Store, last: RunRecord | undefined): Explained[] {
  const prev = new Map(last?.nodes.map((n) => [n.id, n]) ?? []);
  const out: Explained[] = [];
  for (const { node: n } of planRun(dag, store).toRun) {
    const p = prev.get(n.id);
    if (!p) out.push({ id: n.id, reason: last ? 'new node (not in the last run)' : 'new node (no earlier run of this pipeline)', changes: [] });
    else if (p.key === n.key) {
      out.push({
        id: n.id,
        reason:
          p.status === 'failed' ? `failed in the last run: ${p.error ?? ''}` : 'same key as the last run, but not in the cache (removed, or never finished)',
        changes: [],
      });
    } else out.push(changedKey(dag, store, n, p, prev, last!));
  }
  return out;
}

/** A node whose key differs from the last run's: which of its parts changed. */
function changedKey(dag: Dag, store: Store, n: DagNode, p: RunNode, prev: Map<string, RunNode>, last: RunRecord): Explained {
  const changes = diffValues(p.params, jsonSafe(n.params), 'params');
  const changedInputs: string[] = [];
  for (const [role, v] of Object.entries(n.inputs)) {
    for (const id of Array.isArray(v) ? v : [v]) {
      if (prev.get(id)?.key !== dag.byId.get(id)!.key) changedInputs.push(`${role}: ${id}`);
    }
  }
  const reasons: string[] = [];
  if (changes.length) reasons.push('parameters changed');
  if (changedInputs.length) reasons.push(`inputs changed (${changedInputs.join(', ')})`);
  if (last.packageVersion !== PACKAGE_VERSION) reasons.push(`package version ${last.packageVersion} -> ${PACKAGE_VERSION}`);
  const meta = store.meta(p.key);
  if (meta && meta.opVersion !== OP_VERSIONS[n.op]) reasons.push(`code version of '${n.op}' ${meta.opVersion} -> ${OP_VERSIONS[n.op]}`);
  if (!reasons.length) reasons.push('key changed (dataset files or salt)');
  return { id: n.id, reason: reasons.join('; '), changes };
}
