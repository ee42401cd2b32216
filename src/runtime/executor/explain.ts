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

/**
 * Why each node that would run must run. Each node is compared with the newest finished run
 * of the pipeline that holds it (`history`: the pipeline's runs, oldest first), so a
 * later `--only` or interrupted run that left it out does not hide what changed.
 */
export function explainNodes(dag: Dag, store: Store, history: RunRecord[] = []): Explained[] {
  const runs = history.filter((r) => r.status !== 'running');
  const prev = new Map<string, { node: RunNode; run: RunRecord }>();
  for (const run of runs) for (const node of run.nodes) prev.set(node.id, { node, run });
  const out: Explained[] = [];
  for (const { node: n } of planRun(dag, store).toRun) {
    const p = prev.get(n.id);
    if (!p)
      out.push({ id: n.id, reason: runs.length ? 'new node (in no earlier run of this pipeline)' : 'new node (no earlier run of this pipeline)', changes: [] });
    else if (p.node.key === n.key) {
      out.push({
        id: n.id,
        reason:
          p.node.status === 'failed'
            ? `failed in run ${p.run.id}: ${p.node.error ?? ''}`
            : 'same key as in the last run that had it, but not in the cache (removed, or never finished)',
        changes: [],
      });
    } else out.push(changedKey(dag, store, n, p.node, prev, p.run));
  }
  return out;
}

/** A node whose key differs from the last run's: which of its parts changed. */
function changedKey(dag: Dag, store: Store, n: DagNode, p: RunNode, prev: Map<string, { node: RunNode }>, last: RunRecord): Explained {
  const changes = diffValues(p.params, jsonSafe(n.params), 'params');
  const changedInputs: string[] = [];
  for (const [role, v] of Object.entries(n.inputs)) {
    for (const id of Array.isArray(v) ? v : [v]) {
      if (prev.get(id)?.node.key !== dag.byId.get(id)!.key) changedInputs.push(`${role}: ${id}`);
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
