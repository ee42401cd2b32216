/**
 * `trendc diff`: which two runs to compare, the comparison printed for people, and where its
 * report goes. The comparison itself (facts by meaning, result and parameter changes) is
 * src/report/compare.ts; the report (heatmaps of TM changes, accuracy charts) src/report/diff-report.ts.
 */
import { join, relative, resolve } from 'node:path';
import { UserError } from '../compiler/diagnostics.js';
import type { RunDiff, ResultChange, ResultKind } from '../report/compare.js';
import { beyondIntervals } from '../report/stats.js';
import type { RunRecord, Store } from '../store/store.js';
import { describeFsError } from './output.js';
import { defaultReportDir } from './run-report.js';

export { diffRuns, RunFacts, type Change, type ChoiceChange, type Fact, type ResultChange, type ResultKind, type RunDiff } from '../report/compare.js';

// ---------------------------------------------------------------- choosing the runs

const where = (p: string) => relative(process.cwd(), p) || p;

/**
 * The two runs to compare: both given; one given (against the newest run of its pipeline); or
 * none (the last two runs of the pipeline given by `file`, or of the only pipeline with runs).
 */
export function pickRuns(store: Store, a: string | undefined, b: string | undefined, file: string | undefined): [RunRecord, RunRecord] {
  const all = store.runs().filter((r) => r.status !== 'running'); // oldest first
  const find = (ref: string) => {
    const hits = all.filter((r) => r.id.startsWith(ref));
    if (hits.length === 1) return hits[0]!;
    throw new UserError(hits.length ? `run '${ref}' is ambiguous: ${hits.map((r) => r.id).join(', ')}` : `no run '${ref}' (see trendc runs)`);
  };
  if (a && b) {
    if (file) throw new UserError(`give two runs or a pipeline file with at most one run, not both (the runs already say which pipelines)`);
    const pair: [RunRecord, RunRecord] = [find(a), find(b)];
    if (pair[0].id === pair[1].id) throw new UserError(`'${a}' and '${b}' are the same run (${pair[0].id}): give two runs`);
    return pair;
  }
  if (a) {
    // One run: against the newest run of the pipeline file given, else of its own pipeline.
    const ra = find(a);
    const pipeline = file ? resolve(file) : ra.pipeline;
    const newest = all.filter((r) => r.pipeline === pipeline).at(-1);
    if (!newest) throw new UserError(`${where(pipeline)} has no runs; diff needs a run of it to compare ${ra.id} with (see trendc runs)`);
    if (newest.id === ra.id) throw new UserError(`run ${ra.id} is the newest run of ${where(ra.pipeline)}; give a second run to compare it with`);
    return [ra, newest];
  }
  let pipeline: string;
  if (file) pipeline = resolve(file);
  else {
    const pipelines = [...new Set(all.map((r) => r.pipeline))];
    if (!pipelines.length) throw new UserError('no runs yet: diff needs two runs (see trendc runs)');
    if (pipelines.length > 1) {
      const list = pipelines.map((p) => `${where(p)} (${all.filter((r) => r.pipeline === p).length} runs)`).join(', ');
      throw new UserError(`runs of several pipelines are cached; say which: trendc diff FILE (pipelines: ${list})`);
    }
    pipeline = pipelines[0]!;
  }
  const pool = all.filter((r) => r.pipeline === pipeline);
  if (pool.length < 2) throw new UserError(`${where(pipeline)} has ${pool.length ? 'only one run' : 'no runs'}; diff needs two (see trendc runs)`);
  return [pool.at(-2)!, pool.at(-1)!];
}

// ---------------------------------------------------------------- human output

const fmtV = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v));
const FRACTIONS: ReadonlySet<ResultKind> = new Set(['accuracy', 'tm', 'ensemble', 'robust', 'union']);

/** Values and delta of one change: fractions to three decimals, counts as integers. */
function figures(r: ResultChange): [string, string, string] {
  const ints = !FRACTIONS.has(r.kind) && [r.before, r.after].every((v) => v === null || Number.isInteger(v));
  const f = (v: number | null) => (v === null ? '–' : ints ? String(v) : Math.abs(v) >= 1000 ? v.toPrecision(6) : v.toFixed(3));
  const ci = (i?: { lo: number; hi: number }) => (i ? ` [${i.lo.toFixed(3)}, ${i.hi.toFixed(3)}]` : '');
  const d = r.delta === null ? 'n/a' : `${r.delta >= 0 ? '+' : ''}${f(r.delta)}`;
  return [
    f(r.before) + ci(r.interval?.before),
    f(r.after) + ci(r.interval?.after),
    d + (beyondIntervals(r.interval?.before, r.interval?.after) ? '; beyond both 95% intervals' : ''),
  ];
}

function sizes(r: ResultChange): string {
  if (r.counts?.before || r.counts?.after) {
    const c = (x?: { transferred: number; eligible: number }) => (x ? `${x.transferred}/${x.eligible}` : '–');
    return `${c(r.counts.before)} -> ${c(r.counts.after)} images`;
  }
  if (!r.n) return '';
  const { before, after } = r.n;
  return before === after || before === undefined || after === undefined ? `n=${after ?? before}` : `n ${before} -> ${after}`;
}

function section(title: string, rows: ResultChange[], minDelta: number): string[] {
  if (!rows.length) return [];
  const shown = rows.filter((r) => r.flag);
  const out = [`${title}:`];
  const w = Math.max(...shown.map((r) => r.label.length), 0);
  for (const r of shown) {
    const [a, b, d] = figures(r);
    out.push(`  ${r.label.padEnd(w)}  ${a} -> ${b}  (${d})  ${sizes(r)}`.trimEnd());
  }
  const hidden = rows.length - shown.length;
  if (hidden) out.push(`  ... and ${hidden} change${hidden === 1 ? '' : 's'} smaller than ${minDelta} (--min-delta 0 lists them)`);
  return out;
}

export function renderDiff(d: RunDiff): string {
  const out: string[] = [
    `diff ${d.a} -> ${d.b}${d.pipelineA === d.pipelineB ? ` (${where(d.pipelineB)})` : ` (${where(d.pipelineA)} -> ${where(d.pipelineB)})`}`,
  ];
  const of = (...kinds: ResultKind[]) => d.results.filter((r) => kinds.includes(r.kind));
  const body = [
    ...section('clean accuracy', of('accuracy'), d.minDelta),
    ...section('transfer-matrix cells (TM; transferred/eligible images)', of('tm'), d.minDelta),
    ...d.choices.flatMap((c) => [`${c.label}: ${c.before.join(', ')} -> ${c.after.join(', ')}`]),
    ...section('ensembles', of('ensemble'), d.minDelta),
    ...section('robust accuracy', of('robust'), d.minDelta),
    ...section('union accuracy', of('union'), d.minDelta),
    ...section('attacks', of('attack'), d.minDelta),
    ...section('training', of('training'), d.minDelta),
    ...section('other results', of('other'), d.minDelta),
  ];
  if (d.bytesDiffer.length) {
    out.push(
      `same key, other bytes (${d.bytesDiffer.length}): recomputed with a different result${d.bytesDiffer.some((x) => !x.backends || x.backends.before === x.backends.after) ? ' (not reproducible)' : ''}:`,
    );
    for (const x of d.bytesDiffer)
      out.push(
        `  ! ${x.id}: ${x.before.slice(0, 12)} -> ${x.after.slice(0, 12)}${x.backends && x.backends.before !== x.backends.after ? ` (backend ${x.backends.before} -> ${x.backends.after})` : ''}`,
      );
  }
  if (d.statuses.length) {
    out.push(`results in one run only (${d.statuses.length}):`);
    for (const x of d.statuses) out.push(`  ${x.id}: ${x.before} -> ${x.after}${x.error ? ` (${x.error.split('\n')[0]})` : ''}`);
  }
  if (d.results.length || d.choices.length) out.push(...body);
  else if (d.changed.length || d.added.length || d.removed.length || d.statuses.length) out.push('results: no value changed where both runs have one');
  if (d.added.length) out.push(`added nodes (${d.added.length}):`, ...d.added.map((x) => `  + ${x}`));
  if (d.removed.length) out.push(`removed nodes (${d.removed.length}):`, ...d.removed.map((x) => `  - ${x}`));
  for (const side of ['a', 'b'] as const) {
    const ids = d.notSelected.filter((x) => x.run === side).map((x) => x.id);
    if (ids.length) out.push(`not selected in run ${side === 'a' ? d.a : d.b} (--only): ${ids.length} node${ids.length === 1 ? '' : 's'}`);
  }
  if (d.changed.length) {
    out.push(`changed nodes (${d.changed.length}):`);
    for (const c of d.changed) {
      out.push(`  ~ ${c.id}`);
      for (const p of c.params.slice(0, 10)) out.push(`      ${p.path}: ${fmtV(p.before)} -> ${fmtV(p.after)}`);
      if (c.params.length > 10) out.push(`      ... and ${c.params.length - 10} more`);
    }
  }
  if (
    !d.added.length &&
    !d.removed.length &&
    !d.changed.length &&
    !d.results.length &&
    !d.choices.length &&
    !d.statuses.length &&
    !d.bytesDiffer.length &&
    !d.notSelected.length
  )
    out.push('no differences');
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- the diff report

/** reports/<pipeline of run B>/diff-<A>-<B>, under the working directory. */
export function defaultDiffReportDir(ra: RunRecord, rb: RunRecord): string {
  return join(defaultReportDir(rb.pipeline), `diff-${ra.id}-${rb.id}`);
}

/**
 * Writes the diff report to `dir`. A file system failure is returned as a message with the path
 * and the reason (the diff itself is still printed); anything else is thrown.
 */
export async function writeDiffReportTo(
  store: Store,
  ra: RunRecord,
  rb: RunRecord,
  d: RunDiff,
  dir: string,
): Promise<{ reportDir?: string; marked?: { tm: number; accuracy: number }; error?: string }> {
  const { writeDiffReport } = await import('../report/diff-report.js');
  try {
    return { reportDir: dir, marked: await writeDiffReport(store, ra, rb, d, dir) };
  } catch (e) {
    const why = describeFsError(e);
    if (!why) throw e;
    return { error: `the diff report could not be written to ${dir}: ${why} (--report-dir DIR writes it elsewhere, --no-report skips it)` };
  }
}
