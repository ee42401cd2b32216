/**
 * The report's sections, each a function of the run and the cache returning Markdown lines and
 * writing its figures (SVG) and tables (CSV, JSON) beside index.md.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ratio, summaryAs, type MatrixAttackSummary, type OpName, type OpSummary } from '../compiler/contract.js';
import type { NodeInfo } from '../compiler/dag.js';
import { saturating } from '../runtime/analysis/fit.js';
import type { NodeMeta, RunNode, RunRecord, Store } from '../store/store.js';
import type { TopLevelSpec } from 'vega-lite';
import { barSpec, heatmapSpec, lineSpec, renderSvg, type Bar, type Cell, type Point } from './charts.js';
import type { Chart } from './html.js';
import { fmtFrac, fmtPct, prop, propCells, propHeader, propOf, type Prop } from './stats.js';

export interface SectionContext {
  store: Store;
  run: RunRecord;
  dir: string;
  files: string[];
  /** Every figure written, by file name: its spec and SVG (index.html draws it as a live view). */
  charts: Map<string, Chart>;
}

export type Section = (ctx: SectionContext) => Promise<string[]> | string[];

type Info = NodeInfo;

const done = (n: RunNode) => n.status === 'cached' || n.status === 'ran';
const info = (n: RunNode) => (n.info ?? {}) as Info;
/** Every name a node was declared under: its own and those of identical declarations. */
const namesOf = (n: RunNode): string[] => {
  const i = info(n);
  const own = i.classifier ?? i.model;
  return [...(own !== undefined ? [own] : []), ...(i.aliases ?? [])];
};
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)}%`);
/** A Point's or Bar's interval fields from a proportion. */
const bounds = (p: Prop | undefined) => (p?.ci ? { lo: p.ci.lo, hi: p.ci.hi, n: p.n } : {});

function nodesOf(ctx: SectionContext, op: string): RunNode[] {
  return ctx.run.nodes.filter((n) => n.op === op && done(n));
}
/**
 * A statement's nodes of an operation, including those it shares with an earlier statement (the
 * same computation written twice, computed once): each shared node appears once per statement,
 * under that statement's labels.
 */
function statementNodes(ctx: SectionContext, op: string): RunNode[] {
  return nodesOf(ctx, op).flatMap((n) => [n, ...(info(n).also ?? []).map((v) => ({ ...n, info: { ...info(n), sweep: undefined, ...v, also: undefined } }))]);
}
/** Node metadata, read from the store once per report (sections look nodes up many times). */
const metaCache = new WeakMap<SectionContext, Map<string, NodeMeta | undefined>>();
function meta(ctx: SectionContext, n: RunNode): NodeMeta | undefined {
  let cache = metaCache.get(ctx);
  if (!cache) metaCache.set(ctx, (cache = new Map()));
  if (!cache.has(n.key)) cache.set(n.key, ctx.store.meta(n.key));
  return cache.get(n.key);
}
/** A node's summary, typed by the contract for its operation `op` (the node's op). */
function summary<K extends OpName>(ctx: SectionContext, n: RunNode, op: K): OpSummary<K> | undefined {
  const s = meta(ctx, n)?.summary;
  return s === undefined ? undefined : summaryAs(op, s);
}
function extra(ctx: SectionContext, n: RunNode): Record<string, unknown> {
  return meta(ctx, n)?.extra ?? {};
}
function write(ctx: SectionContext, name: string, content: string): string {
  writeFileSync(join(ctx.dir, name), content);
  ctx.files.push(name);
  return name;
}
/** A figure: its SVG written beside index.md (returns the file name) and kept for index.html. */
async function figure(ctx: SectionContext, name: string, spec: TopLevelSpec): Promise<string> {
  const svg = await renderSvg(spec);
  ctx.charts.set(name, { spec, svg });
  return write(ctx, name, svg);
}
function csv(rows: Array<Array<string | number | null | undefined>>): string {
  return (
    rows
      .map((r) =>
        r.map((c) => (c === null || c === undefined ? '' : typeof c === 'number' ? String(c) : /[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)).join(','),
      )
      .join('\n') + '\n'
  );
}
function table(header: string[], rows: Array<Array<string | number>>): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}
const slug = (s: string) => s.replace(/[^A-Za-z0-9_.=-]+/g, '_');
/** The attack's label without the swept values ("pgd[eps=0.1]" -> "pgd"). */
const baseLabel = (s: string) => s.replace(/\[.*\]$/, '');

/** Declaration order of classifiers: the order of their clean-prediction nodes in the run. */
function declared(ctx: SectionContext): Map<string, number> {
  const order = new Map<string, number>();
  ctx.run.nodes.filter((n) => n.op === 'predict').forEach((n, i) => order.set(info(n).classifier!, i));
  return order;
}
function byDeclaration(ctx: SectionContext, names: string[]): number[] {
  const order = declared(ctx);
  return names.map((_, i) => i).sort((a, b) => (order.get(names[a]!) ?? 1e9) - (order.get(names[b]!) ?? 1e9));
}

// ---------------------------------------------------------------- models
/** Clean accuracy of a prediction node: its correct images of n. */
function predictProp(s: OpSummary<'predict'> | undefined): Prop | undefined {
  if (!s) return undefined;
  return Number.isInteger(s.correct) && Number.isInteger(s.n) && s.correct <= s.n ? prop(s.correct, s.n) : propOf(s.accuracy, s.n);
}
/** The validation images of a training node's dataset (what its validation accuracy is a fraction of). */
function valCount(ctx: SectionContext, n: RunNode): number | undefined {
  const d = typeof n.inputs.data === 'string' ? ctx.run.nodes.find((m) => m.id === n.inputs.data) : undefined;
  const v = d ? summary(ctx, d, 'dataset')?.val : undefined;
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}
const quantisation = (spec: OpSummary<'train'>['spec']) =>
  [
    spec.input ? (spec.input.kind === 'halftone' ? 'input HT' : `input ${spec.input.bits}bit`) : '',
    spec.weightBits ? `weight ${spec.weightBits}bit` : '',
    spec.activationBits ? `act ${spec.activationBits}bit` : '',
  ]
    .filter(Boolean)
    .join(', ');

const models: Section = async (ctx) => {
  const trains = nodesOf(ctx, 'train');
  if (!trains.length) return [];
  const clean = new Map(nodesOf(ctx, 'predict').map((n) => [info(n).classifier, predictProp(summary(ctx, n, 'predict'))]));
  const rows: Array<Array<string | number>> = [];
  const data: Array<Array<string | number | null>> = [];
  const curves: Point[] = [];
  for (const n of trains) {
    const s = summary(ctx, n, 'train');
    if (!s?.spec) continue; // a summary from another operation set (tests) has no model spec
    const name = info(n).model!;
    const arch = `${s.spec.arch} ×${Number(s.spec.width)
      .toFixed(3)
      .replace(/\.?0+$/, '')}`;
    const ipsRaw = extra(ctx, n).trainImagesPerSecond;
    const ips = typeof ipsRaw === 'number' ? ipsRaw : null;
    const nVal = valCount(ctx, n);
    const val = propOf(s.valAccuracy, nVal);
    const test = clean.get(name);
    rows.push([
      name,
      arch,
      quantisation(s.spec) || '–',
      s.method,
      s.params.toLocaleString('en-US'),
      s.bestEpoch,
      val ? fmtPct(val) : pct(s.valAccuracy),
      fmtPct(test),
      ips ?? '–',
    ]);
    data.push([name, arch, quantisation(s.spec), s.method, s.params, s.bestEpoch, ...propCells(val), ...propCells(test), ips]);
    for (const h of s.history) curves.push({ series: name, x: h.epoch, y: h.valAcc, ...bounds(propOf(h.valAcc, nVal)) });
  }
  write(
    ctx,
    'models.csv',
    csv([
      [
        'model',
        'architecture',
        'quantisation',
        'method',
        'params',
        'best epoch',
        ...propHeader('val accuracy'),
        ...propHeader('test accuracy'),
        'train images/s',
      ],
      ...data,
    ]),
  );
  const svg = curves.length
    ? await figure(ctx, 'training.svg', lineSpec('Validation accuracy per epoch', curves, 'epoch', 'validation accuracy', { integerX: true, errorBars: false }))
    : undefined;
  return [
    '## Models',
    '',
    ...table(['model', 'architecture', 'quantisation', 'method', 'parameters', 'best epoch', 'validation acc.', 'test acc.', 'train img/s'], rows),
    '',
    ...(svg ? [`![validation accuracy per epoch](${svg})`] : []),
  ];
};

// ---------------------------------------------------------------- ensembles and smoothing (clean)
const classifiers: Section = (ctx) => {
  const selects = new Map(nodesOf(ctx, 'select').map((n) => [info(n).classifier, n]));
  const rows: Array<Array<string | number>> = [];
  const data: Array<Array<string | number | null>> = [];
  for (const n of nodesOf(ctx, 'predict')) {
    const s = summary(ctx, n, 'predict');
    if (!s || s.kind !== 'ensemble') continue;
    const name = info(n).classifier!;
    const sel = selects.get(name);
    const cands = sel ? info(sel).labels?.candidates : undefined;
    const members = s.chosen && cands ? s.chosen.map((i) => cands[i]!) : [];
    const acc = predictProp(s);
    const own = (s.members ?? []).map((m) => propOf(m, s.n));
    rows.push([name, members.length ? members.join(', ') : '(as declared)', fmtPct(acc), own.map(fmtPct).join('; ')]);
    data.push([name, 'ensemble', ...propCells(acc)]);
    own.forEach((m, i) => data.push([name, members[i] ?? memberName(ctx, n, i) ?? `member ${i + 1}`, ...propCells(m)]));
  }
  if (!rows.length) return [];
  write(ctx, 'ensembles.csv', csv([['ensemble', 'classifier', ...propHeader('clean accuracy')], ...data]));
  return [
    '## Ensembles (clean accuracy)',
    '',
    ...table(['ensemble', 'members', 'accuracy', "members' accuracy"], rows),
    '',
    'Data (each member on a row): [ensembles.csv](ensembles.csv)',
  ];
};

// ---------------------------------------------------------------- transfer matrices
const transfers: Section = async (ctx) => {
  const out: string[] = [];
  for (const n of nodesOf(ctx, 'matrix')) {
    const s = summary(ctx, n, 'matrix');
    const l = info(n).labels;
    if (!s || !l) continue;
    const self = (n.params as { self?: Array<[number, number]> } | undefined)?.self;
    out.push(...(await transferMatrix(ctx, info(n).stmt!.n, info(n).stmt!.line, s, l, self)));
  }
  return out;
};

/** A transfer matrix's labels, with its rows (targets) and columns (sources) in declaration order. */
interface MatrixAxes {
  l: Record<string, string[]>;
  /** Target and source indices, in declaration order. */
  ro: number[];
  co: number[];
  /** Their names. */
  rows: string[];
  cols: string[];
  /** Whether cell (target t, source c) is a classifier against itself. */
  diagonal: (t: number, c: number) => boolean;
}

/** One transfer statement's section: a heatmap, table and CSV per attack, then the TM-versus-eps fits. */
async function transferMatrix(
  ctx: SectionContext,
  stmt: number,
  line: number,
  s: OpSummary<'matrix'>,
  l: Record<string, string[]>,
  self: Array<[number, number]> | undefined,
): Promise<string[]> {
  const ro = byDeclaration(ctx, l.targets!);
  const co = byDeclaration(ctx, l.sources!);
  // The matrix's own list of self pairs; without it (older nodes), equal names.
  const pairs = new Set((self ?? []).map(([t, c]) => `${t},${c}`));
  const diagonal = self ? (t: number, c: number) => pairs.has(`${t},${c}`) : (t: number, c: number) => l.targets![t] === l.sources![c];
  const ax: MatrixAxes = { l, ro, co, rows: ro.map((i) => l.targets![i]!), cols: co.map((i) => l.sources![i]!), diagonal };
  const out = [
    `## Transferability (transfer statement at line ${line})`,
    '',
    "TM = fraction of the images the source classifies correctly, its attack fools, and the target classifies correctly when clean, that also fool the target. Rows are targets, columns sources; averages leave out a model's transfer to itself.",
    '',
    "Each cell: TM [95% Wilson score interval] (n = the eligible images it is a fraction of). The averages are plain means of cells, without intervals. In the heatmaps a model's transfer to itself (the diagonal) is grey, outside the colour scale.",
    '',
  ];
  for (const [ai, a] of s.attacks.entries()) {
    const label = l.attacks![ai]!;
    const base = `transfer${stmt}-${s.attacks.length > 1 ? `${ai + 1}-` : ''}${slug(label)}`;
    out.push(...(await transferAttack(ctx, ax, a, label, base)));
  }
  if (s.fits) out.push(...(await transferFits(ctx, ax, s.attacks, s.fits, `transfer${stmt}-tm-vs-eps`)));
  return out;
}

/** A TM cell as a proportion: transferred of eligible images (undefined where the counts are missing). */
function tmProp(a: MatrixAttackSummary, t: number, c: number): Prop | undefined {
  const e = a.eligible?.[t]?.[c];
  const k = a.transferred?.[t]?.[c];
  return Number.isInteger(e) && Number.isInteger(k) && k! >= 0 && k! <= e! ? prop(k!, e!) : undefined;
}

/** The heatmap's cells: TM with its n, the diagonal flagged, averages on the margins. */
function tmCells(ax: MatrixAxes, a: MatrixAttackSummary): Cell[] {
  const { l, ro, co } = ax;
  const cells: Cell[] = [];
  for (const t of ro)
    for (const c of co) {
      const p = tmProp(a, t, c);
      const ci = p?.ci ? { lo: p.ci.lo, hi: p.ci.hi } : {};
      cells.push({ row: l.targets![t]!, col: l.sources![c]!, value: a.tm[t]![c] ?? null, diagonal: ax.diagonal(t, c), ...(p ? { n: p.n } : {}), ...ci });
    }
  ro.forEach((t) => cells.push({ row: l.targets![t]!, col: 'avg', value: a.rowAvg[t] ?? null, margin: true }));
  co.forEach((c) => cells.push({ row: 'avg', col: l.sources![c]!, value: a.colAvg[c] ?? null, margin: true }));
  return cells;
}

/** One attack's TM: heatmap (SVG), counts and intervals (CSV), the table, and the per-family table. */
async function transferAttack(ctx: SectionContext, ax: MatrixAxes, a: MatrixAttackSummary, label: string, base: string): Promise<string[]> {
  const { l, ro, co, rows, cols } = ax;
  const heat = heatmapSpec(`TM under ${label}`, tmCells(ax, a), [...rows, 'avg'], [...cols, 'avg'], 'target', 'source');
  const svg = await figure(ctx, `${base}.svg`, heat);
  write(
    ctx,
    `${base}.csv`,
    csv([
      ['target', 'source', ...propHeader('tm'), 'generated', 'eligible', 'transferred', 'self'],
      ...ro.flatMap((t) =>
        co.map((c) => {
          const [, n, lo, hi] = propCells(tmProp(a, t, c));
          return [
            l.targets![t]!,
            l.sources![c]!,
            a.tm[t]![c] ?? null,
            n,
            lo,
            hi,
            a.generated[t]![c]!,
            a.eligible[t]![c]!,
            a.transferred[t]![c]!,
            ax.diagonal(t, c) ? 1 : 0,
          ];
        }),
      ),
    ]),
  );
  const f2 = (v: number | null | undefined) => (v === null || v === undefined ? '–' : v.toFixed(2));
  const cell = (t: number, c: number) => {
    const p = tmProp(a, t, c);
    return p ? fmtFrac(p) : f2(a.tm[t]![c]);
  };
  const out = [`### ${label}`, '', `![TM heatmap for ${label}](${svg})`, ''];
  out.push(
    ...table(
      ['target \\ source', ...cols, 'avg'],
      [...ro.map((t) => [l.targets![t]!, ...co.map((c) => cell(t, c)), f2(a.rowAvg[t])]), ['avg', ...co.map((c) => f2(a.colAvg[c])), '']],
    ),
    '',
    `Data (with the generated, eligible and transferred counts and the interval bounds): [${base}.csv](${base}.csv)`,
    '',
  );
  if (a.families.length) out.push(...familyTable(l, a), '');
  return out;
}

/** TM and transferred counts by (target family, source family). */
function familyTable(l: Record<string, string[]>, a: MatrixAttackSummary): string[] {
  return table(
    ['target family', 'source family', 'TM mean ± sd', 'transferred mean ± sd', 'pairs'],
    a.families.map((f) => [
      l.targetFamilies![f.targetFamily]!,
      l.sourceFamilies![f.sourceFamily]!,
      `${f.tmMean?.toFixed(3) ?? '–'} ± ${f.tmSd?.toFixed(3) ?? '–'}`,
      `${f.transferredMean?.toFixed(1) ?? '–'} ± ${f.transferredSd?.toFixed(1) ?? '–'}`,
      f.pairs,
    ]),
  );
}

/** The TM-versus-eps fits: per (target, source) pair, the fit's parameters and, for up to 12 pairs, measured and fitted points. */
function fitSeries(ax: MatrixAxes, attacks: MatrixAttackSummary[], fits: NonNullable<OpSummary<'matrix'>['fits']>) {
  const { l, ro, co } = ax;
  const eps = attacks.map((a) => ratio(a.sweep.eps!));
  const pts: Point[] = [];
  const fitRows: Array<Array<string | number>> = [];
  const pairs = ro.flatMap((t) => co.filter((c) => !ax.diagonal(t, c)).map((c) => [t, c] as const));
  for (const [t, c] of pairs) {
    const f = fits[t]![c]!;
    const series = `${l.sources![c]} → ${l.targets![t]}`;
    fitRows.push([series, f.transferred.a, f.transferred.b, f.generated.a, f.generated.b, f.rmse]);
    if (pairs.length > 12) continue;
    attacks.forEach((a, i) => {
      const v = a.tm[t]![c];
      if (v !== null && v !== undefined) pts.push({ series, x: eps[i]!, y: v, ...bounds(tmProp(a, t, c)) });
    });
    const lo = Math.min(...eps);
    const hi = Math.max(...eps);
    for (let k = 0; k <= 30; k++) {
      const e = lo + ((hi - lo) * k) / 30;
      const g = saturating(f.generated, e);
      if (g > 0) pts.push({ series, x: e, y: saturating(f.transferred, e) / g, kind: 'fit' });
    }
  }
  return { pts, fitRows };
}

/** The "TM versus eps" subsection: the fits' CSV, chart and table. */
async function transferFits(
  ctx: SectionContext,
  ax: MatrixAxes,
  attacks: MatrixAttackSummary[],
  fits: NonNullable<OpSummary<'matrix'>['fits']>,
  name: string,
): Promise<string[]> {
  const { pts, fitRows } = fitSeries(ax, attacks, fits);
  write(ctx, `${name}.csv`, csv([['pair', 'transferred a', 'transferred b', 'generated a', 'generated b', 'TM fit rmse'], ...fitRows]));
  const out = [
    '### TM versus eps',
    '',
    'Transferred and generated counts each fit a(1 - exp(-b eps)); the dashed curves are the ratio of the fits (TREND appendix V); error bars on the measured TMs are their 95% Wilson score intervals.',
    '',
  ];
  if (pts.length) out.push(`![TM versus eps](${await figure(ctx, `${name}.svg`, lineSpec('TM versus eps', pts, 'eps', 'TM'))})`, '');
  // Three significant digits: when the counts grow linearly over the swept range, the fit
  // runs to a large a and a small b (only their product, the initial slope, is determined).
  const sig = (v: string | number) => String(Number(Number(v).toPrecision(3)));
  out.push(
    ...table(
      ['pair', 'transferred a, b', 'generated a, b', 'fit RMSE'],
      fitRows.map((r) => [String(r[0]), `${sig(r[1]!)}, ${sig(r[2]!)}`, `${sig(r[3]!)}, ${sig(r[4]!)}`, sig(r[5]!)]),
    ),
    '',
  );
  return out;
}

// ---------------------------------------------------------------- TREND selection
const selections: Section = (ctx) => {
  const out: string[] = [];
  for (const n of nodesOf(ctx, 'select')) {
    const s = summary(ctx, n, 'select');
    const cands = info(n).labels?.candidates;
    if (!s || !cands) continue;
    const name = info(n).classifier!;
    out.push(
      `## TREND selection: ${name}`,
      '',
      `Chosen: **${s.chosen.map((i) => cands[i]).join(', ')}** (sum of pairwise symmetric TM ${s.objective.toFixed(3)}, ${s.method} search over ${s.evaluated} subsets).`,
      '',
    );
    write(ctx, `select-${slug(name)}.csv`, csv([['', ...cands], ...s.pairs.map((r, i) => [cands[i]!, ...r.map((v) => +v.toFixed(4))])]));
    out.push(`Symmetric pairwise TM: [select-${slug(name)}.csv](select-${slug(name)}.csv)`);
  }
  return out;
};

// ---------------------------------------------------------------- robustness (evaluate)
const robustness: Section = async (ctx) => {
  const robust = statementNodes(ctx, 'robust');
  if (!robust.length) return [];
  const out: string[] = [];
  const stmts = [...new Set(robust.map((n) => info(n).stmt!.n))].sort((a, b) => a - b);
  const clean = new Map(nodesOf(ctx, 'predict').flatMap((n) => namesOf(n).map((c) => [c, summary(ctx, n, 'predict')] as const)));
  for (const k of stmts)
    out.push(
      ...(await robustStatement(
        ctx,
        k,
        robust.filter((n) => info(n).stmt!.n === k),
        clean,
      )),
    );
  return out;
};

type CleanSummaries = Map<string, OpSummary<'predict'> | undefined>;

/** One evaluate statement's section: a sweep chart or an accuracy table, then its ensembles against their members. */
async function robustStatement(ctx: SectionContext, k: number, ns: RunNode[], clean: CleanSummaries): Promise<string[]> {
  const line = info(ns[0]!).stmt!.line;
  const out = [`## Robustness (evaluate statement at line ${line})`, ''];
  const swept = ns.some((n) => info(n).sweep);
  out.push(...(swept ? await robustSweep(ctx, k, ns) : robustTable(ctx, k, ns, clean)));
  out.push(...randomizedNote(ctx, ns));
  out.push(...(await ensemblesAgainstMembers(ctx, k, ns, swept)));
  return out;
}

/** Why a classifier's decision is random at inference, if it is: smoothing or noise injection. */
function randomness(ctx: SectionContext, n: RunNode): string | undefined {
  const spec = (n.params as { target?: { kind?: string } }).target;
  if (spec?.kind === 'smooth') return 'smoothed: a vote over noise draws';
  const trained = ctx.run.nodes.find((m) => m.op === 'train' && info(m).model === info(n).target);
  const noise = Object.keys((trained?.params as { noise?: Record<string, unknown> } | undefined)?.noise ?? {});
  return noise.length ? `noise injection: ${noise.join(', ')}` : undefined;
}

/**
 * How an attack meets a random classifier: expectation over draws (EOT), scores only, or one draw;
 * on a smoothed classifier, whether it sees the smoothing noise at all (params.noisy) or the base.
 */
function drawsOf(n: RunNode): string {
  const p = n.params as { attack: { attack: string; params: Record<string, unknown> }; target?: { kind?: string }; noisy?: boolean };
  const a = p.attack;
  const smooth = p.target?.kind === 'smooth';
  const noise = smooth ? ' of the smoothing noise' : '';
  if (a.attack === 'epgd') return `EOT over ${String(a.params.m)} draws${noise} per step`;
  if (smooth && !p.noisy) return 'the base model without the smoothing noise';
  if (a.attack === 'autoattack' && a.params.version === 'rand') return `EOT over 20 draws${noise} per step`;
  if (Number(a.params.eot ?? 1) > 1) return `EOT over ${String(a.params.eot)} draws${noise} per step`;
  if (a.attack === 'square' || a.attack === 'nattack') return `black-box: scores only${smooth ? ', one draw of the smoothing noise per query' : ''}`;
  return 'one draw per step, no EOT';
}

/** Says which evaluations of a statement face a randomized classifier, and how each attack handles it. */
function randomizedNote(ctx: SectionContext, ns: RunNode[]): string[] {
  const random = new Map<string, string>();
  for (const n of ns) {
    const why = randomness(ctx, n);
    if (why) random.set(info(n).target!, why);
  }
  if (!random.size) return [];
  // attack -> how it meets the targets -> which targets (one attack can meet a noise-injection
  // model and a smoothed one differently).
  const attacks = new Map<string, Map<string, string[]>>();
  for (const n of ns) {
    if (!random.has(info(n).target!)) continue;
    const ways = attacks.get(info(n).attack!) ?? new Map<string, string[]>();
    attacks.set(info(n).attack!, ways);
    const how = drawsOf(n);
    ways.set(how, [...(ways.get(how) ?? []), info(n).target!]);
  }
  const describe = (ways: Map<string, string[]>) =>
    ways.size === 1 ? [...ways.keys()][0]! : [...ways].map(([how, ts]) => `${ts.join(', ')}: ${how}`).join('; ');
  return [
    `Randomized classifiers (their decision depends on noise drawn at inference): ${[...random].map(([t, why]) => `**${t}** (${why})`).join(', ')}.`,
    `Attacks on them: ${[...attacks].map(([a, ways]) => `${a} (${describe(ways)})`).join('; ')}.`,
    '',
  ];
}

/** Accuracy under attack of a robust node: of its n attacked images. */
function robustProp(s: OpSummary<'robust'> | undefined, rate: number | undefined = s?.accuracy): Prop | undefined {
  return s ? propOf(rate, s.n) : undefined;
}

/** Accuracy under attack versus the swept parameter: chart (with 95% error bars) and CSV. */
async function robustSweep(ctx: SectionContext, k: number, ns: RunNode[]): Promise<string[]> {
  const pts: Point[] = [];
  const rows: Array<Array<string | number | null>> = [];
  for (const n of ns) {
    const s = summary(ctx, n, 'robust');
    const sw = info(n).sweep!;
    const key = Object.keys(sw)[0]!;
    if (!s) continue;
    const series = `${info(n).target} / ${baseLabel(info(n).attack!)}`;
    const p = robustProp(s);
    pts.push({ series, x: ratio(sw[key]!), y: s.accuracy, ...bounds(p) });
    rows.push([series, ratio(sw[key]!), ...propCells(p)]);
  }
  const key = Object.keys(info(ns[0]!).sweep ?? { eps: '' })[0]!;
  const name = `evaluate${k}-sweep`;
  write(ctx, `${name}.csv`, csv([['series', key, ...propHeader('accuracy')], ...rows]));
  return [
    `![accuracy versus ${key}](${await figure(ctx, `${name}.svg`, lineSpec(`Accuracy under attack versus ${key}`, pts, key, 'accuracy', { yDomain: [0, 1] }))})`,
    '',
    `Error bars: 95% Wilson score intervals. Data (with n and the interval bounds): [${name}.csv](${name}.csv)`,
    '',
  ];
}

/** Clean accuracy and accuracy under each attack, per classifier: table and CSV. */
function robustTable(ctx: SectionContext, k: number, ns: RunNode[], clean: CleanSummaries): string[] {
  const targets = [...new Set(ns.map((n) => info(n).target!))];
  const attacks = [...new Set(ns.map((n) => info(n).attack!))];
  const accuracy = (t: string, a: string) =>
    robustProp(
      summary(
        ctx,
        ns.find((n) => info(n).target === t && info(n).attack === a)!,
        'robust',
      ),
    );
  const cleanOf = (t: string) => predictProp(clean.get(t));
  const rows = targets.map((t) => [t, fmtPct(cleanOf(t)), ...attacks.map((a) => fmtPct(accuracy(t, a)))]);
  write(
    ctx,
    `evaluate${k}.csv`,
    csv([
      ['target', ...propHeader('clean'), ...attacks.flatMap(propHeader)],
      ...targets.map((t) => [t, ...propCells(cleanOf(t)), ...attacks.flatMap((a) => propCells(accuracy(t, a)))]),
    ]),
  );
  return [...table(['classifier', 'clean', ...attacks], rows), '', `Data (with n and the interval bounds): [evaluate${k}.csv](evaluate${k}.csv)`, ''];
}

/** Ensembles against their members: each member's accuracy on the ensemble's adversarial images and when attacked alone. */
async function ensemblesAgainstMembers(ctx: SectionContext, k: number, ns: RunNode[], swept: boolean): Promise<string[]> {
  const ens = ns.filter((n) => summary(ctx, n, 'robust')?.members);
  if (!ens.length) return [];
  const selects = new Map(nodesOf(ctx, 'select').map((n) => [info(n).classifier, info(n).labels?.candidates]));
  const out = [
    "Ensembles against their members: accuracy of each member on the ensemble's adversarial images, and when the same attack targets the member alone.",
    '',
  ];
  const rows: Array<Array<string | number>> = [];
  const data: Array<Array<string | number | null>> = [];
  const bars: Bar[] = [];
  for (const n of ens) {
    const s = summary(ctx, n, 'robust')!;
    const e = info(n).target!;
    const attack = info(n).attack!;
    const cands = selects.get(e);
    const acc = robustProp(s);
    rows.push([e, attack, 'ensemble', fmtPct(acc), '–']);
    data.push([e, attack, 'ensemble', ...propCells(acc), ...propCells(undefined)]);
    bars.push({ group: `${e} ${attack}`, series: 'ensemble', value: s.accuracy, ...bounds(acc) });
    for (const m of s.members!) {
      const mName = cands?.[m.input] ?? memberName(ctx, n, m.input) ?? `member ${m.input + 1}`;
      const [alone, onEns] = [robustProp(s, m.whiteBox), robustProp(s, m.onEnsembleAdversarial)];
      rows.push([e, attack, mName, fmtPct(alone), fmtPct(onEns)]);
      data.push([e, attack, mName, ...propCells(alone), ...propCells(onEns)]);
      bars.push({ group: `${e} ${attack}`, series: mName, value: m.whiteBox, ...bounds(alone) });
    }
  }
  const name = `evaluate${k}-members`;
  write(ctx, `${name}.csv`, csv([['ensemble', 'attack', 'classifier', ...propHeader('attacked itself'), ...propHeader('on ensemble adversarial')], ...data]));
  out.push(...table(['ensemble', 'attack', 'classifier', 'accuracy when attacked itself', "accuracy on the ensemble's adversarial images"], rows), '');
  out.push(`Data: [${name}.csv](${name}.csv)`, '');
  if (!swept)
    out.push(
      `![ensemble versus members](${await figure(ctx, `${name}.svg`, barSpec('Accuracy under attack: ensemble and members (95% intervals)', bars, 'accuracy'))})`,
      '',
    );
  return out;
}

/** An explicit ensemble's member, by its position among the node's model inputs. */
function memberName(ctx: SectionContext, n: RunNode, i: number): string | undefined {
  const ids = n.inputs.models;
  const id = Array.isArray(ids) ? ids[i] : undefined;
  const node = id !== undefined ? ctx.run.nodes.find((x) => x.id === id) : undefined;
  return node ? namesOf(node)[0] : undefined;
}

// ---------------------------------------------------------------- union accuracy
const byId = (ctx: SectionContext, id: string | string[] | undefined) => (typeof id === 'string' ? ctx.run.nodes.find((m) => m.id === id) : undefined);

/**
 * A union node's figures as proportions, per column: clean (of its prediction node's images), one
 * per attack (of that robust node's images; the node's inputs.runs are in its labels' order) and
 * the union (of the union's images).
 */
function unionProps(ctx: SectionContext, n: RunNode, s: OpSummary<'union'>, attacks: string[]) {
  const labels = info(n).labels?.attacks ?? [];
  const runs = ([] as string[]).concat(n.inputs.runs ?? []);
  const cleanNode = byId(ctx, n.inputs.clean);
  const clean = cleanNode ? predictProp(summary(ctx, cleanNode, 'predict')) : undefined;
  const perAttack = attacks.map((a) => {
    const j = labels.indexOf(a);
    if (j < 0) return undefined;
    const run = byId(ctx, runs[j]);
    return propOf(s.perAttack[j], (run ? summary(ctx, run, 'robust')?.n : undefined) ?? s.n);
  });
  return { clean, perAttack, union: propOf(s.union, s.n) };
}

const unions: Section = (ctx) => {
  const us = statementNodes(ctx, 'union');
  if (!us.length) return [];
  const out = ['## Union accuracy', '', 'An image counts only if the classifier survives every attack of the set.', ''];
  const stmts = [...new Set(us.map((n) => info(n).stmt?.n ?? 0))].sort((a, b) => a - b);
  for (const k of stmts) {
    const ns = us.filter((n) => (info(n).stmt?.n ?? 0) === k);
    // Each union node lists its attacks in its own (content-key) order; columns follow the
    // statement's declared order, read from its robust nodes.
    const declared = [
      ...new Set(
        statementNodes(ctx, 'robust')
          .filter((r) => info(r).stmt?.n === k)
          .map((r) => info(r).attack!),
      ),
    ];
    const attacks = declared.length ? declared : (info(ns[0]!).labels?.attacks ?? []);
    const done = ns.filter((n) => summary(ctx, n, 'union')).map((n) => ({ n, p: unionProps(ctx, n, summary(ctx, n, 'union')!, attacks) }));
    const rows = done.map(({ n, p }) => [info(n).target!, fmtPct(p.clean), ...p.perAttack.map(fmtPct), `**${fmtPct(p.union)}**`]);
    const name = stmts.length > 1 ? `union${k}.csv` : 'union.csv';
    write(
      ctx,
      name,
      csv([
        ['classifier', ...propHeader('clean'), ...attacks.flatMap(propHeader), ...propHeader('union')],
        ...done.map(({ n, p }) => [info(n).target!, ...propCells(p.clean), ...p.perAttack.flatMap(propCells), ...propCells(p.union)]),
      ]),
    );
    out.push(...table(['classifier', 'clean', ...attacks, 'union'], rows), '', `Data: [${name}](${name})`, '');
  }
  return out;
};

// ---------------------------------------------------------------- smoothing
const smoothing: Section = async (ctx) => {
  const preds = nodesOf(ctx, 'predict').filter((n) => summary(ctx, n, 'predict')?.kind === 'smooth');
  if (!preds.length) return [];
  const out = ['## Smoothed inference', ''];
  const rows: Array<Array<string | number>> = [];
  const data: Array<Array<string | number | null>> = [];
  const bySd: Point[] = [];
  const byM: Point[] = [];
  const cost: Point[] = [];
  for (const n of preds) {
    const s = summary(ctx, n, 'predict')!;
    const smooth = s.smooth!;
    const ms = extra(ctx, n).msPerImage as number | undefined;
    const name = namesOf(n).join(' = ');
    const fam = info(n).classifier!.replace(/\.\d+$/, '');
    const acc = predictProp(s);
    rows.push([name, smooth.vote, smooth.sd, smooth.m, fmtPct(acc), ms !== undefined ? ms.toFixed(2) : '–']);
    data.push([name, smooth.vote, smooth.sd, smooth.m, ...propCells(acc), ms ?? null]);
    bySd.push({ series: `${fam} m=${smooth.m}`, x: smooth.sd, y: s.accuracy, ...bounds(acc) });
    byM.push({ series: `${fam} sd=${smooth.sd}`, x: smooth.m, y: s.accuracy, ...bounds(acc) });
    if (ms !== undefined) cost.push({ series: fam, x: smooth.m, y: ms });
  }
  // Accuracy under attack of the same smoothed classifiers.
  for (const n of nodesOf(ctx, 'robust').filter((r) => summary(ctx, r, 'robust')?.kind === 'smooth')) {
    const s = summary(ctx, n, 'robust')!;
    const p = preds.find((q) => namesOf(q).includes(info(n).target!));
    const sm = p ? summary(ctx, p, 'predict')!.smooth : undefined;
    if (!sm) continue;
    const fam = info(n).target!.replace(/\.\d+$/, '');
    const acc = robustProp(s);
    bySd.push({ series: `${fam} m=${sm.m} under ${baseLabel(info(n).attack!)}`, x: sm.sd, y: s.accuracy, ...bounds(acc) });
    byM.push({ series: `${fam} sd=${sm.sd} under ${baseLabel(info(n).attack!)}`, x: sm.m, y: s.accuracy, ...bounds(acc) });
  }
  write(ctx, 'smoothing.csv', csv([['classifier', 'vote', 'sd', 'm', ...propHeader('clean accuracy'), 'ms per image'], ...data]));
  out.push(
    ...table(['classifier', 'vote', 'sd', 'm', 'clean accuracy', 'inference ms/image'], rows),
    '',
    'Data: [smoothing.csv](smoothing.csv); error bars in the charts: 95% Wilson score intervals.',
    '',
  );
  const sdCount = new Set(bySd.map((p) => p.x)).size;
  const mCount = new Set(byM.map((p) => p.x)).size;
  if (sdCount > 1)
    out.push(
      `![accuracy versus sd](${await figure(ctx, 'smoothing-sd.svg', lineSpec('Accuracy versus noise sd', bySd, 'noise sd', 'accuracy', { yDomain: [0, 1] }))})`,
      '',
    );
  if (mCount > 1) {
    out.push(
      `![accuracy versus m](${await figure(ctx, 'smoothing-m.svg', lineSpec('Accuracy versus samples m', byM, 'samples m', 'accuracy', { logX: true, yDomain: [0, 1] }))})`,
      '',
    );
    out.push(
      `![inference cost versus m](${await figure(ctx, 'smoothing-cost.svg', lineSpec('Inference cost per image versus m', cost, 'samples m', 'ms per image', { logX: true }))})`,
      '',
    );
  }
  return out;
};

// ---------------------------------------------------------------- attacks
/** An adversarial batch's source clean accuracy (of its n images) and success rate (of the images its source classifies correctly). */
function attackProps(s: OpSummary<'adversarial'>): { clean: Prop | undefined; success: Prop | undefined } {
  const clean = propOf(s.sourceCleanAccuracy, s.n);
  const ok = clean?.k;
  const success = ok !== undefined && Number.isInteger(s.generated) && s.generated <= ok ? prop(s.generated, ok) : undefined;
  return { clean, success };
}

const attacks: Section = (ctx) => {
  const advs = nodesOf(ctx, 'adversarial');
  if (!advs.length) return [];
  const rows: Array<Array<string | number>> = [];
  const data: Array<Array<string | number | null>> = [];
  for (const n of advs) {
    const s = summary(ctx, n, 'adversarial')!;
    const ips = extra(ctx, n).imagesPerSecond as number | undefined;
    const { clean, success } = attackProps(s);
    const norms = [s.meanNorm.linf, s.meanNorm.l2, s.meanNorm.l1];
    rows.push([
      info(n).attack!,
      info(n).source!,
      s.n,
      fmtPct(clean),
      success ? fmtPct(success) : pct(s.successRate),
      ...norms.map((v, i) => v.toFixed(i < 2 ? 3 : 2)),
      ips ? ips.toFixed(0) : '–',
    ]);
    data.push([info(n).attack!, info(n).source!, s.n, ...propCells(clean), ...propCells(success), ...norms, ips ?? null]);
  }
  write(
    ctx,
    'attacks.csv',
    csv([
      ['attack', 'source', 'images', ...propHeader('source clean acc'), ...propHeader('success rate'), 'mean linf', 'mean l2', 'mean l1', 'images/s'],
      ...data,
    ]),
  );
  return [
    '## Adversarial batches',
    '',
    'Success rate: the fraction of the images the source classifies correctly that its attack fools (n: those images).',
    '',
    ...table(['attack', 'source', 'images', 'source clean acc.', 'success', 'mean l∞', 'mean l2', 'mean l1', 'images/s'], rows),
    '',
    'Data: [attacks.csv](attacks.csv)',
  ];
};

// ---------------------------------------------------------------- placement
/** Where the nodes this run computed ran: a line per host and executor, and every node in placement.csv. */
const placement: Section = (ctx) => {
  const ran = ctx.run.nodes.filter((n) => n.status === 'ran' && n.placement);
  if (!ran.length) return [];
  const secs = (ms: number | undefined) => (ms === undefined ? '' : (ms / 1000).toFixed(1));
  const seconds = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms) / 1000);
  write(
    ctx,
    'placement.csv',
    csv([
      ['node', 'op', 'host', 'executor', 'job', 'queue wait (s)', 'wall (s)'],
      ...ran.map((n) => [
        n.id,
        n.op,
        n.placement!.host,
        n.placement!.executor,
        n.placement!.jobId,
        seconds(n.placement!.queueMs),
        seconds(n.placement!.wallMs),
      ]),
    ]),
  );
  const groups = new Map<string, RunNode[]>();
  for (const n of ran) {
    const k = `${n.placement!.host}\t${n.placement!.executor}`;
    groups.set(k, [...(groups.get(k) ?? []), n]);
  }
  const rows = [...groups.entries()].map(([k, ns]) => {
    const [host, executor] = k.split('\t') as [string, string];
    const jobs = new Set(ns.map((n) => n.placement!.jobId).filter((j) => j !== undefined));
    const waits = ns.map((n) => n.placement!.queueMs).filter((w): w is number => w !== undefined);
    const wall = ns.reduce((a, n) => a + (n.placement!.wallMs ?? 0), 0);
    return [host, executor, ns.length, jobs.size || '–', waits.length ? secs(waits.reduce((a, b) => a + b, 0) / waits.length) : '–', secs(wall)];
  });
  return [
    '## Where the nodes ran',
    '',
    'Nodes computed by this run (cached ones are not listed); every node with its job, queue wait and wall time is in placement.csv.',
    '',
    ...table(['host', 'executor', 'nodes', 'jobs', 'mean queue wait (s)', 'total wall (s)'], rows),
  ];
};

export const sections: Section[] = [models, classifiers, transfers, selections, robustness, unions, smoothing, attacks, placement];
