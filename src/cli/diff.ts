/** Comparing runs: node sets, parameter-level changes, and numeric deltas of result summaries. */
import type { RunRecord, Store } from '../store/store.js';

export interface Change {
  path: string;
  before: unknown;
  after: unknown;
}

/** Leaf-level differences between two JSON values. */
export function diffValues(a: unknown, b: unknown, path = ''): Change[] {
  if (a === b) return [];
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: Change[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...diffValues(a[i], b[i], `${path}[${i}]`));
    return out;
  }
  if (isObj(a) && isObj(b) && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Change[] = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) out.push(...diffValues(a[k], b[k], path ? `${path}.${k}` : k));
    return out;
  }
  return [{ path, before: a, after: b }];
}

export interface RunDiff {
  a: string;
  b: string;
  minDelta: number;
  added: string[];
  removed: string[];
  changed: Array<{ id: string; params: Change[] }>;
  results: Array<{ id: string; path: string; before: number; after: number; delta: number; flag: boolean }>;
}

export function diffRuns(ra: RunRecord, rb: RunRecord, store: Store, minDelta: number): RunDiff {
  const A = new Map(ra.nodes.map((n) => [n.id, n]));
  const B = new Map(rb.nodes.map((n) => [n.id, n]));
  const added = [...B.keys()].filter((id) => !A.has(id));
  const removed = [...A.keys()].filter((id) => !B.has(id));
  const changed: RunDiff['changed'] = [];
  const results: RunDiff['results'] = [];
  for (const [id, nb] of B) {
    const na = A.get(id);
    if (!na || na.key === nb.key) continue;
    changed.push({ id, params: diffValues(na.params, nb.params, 'params') });
    const sa = store.meta(na.key)?.summary;
    const sb = store.meta(nb.key)?.summary;
    if (sa === undefined || sb === undefined) continue;
    for (const c of diffValues(sa, sb, 'summary')) {
      if (typeof c.before === 'number' && typeof c.after === 'number') {
        const delta = c.after - c.before;
        results.push({ id, path: c.path, before: c.before, after: c.after, delta, flag: Math.abs(delta) >= minDelta });
      }
    }
  }
  results.sort((x, y) => Math.abs(y.delta) - Math.abs(x.delta));
  return { a: ra.id, b: rb.id, minDelta, added, removed, changed, results };
}
