/**
 * The report of a diff (`trendc diff`): a directory with index.md and index.html, like a run's
 * report. Per transfer-matrix attack, a heatmap of the TM changes B − A with the cells whose change
 * is beyond their intervals marked; the accuracy changes per model (clean, then under attack) as
 * charts of both runs' values with their 95% intervals; then the nodes added, removed and changed.
 * Figures are matched by meaning (RunFacts), as in the printed diff.
 */
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { NodeInfo } from '../compiler/dag.js';
import type { RunRecord, Store } from '../store/store.js';
import { deltaHeatmapSpec, dumbbellSpec, renderSvg, type DeltaCell, type RunPoint } from './charts.js';
import { RunFacts, type Fact, type RunDiff } from './compare.js';
import { renderHtml, type Chart } from './html.js';
import { titleOf } from './report.js';
import { beyondIntervals, DAGGER, fmtFrac, fmtPct, prop, propOf, SMALL_NOTE, type Prop } from './stats.js';
import { makeDirs } from '../common/dirs.js';

/** What the report says a mark means (index.md and the docs). */
export const BEYOND_NOTE =
  "A change is **beyond its intervals** (▲ rose, ▼ fell) when the two runs' 95% Wilson score intervals do not overlap: for a TM cell, transferred of eligible images in each run; for an accuracy, correct of n images. For figures of similar n that is about p < 0.006 for the difference, stricter than a two-proportion test at 5%: a change whose intervals overlap may still be real. Both runs usually evaluate the same images, a pairing this test does not use.";

interface Paired {
  a?: Fact;
  b?: Fact;
}
interface DiffContext {
  dir: string;
  charts: Map<string, Chart>;
  ra: RunRecord;
  rb: RunRecord;
  /** How many TM cells and accuracies changed beyond their intervals. */
  marked: { tm: number; accuracy: number };
}

/** "+0.17", "−0.08", and "0.00" for no change. */
const signed = (v: number, digits: number) => (v === 0 ? (0).toFixed(digits) : `${v > 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}`);
const arrow = (delta: number | null, beyond: boolean) => (!beyond || delta === null ? '' : delta > 0 ? ' ▲' : ' ▼');
const slug = (s: string) => s.replace(/[^A-Za-z0-9_.=-]+/g, '_');
const info = (n: { info?: unknown }) => (n.info ?? {}) as NodeInfo;

/** A TM cell as a proportion (transferred of eligible), else an accuracy (round(value × n) of n). */
function propOfFact(f: Fact | undefined): Prop | undefined {
  if (!f || f.value === null) return undefined;
  if (f.counts && f.counts.eligible > 0) return prop(f.counts.transferred, f.counts.eligible);
  return propOf(f.value, f.n);
}
function delta(p: Paired): number | null {
  return p.a && p.b && p.a.value !== null && p.b.value !== null ? p.b.value - p.a.value : null;
}
const beyond = (p: Paired) => beyondIntervals(p.a?.interval, p.b?.interval);

async function figure(ctx: DiffContext, name: string, spec: TopLevelSpec): Promise<string> {
  const svg = await renderSvg(spec);
  ctx.charts.set(name, { spec, svg });
  writeFileSync(join(ctx.dir, name), svg);
  return name;
}
function csv(rows: Array<Array<string | number | null | undefined>>): string {
  const cell = (c: string | number | null | undefined) =>
    c === null || c === undefined ? '' : typeof c === 'number' ? String(c) : /[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c;
  return rows.map((r) => r.map(cell).join(',')).join('\n') + '\n';
}
function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}
/** The CSV cells of one run's figure: value, k, n, interval bounds. */
function runCells(f: Fact | undefined): Array<number | null> {
  const p = propOfFact(f);
  return [f?.value ?? null, p?.k ?? null, p?.n ?? null, p?.ci?.lo ?? null, p?.ci?.hi ?? null];
}
const runHeader = (run: string) => [`${run} value`, `${run} k`, `${run} n`, `${run} lo95`, `${run} hi95`];

/** Classifiers in declaration order (the order of their clean predictions in run B, then run A). */
function declaredOrder(ctx: DiffContext): (names: Iterable<string>) => string[] {
  const order = new Map<string, number>();
  for (const run of [ctx.rb, ctx.ra])
    for (const n of run.nodes) if (n.op === 'predict' && info(n).classifier && !order.has(info(n).classifier!)) order.set(info(n).classifier!, order.size);
  return (names) => [...new Set(names)].sort((x, y) => (order.get(x) ?? 1e9) - (order.get(y) ?? 1e9) || (x < y ? -1 : x > y ? 1 : 0));
}

// ---------------------------------------------------------------- transfer matrices

interface TmGroup {
  id: string;
  attack: string;
  /** By "source->target". */
  cells: Map<string, Paired & { source: string; target: string }>;
}

function tmGroups(fa: RunFacts, fb: RunFacts): TmGroup[] {
  const groups = new Map<string, TmGroup>();
  for (const [side, facts] of [
    ['a', fa],
    ['b', fb],
  ] as const)
    for (const f of facts.facts.values()) {
      if (f.kind !== 'tm') continue;
      const { attack, source, target } = f.names as { attack: string; source: string; target: string };
      const g = groups.get(`${f.id}\t${attack}`) ?? { id: f.id, attack, cells: new Map() };
      groups.set(`${f.id}\t${attack}`, g);
      const c = g.cells.get(`${source}->${target}`) ?? { source, target };
      c[side] = f;
      g.cells.set(`${source}->${target}`, c);
    }
  // A matrix in one run only has no change to show.
  return [...groups.values()].filter((g) => [...g.cells.values()].some((c) => c.a) && [...g.cells.values()].some((c) => c.b));
}

/** The "source->target" pairs of a matrix that are a classifier against itself (run B's, else A's). */
function selfPairs(ctx: DiffContext, id: string): Set<string> {
  const node = ctx.rb.nodes.find((n) => n.id === id) ?? ctx.ra.nodes.find((n) => n.id === id);
  const l = node ? info(node).labels : undefined;
  const self = (node?.params as { self?: Array<[number, number]> } | undefined)?.self;
  if (!l?.sources || !l.targets || !self) return new Set();
  return new Set(self.map(([t, c]) => `${l.sources![c]}->${l.targets![t]}`));
}

function deltaCells(g: TmGroup, self: Set<string>): DeltaCell[] {
  return [...g.cells.entries()].map(([k, c]) => {
    const d = delta(c);
    const marked = beyond(c);
    return {
      row: c.target,
      col: c.source,
      delta: d,
      text: d === null ? '–' : `${signed(d, 2)}${arrow(d, marked)}`,
      beyond: marked,
      diagonal: self.has(k) || (self.size === 0 && c.source === c.target),
      a: c.a ? fmtFrac(propOfFact(c.a)) : '(not in A)',
      b: c.b ? fmtFrac(propOfFact(c.b)) : '(not in B)',
    };
  });
}

async function tmSection(ctx: DiffContext, g: TmGroup, base: string): Promise<string[]> {
  const order = declaredOrder(ctx);
  const cells = deltaCells(g, selfPairs(ctx, g.id));
  const rows = order(cells.map((c) => c.row));
  const cols = order(cells.map((c) => c.col));
  const svg = await figure(ctx, `${base}.svg`, deltaHeatmapSpec(`TM change under ${g.attack} (B − A)`, cells, rows, cols, 'target', 'source'));
  const byKey = new Map(cells.map((c) => [`${c.col}->${c.row}`, c]));
  const data = rows.flatMap((t) => cols.map((s) => ({ t, s, p: g.cells.get(`${s}->${t}`), c: byKey.get(`${s}->${t}`) })));
  writeFileSync(
    join(ctx.dir, `${base}.csv`),
    csv([
      ['target', 'source', ...runHeader('A'), ...runHeader('B'), 'delta', 'beyond', 'self'],
      ...data.filter((x) => x.p).map(({ t, s, p, c }) => [t, s, ...runCells(p!.a), ...runCells(p!.b), delta(p!), c!.beyond ? 1 : 0, c!.diagonal ? 1 : 0]),
    ]),
  );
  const marked = data.filter((x) => x.c?.beyond);
  ctx.marked.tm += marked.length;
  const changed = data.filter((x) => x.c && x.c.delta !== null && x.c.delta !== 0).length;
  return [
    `### ${g.attack} (\`${g.id}\`)`,
    '',
    `${changed} of ${cells.length} cells changed; ${marked.length} beyond their intervals.`,
    '',
    `![TM change under ${g.attack}](${svg})`,
    '',
    ...table(
      ['target \\ source', ...cols],
      rows.map((t) => [t, ...cols.map((s) => byKey.get(`${s}->${t}`)?.text ?? '')]),
    ),
    '',
    ...marked.map(({ t, s, c }) => `- ${s} → ${t}: ${c!.a} → ${c!.b}, ${c!.text}`),
    ...(marked.length ? [''] : []),
    `Data (both runs' counts and intervals): [${base}.csv](${base}.csv)`,
    '',
  ];
}

async function transfers(ctx: DiffContext, fa: RunFacts, fb: RunFacts): Promise<string[]> {
  const groups = tmGroups(fa, fb);
  if (!groups.length) return [];
  const out = ['## Transferability', '', 'Each cell: TM in run B minus TM in run A (rows targets, columns sources); the diagonal is grey.', ''];
  const used = new Set<string>();
  for (const g of groups) {
    let base = `tm-${slug(g.id.replace(/^matrix\//, ''))}-${slug(g.attack)}`;
    while (used.has(base)) base += '_';
    used.add(base);
    out.push(...(await tmSection(ctx, g, base)));
  }
  return out;
}

// ---------------------------------------------------------------- accuracies

interface AccuracyPair extends Paired {
  label: string;
  kind: 'clean' | 'under attack';
}

/** Accuracies in both runs, by meaning: clean per classifier, then under each attack and union. */
function accuracyPairs(fa: RunFacts, fb: RunFacts): AccuracyPair[] {
  const labelOf = (f: Fact): [string, AccuracyPair['kind']] | undefined => {
    const { target, attack, member } = f.names;
    if (f.kind === 'accuracy') return [f.label, 'clean'];
    if (f.path.endsWith(' accuracy') && target && attack && !member) return [`${target} under ${attack}`, 'under attack'];
    if (f.kind === 'union' && f.path.endsWith(' union') && target) return [`${target} under the union`, 'under attack'];
    return undefined;
  };
  const pairs = new Map<string, AccuracyPair>();
  for (const [side, facts] of [
    ['a', fa],
    ['b', fb],
  ] as const)
    for (const f of facts.facts.values()) {
      const l = labelOf(f);
      if (!l) continue;
      const p = pairs.get(f.path) ?? { label: l[0], kind: l[1] };
      p[side] = f;
      pairs.set(f.path, p);
    }
  return [...pairs.values()].filter((p) => delta(p) !== null);
}

async function accuracyChart(ctx: DiffContext, pairs: AccuracyPair[], title: string, name: string): Promise<string[]> {
  const points: RunPoint[] = [];
  const labels: string[] = [];
  for (const p of pairs) {
    const d = delta(p)!;
    const label = `${p.label}  ${signed(d, 3)}${arrow(d, beyond(p))}`;
    labels.push(label);
    for (const [run, f] of [
      ['A', p.a!],
      ['B', p.b!],
    ] as const) {
      const q = propOfFact(f);
      points.push({ label, run, value: f.value!, ...(q?.ci ? { lo: q.ci.lo, hi: q.ci.hi, n: q.n } : {}), delta: d, beyond: beyond(p) });
    }
  }
  const svg = await figure(ctx, `${name}.svg`, dumbbellSpec(`${title}: run A (grey) and run B (blue), 95% intervals`, points, 'accuracy', labels));
  return [
    `![${title}](${svg})`,
    '',
    ...table(
      ['figure', 'A', 'B', 'B − A'],
      pairs.map((p) => [p.label, fmtPct(propOfFact(p.a)), fmtPct(propOfFact(p.b)), `${signed(delta(p)! * 100, 1)} pp${arrow(delta(p), beyond(p))}`]),
    ),
    '',
  ];
}

async function accuracies(ctx: DiffContext, fa: RunFacts, fb: RunFacts): Promise<string[]> {
  const pairs = accuracyPairs(fa, fb);
  if (!pairs.length) return [];
  const order = declaredOrder(ctx)(pairs.filter((p) => p.kind === 'clean').map((p) => p.a!.names.classifier ?? p.label));
  const clean = pairs
    .filter((p) => p.kind === 'clean')
    .sort((x, y) => order.indexOf(x.a!.names.classifier ?? x.label) - order.indexOf(y.a!.names.classifier ?? y.label));
  const attacked = pairs.filter((p) => p.kind === 'under attack');
  ctx.marked.accuracy += pairs.filter(beyond).length;
  writeFileSync(
    join(ctx.dir, 'accuracy.csv'),
    csv([
      ['kind', 'figure', ...runHeader('A'), ...runHeader('B'), 'delta', 'beyond'],
      ...pairs.map((p) => [p.kind, p.label, ...runCells(p.a), ...runCells(p.b), delta(p), beyond(p) ? 1 : 0]),
    ]),
  );
  const out = ['## Accuracy', '', 'Every figure in both runs, changed or not; B − A in percentage points (pp).', ''];
  if (clean.length) out.push('### Clean accuracy', '', ...(await accuracyChart(ctx, clean, 'Clean accuracy', 'accuracy-clean')));
  if (attacked.length) out.push('### Accuracy under attack', '', ...(await accuracyChart(ctx, attacked, 'Accuracy under attack', 'accuracy-attacked')));
  out.push('Data (both runs\u2019 counts and intervals): [accuracy.csv](accuracy.csv)', '');
  return out;
}

// ---------------------------------------------------------------- nodes

function nodes(d: RunDiff): string[] {
  const out: string[] = [];
  if (d.choices.length) out.push('## Selections', '', ...d.choices.map((c) => `- ${c.label}: ${c.before.join(', ')} → ${c.after.join(', ')}`), '');
  if (d.bytesDiffer.length) {
    out.push(
      '## Same key, other bytes',
      '',
      'Recomputed with a different result (on the same backend, the node is not reproducible; run A\u2019s figures for it are no longer stored):',
      '',
    );
    for (const x of d.bytesDiffer)
      out.push(
        `- \`${x.id}\`: ${x.before.slice(0, 12)} → ${x.after.slice(0, 12)}${x.backends && x.backends.before !== x.backends.after ? ` (backend ${x.backends.before} → ${x.backends.after})` : ''}`,
      );
    out.push('');
  }
  if (d.statuses.length) {
    out.push(
      '## Results in one run only',
      '',
      ...d.statuses.map((x) => `- \`${x.id}\`: ${x.before} → ${x.after}${x.error ? ` (${x.error.split('\n')[0]})` : ''}`),
      '',
    );
  }
  if (d.notSelected.length) {
    for (const side of ['a', 'b'] as const) {
      const ids = d.notSelected.filter((x) => x.run === side).map((x) => x.id);
      if (ids.length) out.push(`Not selected in run ${side === 'a' ? 'A' : 'B'} (\`--only\`): ${ids.length} nodes.`, '');
    }
  }
  if (!d.added.length && !d.removed.length && !d.changed.length) return [...out, '## Nodes', '', 'The two runs have the same nodes with the same keys.', ''];
  out.push('## Nodes', '');
  if (d.added.length) out.push(`Added (${d.added.length}): ${d.added.map((x) => `\`${x}\``).join(', ')}`, '');
  if (d.removed.length) out.push(`Removed (${d.removed.length}): ${d.removed.map((x) => `\`${x}\``).join(', ')}`, '');
  if (d.changed.length) {
    out.push(`Changed (${d.changed.length}), with what changed in their parameters:`, '');
    for (const c of d.changed) {
      const shown = c.params.slice(0, 10).map((p) => `\`${p.path}\`: ${JSON.stringify(p.before) ?? '(absent)'} → ${JSON.stringify(p.after) ?? '(absent)'}`);
      out.push(
        `- \`${c.id}\`${shown.length ? `: ${shown.join('; ')}` : ' (an input changed)'}${c.params.length > 10 ? `; and ${c.params.length - 10} more` : ''}`,
      );
    }
    out.push('');
  }
  return out;
}

// ---------------------------------------------------------------- the report

/** Where a diff's report goes by default: beside run B's report, in diff-<A>-<B>. */
export function diffReportName(a: string, b: string): string {
  return `diff-${a}-${b}`;
}

/**
 * Writes the diff report of runs A and B (`d` is their diffRuns) to `dir`: index.md, index.html,
 * the charts as SVG and the figures as CSV. Returns how many TM cells and accuracies it marks as
 * changed beyond their intervals.
 */
export async function writeDiffReport(store: Store, ra: RunRecord, rb: RunRecord, d: RunDiff, dir: string): Promise<DiffContext['marked']> {
  makeDirs(dir);
  const ctx: DiffContext = { dir, charts: new Map(), ra, rb, marked: { tm: 0, accuracy: 0 } };
  const summaryOf = (n: { key: string }) => store.meta(n.key)?.summary;
  const fa = new RunFacts(ra, summaryOf);
  const fb = new RunFacts(rb, summaryOf);
  const where = (r: RunRecord) => relative(process.cwd(), r.pipeline) || r.pipeline;
  const title = `Diff: ${titleOf(rb)}`;
  const md = [
    `# ${title}`,
    '',
    `Run A \`${ra.id}\` of \`${where(ra)}\` (started ${ra.startedAt}) → run B \`${rb.id}\` of \`${where(rb)}\` (started ${rb.startedAt}). Every change is B − A.`,
    '',
    BEYOND_NOTE,
    '',
    ...(await accuracies(ctx, fa, fb)),
    ...(await transfers(ctx, fa, fb)),
    ...nodes(d),
  ];
  // The dagger's note once, under the definitions, when some figure rests on few images.
  if (md.some((l) => l.includes(DAGGER))) md.splice(6, 0, SMALL_NOTE, '');
  const text = md.join('\n') + '\n';
  writeFileSync(join(dir, 'index.md'), text);
  writeFileSync(join(dir, 'index.html'), renderHtml(title, text, ctx.charts));
  return ctx.marked;
}
