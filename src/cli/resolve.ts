/**
 * What `trendc cache show REF` and `trendc export REF` mean by REF: a key (or a hex prefix of
 * one), or a node id such as `matrix/transfer1`. A node id names a node of a run, never "some
 * artifact that once had this id": the newest run of the pipeline that holds the id (or the run
 * given by --run). The same id in several pipelines, or a hex prefix of several keys, is
 * ambiguous: the candidates are listed and nothing is guessed.
 */
import { relative } from 'node:path';
import { UserError } from '../compiler/diagnostics.js';
import type { RunRecord, Store } from '../store/store.js';

const HEX = /^[0-9a-f]+$/;

export interface Resolved {
  key: string;
  /** The run the node was taken from (absent for a key or key prefix). */
  run?: RunRecord;
  /** Said beside the artifact: the run's node did not produce it (a failed --force: the stored result of the same key). */
  note?: string;
}

const when = (r: RunRecord) => (r.endedAt ?? r.startedAt).slice(0, 19).replace('T', ' ');
const where = (p: string) => relative(process.cwd(), p) || p;

/** Finished runs, oldest first (the order of `Store.runs()`). */
function finishedRuns(store: Store): RunRecord[] {
  return store.runs().filter((r) => r.status !== 'running');
}

export function findRun(store: Store, ref: string): RunRecord {
  const hits = store.runs().filter((r) => r.id.startsWith(ref));
  if (hits.length === 1) return hits[0]!;
  if (!hits.length) throw new UserError(`no run '${ref}' (see trendc runs)`);
  throw new UserError(`run '${ref}' is ambiguous: ${hits.map((r) => r.id).join(', ')}`);
}

function fromRun(store: Store, run: RunRecord, id: string, hint: string): Resolved {
  const n = run.nodes.find((x) => x.id === id);
  if (!n) {
    const ids = run.nodes.map((x) => x.id);
    const near = ids.filter((x) => x.split('/')[0] === id.split('/')[0]).slice(0, 8);
    throw new UserError(`run ${run.id} (${where(run.pipeline)}) has no node '${id}'${near.length ? ` (it has: ${near.join(', ')})` : ''}${hint}`);
  }
  if (!store.has(n.key)) {
    throw new UserError(`node '${id}' of run ${run.id} (${when(run)}) has no cached artifact (status ${n.status}${n.error ? `: ${n.error}` : ''})${hint}`);
  }
  const note =
    n.status === 'ran' || n.status === 'cached'
      ? undefined
      : `node '${id}' ${n.status === 'failed' ? 'failed' : `was ${n.status}`} in run ${run.id}; this is the artifact stored earlier under the same key`;
  return { key: n.key, run, ...(note ? { note } : {}) };
}

/**
 * Resolves a key, key prefix or node id to one cached key. `runRef` pins a node id to a run;
 * with a key or key prefix it must agree (the key must be a node of that run).
 */
export function resolveRef(store: Store, ref: string, runRef?: string): Resolved {
  const pinned = runRef !== undefined ? findRun(store, runRef) : undefined;
  if (HEX.test(ref)) {
    let keys = store.findKeys(ref);
    if (pinned) keys = keys.filter((k) => pinned.nodes.some((n) => n.key === k));
    if (keys.length === 1) return { key: keys[0]!, ...(pinned ? { run: pinned } : {}) };
    if (keys.length > 1) {
      const lines = keys.slice(0, 20).map((k) => {
        const m = store.meta(k);
        return `  ${k.slice(0, 16)}  ${m?.op ?? '?'}  ${m?.id ?? '-'}  ${m?.pipeline ? where(m.pipeline) : '-'}  ${m?.endedAt.slice(0, 19).replace('T', ' ') ?? ''}`;
      });
      throw new UserError(
        `key prefix '${ref}' is ambiguous (${keys.length} matches); give more digits:\n${lines.join('\n')}${keys.length > 20 ? `\n  ... and ${keys.length - 20} more` : ''}`,
      );
    }
    if (pinned) throw new UserError(`run ${pinned.id} has no node with a key starting '${ref}'`);
    // Not a key prefix: it may still be a node id made of hex letters; fall through.
  }
  if (pinned) return fromRun(store, pinned, ref, '');

  const runs = finishedRuns(store);
  const holding = runs.filter((r) => r.nodes.some((n) => n.id === ref));
  if (!holding.length) {
    // No run has the id. A stored artifact's own id is where it was first computed: another
    // pipeline's node with the same key may have it, so it names no node of any run.
    throw new UserError(`no run has a node '${ref}' (see trendc runs and trendc plan FILE; a key or key prefix names an artifact directly)`);
  }
  const pipelines = [...new Set(holding.map((r) => r.pipeline))];
  if (pipelines.length > 1) {
    const lines = pipelines.map((p) => {
      const newest = holding.filter((r) => r.pipeline === p).at(-1)!;
      return `  ${where(p)}: run ${newest.id} (${when(newest)})`;
    });
    throw new UserError(`'${ref}' is a node of several pipelines; pick a run with --run (or give a key):\n${lines.join('\n')}`);
  }
  // The newest run of that pipeline, whether or not it still holds the node: an older artifact
  // is never handed out in place of the current one.
  const newest = runs.filter((r) => r.pipeline === pipelines[0]).at(-1)!;
  const last = holding.at(-1)!;
  const hint = newest.id === last.id ? '' : `; it was last in run ${last.id} (${when(last)}): use --run ${last.id}`;
  return fromRun(store, newest, ref, newest.id === last.id ? `; pick another run with --run` : hint);
}
