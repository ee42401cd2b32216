/**
 * Comparing runs: node sets, parameter-level changes, and result changes matched by what they
 * mean. A result is named by the run's own labels (the model, the attack, the source and target
 * of a transfer-matrix cell, the members of an ensemble), never by its position in an array:
 * matrix rows and columns follow content keys, so they permute whenever any model changes.
 * Summaries are read as the operation contract (src/compiler/contract.ts) types them, each field
 * checked before use. `trendc diff` (src/cli/diff.ts) chooses the runs and prints the result.
 */
import { diffValues, type Change } from '../common/json-diff.js';
import { summaryAs, type MatrixAttackSummary, type OpSummary } from '../compiler/contract.js';
import type { NodeInfo } from '../compiler/dag.js';
import type { RunNode, RunRecord, Store } from '../store/store.js';
import { wilson, type Interval } from './stats.js';

export type { Change } from '../common/json-diff.js';

/** What a result is about: the first three kinds lead the human output. */
export type ResultKind = 'accuracy' | 'tm' | 'ensemble' | 'robust' | 'union' | 'attack' | 'training' | 'other';

/** One number of one run, named by meaning. */
export interface Fact {
  /** Stable identity across runs, e.g. "matrix/transfer1 tm pgd fp->q2". */
  path: string;
  kind: ResultKind;
  /** The node it comes from. */
  id: string;
  /** Human label, e.g. "TM pgd: fp -> q2". */
  label: string;
  names: Record<string, string>;
  value: number | null;
  /** The number of images the figure rests on, where the summary knows it. */
  n?: number;
  /** For TM cells: transferred / eligible. */
  counts?: { transferred: number; eligible: number };
  /** For proportions (accuracies, success rates, TM cells): the 95% Wilson score interval over n. */
  interval?: Interval;
}

export interface ResultChange {
  id: string;
  path: string;
  kind: ResultKind;
  label: string;
  names: Record<string, string>;
  before: number | null;
  after: number | null;
  /** after - before; null when one side is null (a TM with no eligible images). */
  delta: number | null;
  n?: { before?: number; after?: number };
  counts?: { before?: { transferred: number; eligible: number }; after?: { transferred: number; eligible: number } };
  /** Proportions: each side's 95% Wilson score interval. */
  interval?: { before?: Interval; after?: Interval };
  flag: boolean;
}

export interface ChoiceChange {
  id: string;
  label: string;
  before: string[];
  after: string[];
}

export interface RunDiff {
  a: string;
  b: string;
  pipelineA: string;
  pipelineB: string;
  minDelta: number;
  added: string[];
  removed: string[];
  changed: Array<{ id: string; params: Change[] }>;
  /** Numeric results present in both runs whose value changed, largest |delta| first. */
  results: ResultChange[];
  /** Non-numeric results that changed: a TREND selection's members. */
  choices: ChoiceChange[];
  /** Nodes of both runs with a result in one and none in the other (failed, skipped, interrupted). */
  statuses: Array<{ id: string; before: RunNode['status']; after: RunNode['status']; error?: string }>;
  /** Nodes missing from a run that was `--only`: not selected there, not removed from the pipeline. */
  notSelected: Array<{ id: string; run: 'a' | 'b' }>;
  /**
   * Nodes with one key but other bytes: run B recomputed them (`--force`) and replaced a different
   * stored result, or both runs computed them and recorded different checksums. On the same
   * backend, the node is not reproducible; A's figures for it are no longer stored.
   */
  bytesDiffer: Array<{ id: string; before: string; after: string; backends?: { before: string; after: string } }>;
}

type Summary = Record<string, unknown>;
/** Fields of a typed summary, each checked before use (summaries of older or fake operation sets may lack them). */
type Loose<T> = { [F in keyof T]?: unknown };
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObj = (v: unknown): v is Summary => typeof v === 'object' && v !== null && !Array.isArray(v);
const info = (n: RunNode) => (n.info ?? {}) as NodeInfo;
/**
 * The sample fields of a proportion `value` of `n` images: n, and the Wilson interval of
 * round(value × n) of n (the operations compute rates as counts over n).
 */
function rate(value: unknown, n: unknown): { n?: number; interval?: Interval } {
  if (!isNum(n) || !Number.isInteger(n) || n < 0) return {};
  if (!isNum(value) || value < 0 || value > 1 || n === 0) return { n };
  return { n, interval: wilson(Math.round(value * n), n)! };
}
/** A node's labels: a matrix's sources, targets, attacks and families. */
type MatrixLabels = NonNullable<NodeInfo['labels']>;

/** The facts of one run, by identity. */
export class RunFacts {
  readonly facts = new Map<string, Fact>();
  readonly choices = new Map<string, { id: string; label: string; names: string[] }>();
  private readonly byId: Map<string, RunNode>;

  constructor(
    readonly run: RunRecord,
    private readonly summaryOf: (n: RunNode) => unknown,
    /** Nodes to skip (their results are known to equal the other run's). */
    skip: (n: RunNode) => boolean = () => false,
  ) {
    this.byId = new Map(run.nodes.map((n) => [n.id, n]));
    for (const n of run.nodes) {
      if (skip(n) || (n.status !== 'ran' && n.status !== 'cached')) continue;
      const s = summaryOf(n);
      if (!isObj(s)) continue;
      const before = this.facts.size + this.choices.size;
      this.extract(n, s);
      if (this.facts.size + this.choices.size === before && n.op !== 'transfer') this.generic(n, s, `${n.id}`, 'summary');
    }
  }

  private add(f: Omit<Fact, 'value'> & { value: unknown }): void {
    if (f.value !== null && !isNum(f.value)) return;
    this.facts.set(f.path, f as Fact);
  }

  /** A classifier's name as this run declared it (train/x -> x, predict/x -> x). */
  private modelName(id: string | undefined): string {
    if (id === undefined) return '?';
    const n = this.byId.get(id);
    const i = n ? info(n) : {};
    return i.model ?? i.classifier ?? id.replace(/^[a-z]+\//, '');
  }

  private datasetCount(field: 'test' | 'val'): number | undefined {
    const d = this.run.nodes.find((n) => n.op === 'dataset');
    const s = d ? this.summaryOf(d) : undefined;
    const v = isObj(s) ? s[field] : undefined;
    return isNum(v) ? v : undefined;
  }

  private extract(n: RunNode, s: Summary): void {
    switch (n.op) {
      case 'dataset':
        return this.dataset(n, summaryAs('dataset', s));
      case 'train':
        return this.train(n, summaryAs('train', s));
      case 'predict':
        return this.predict(n, summaryAs('predict', s));
      case 'adversarial':
        return this.adversarial(n, summaryAs('adversarial', s));
      case 'transfer':
        // Every transfer cell is in its matrix, reported there by name.
        return;
      case 'matrix':
        return this.matrix(n, summaryAs('matrix', s));
      case 'select':
        return this.select(n, summaryAs('select', s));
      case 'robust':
        return this.robust(n, summaryAs('robust', s));
      case 'union':
        return this.union(n, summaryAs('union', s));
    }
  }

  private dataset(n: RunNode, s: Loose<OpSummary<'dataset'>>): void {
    const id = n.id;
    for (const k of ['train', 'val', 'test'] as const) this.add({ path: `${id} ${k}`, kind: 'other', id, label: `${id}: ${k} images`, names: {}, value: s[k] });
  }

  private train(n: RunNode, s: Loose<OpSummary<'train'>>): void {
    const id = n.id;
    const model = info(n).model ?? this.modelName(id);
    const test = this.datasetCount('test');
    const val = this.datasetCount('val');
    this.add({
      path: `${id} testAccuracy`,
      kind: 'training',
      id,
      label: `${model}: test accuracy after training`,
      names: { model },
      value: s.testAccuracy,
      ...rate(s.testAccuracy, test),
    });
    this.add({
      path: `${id} valAccuracy`,
      kind: 'training',
      id,
      label: `${model}: best validation accuracy`,
      names: { model },
      value: s.valAccuracy,
      ...rate(s.valAccuracy, val),
    });
    this.add({ path: `${id} bestEpoch`, kind: 'training', id, label: `${model}: best epoch`, names: { model }, value: s.bestEpoch });
    this.add({ path: `${id} params`, kind: 'training', id, label: `${model}: trainable parameters`, names: { model }, value: s.params });
    if (Array.isArray(s.history)) {
      for (const h of s.history) {
        if (!isObj(h) || !isNum(h.epoch)) continue;
        for (const k of ['loss', 'valAcc', 'lr'])
          this.add({
            path: `${id} epoch ${h.epoch} ${k}`,
            kind: 'training',
            id,
            label: `${model}: epoch ${h.epoch} ${k}`,
            names: { model, epoch: String(h.epoch) },
            value: h[k],
          });
      }
    }
  }

  private predict(n: RunNode, s: Loose<OpSummary<'predict'>>): void {
    const i = info(n);
    const id = n.id;
    const c = i.classifier ?? this.modelName(id);
    const names = [c, ...(i.aliases ?? [])].join(' = ');
    this.add({ path: `${id} accuracy`, kind: 'accuracy', id, label: names, names: { classifier: c }, value: s.accuracy, ...rate(s.accuracy, s.n) });
    if (Array.isArray(s.members)) {
      const inputs = ([] as string[]).concat(n.inputs.models ?? []);
      const chosen: unknown[] = Array.isArray(s.chosen) ? s.chosen : inputs.map((_, j) => j);
      s.members.forEach((v: unknown, j: number) => {
        const k = chosen[j];
        const m = this.modelName(isNum(k) ? inputs[k] : undefined);
        this.add({
          path: `${id} member ${m} accuracy`,
          kind: 'ensemble',
          id,
          label: `${c}: member ${m} clean accuracy`,
          names: { classifier: c, member: m },
          value: v,
          ...rate(v, s.n),
        });
      });
    }
  }

  private adversarial(n: RunNode, s: Loose<OpSummary<'adversarial'>>): void {
    const i = info(n);
    const id = n.id;
    const names = { attack: i.attack ?? '?', source: i.source ?? '?' };
    const nn = isNum(s.n) ? { n: s.n } : {};
    const base = `${names.attack} on ${names.source}`;
    // The success rate is a fraction of the images the source classifies correctly.
    const ok = isNum(s.sourceCleanAccuracy) && isNum(s.n) ? Math.round(s.sourceCleanAccuracy * s.n) : undefined;
    this.add({ path: `${id} successRate`, kind: 'attack', id, label: `${base}: success rate`, names, value: s.successRate, ...rate(s.successRate, ok) });
    this.add({ path: `${id} generated`, kind: 'attack', id, label: `${base}: adversarial examples generated`, names, value: s.generated, ...nn });
    this.add({
      path: `${id} sourceCleanAccuracy`,
      kind: 'attack',
      id,
      label: `${base}: source clean accuracy`,
      names,
      value: s.sourceCleanAccuracy,
      ...rate(s.sourceCleanAccuracy, s.n),
    });
    const norms = s.meanNorm;
    if (isObj(norms))
      for (const k of ['linf', 'l2', 'l1'])
        this.add({ path: `${id} meanNorm ${k}`, kind: 'attack', id, label: `${base}: mean ${k} perturbation`, names, value: norms[k], ...nn });
  }

  private select(n: RunNode, s: Loose<OpSummary<'select'>>): void {
    const i = info(n);
    const id = n.id;
    const cands = i.labels?.candidates ?? [];
    const ens = i.classifier ?? id;
    if (Array.isArray(s.chosen) && cands.length) {
      this.choices.set(`${id} chosen`, { id, label: `${ens}: members chosen`, names: s.chosen.map((j: number) => cands[j] ?? `#${j}`).sort() });
    }
    this.add({
      path: `${id} objective`,
      kind: 'ensemble',
      id,
      label: `${ens}: selection objective (pairwise TM)`,
      names: { classifier: ens },
      value: s.objective,
    });
    if (Array.isArray(s.pairs) && cands.length) {
      s.pairs.forEach((row: unknown[], a: number) =>
        row.forEach((v, b) => {
          if (a < b)
            this.add({
              path: `${id} pair ${[cands[a], cands[b]].sort().join('~')}`,
              kind: 'other',
              id,
              label: `${ens}: symmetric TM ${cands[a]} ~ ${cands[b]}`,
              names: { a: cands[a]!, b: cands[b]! },
              value: v,
            });
        }),
      );
    }
  }

  private robust(n: RunNode, s: Loose<OpSummary<'robust'>>): void {
    const i = info(n);
    const id = n.id;
    const names = { target: i.target ?? '?', attack: i.attack ?? '?' };
    const nn = isNum(s.n) ? { n: s.n } : {};
    const ens = s.kind === 'ensemble';
    this.add({
      path: `${id} accuracy`,
      kind: ens ? 'ensemble' : 'robust',
      id,
      label: `${names.target} under ${names.attack}`,
      names,
      value: s.accuracy,
      ...rate(s.accuracy, s.n),
    });
    const norms = s.meanNorm;
    if (isObj(norms))
      for (const k of ['linf', 'l2', 'l1'])
        this.add({
          path: `${id} meanNorm ${k}`,
          kind: 'other',
          id,
          label: `${names.target} under ${names.attack}: mean ${k} perturbation`,
          names,
          value: norms[k],
          ...nn,
        });
    if (Array.isArray(s.members)) {
      const inputs = ([] as string[]).concat(n.inputs.models ?? []);
      for (const m of s.members) {
        if (!isObj(m)) continue;
        const member = this.modelName(isNum(m.input) ? inputs[m.input] : undefined);
        const mn = { ...names, member };
        this.add({
          path: `${id} member ${member} onEnsembleAdversarial`,
          kind: 'ensemble',
          id,
          label: `${names.target} under ${names.attack}: member ${member} on the ensemble's examples`,
          names: mn,
          value: m.onEnsembleAdversarial,
          ...rate(m.onEnsembleAdversarial, s.n),
        });
        this.add({
          path: `${id} member ${member} whiteBox`,
          kind: 'ensemble',
          id,
          label: `${names.target} under ${names.attack}: member ${member} attacked alone`,
          names: mn,
          value: m.whiteBox,
          ...rate(m.whiteBox, s.n),
        });
      }
    }
  }

  /** The n of an input node's summary (a union's clean prediction or one of its robust runs). */
  private inputN(id: unknown): number | undefined {
    const node = typeof id === 'string' ? this.byId.get(id) : undefined;
    const s = node ? this.summaryOf(node) : undefined;
    return isObj(s) && isNum(s.n) ? s.n : undefined;
  }

  private union(n: RunNode, s: Loose<OpSummary<'union'>>): void {
    const i = info(n);
    const id = n.id;
    const target = i.target ?? '?';
    this.add({ path: `${id} union`, kind: 'union', id, label: `${target}: union accuracy`, names: { target }, value: s.union, ...rate(s.union, s.n) });
    // Clean accuracy is the prediction node's, over its own images; each attack's accuracy is its
    // robust node's (inputs.runs is in the order of perAttack and of the labels).
    this.add({
      path: `${id} clean`,
      kind: 'union',
      id,
      label: `${target}: clean accuracy`,
      names: { target },
      value: s.clean,
      ...rate(s.clean, this.inputN(n.inputs.clean)),
    });
    const labels = i.labels?.attacks ?? [];
    const runs = ([] as string[]).concat(n.inputs.runs ?? []);
    if (Array.isArray(s.perAttack)) {
      s.perAttack.forEach((v: unknown, j: number) => {
        const attack = labels[j] ?? `#${j}`;
        this.add({
          path: `${id} perAttack ${attack}`,
          kind: 'union',
          id,
          label: `${target}: accuracy under ${attack}`,
          names: { target, attack },
          value: v,
          ...rate(v, this.inputN(runs[j]) ?? s.n),
        });
      });
    }
  }

  private matrix(n: RunNode, s: Loose<OpSummary<'matrix'>>): void {
    const l = info(n).labels ?? {};
    const attacks: Array<Loose<MatrixAttackSummary>> = Array.isArray(s.attacks) ? s.attacks : [];
    attacks.forEach((a, ai) => {
      const attack = l.attacks?.[ai] ?? `#${ai}`;
      this.matrixCells(n.id, l, attack, a);
      this.matrixAverages(n.id, l, attack, a);
      this.matrixFamilies(n.id, l, attack, a);
    });
    this.matrixFits(n.id, l, s.fits);
  }

  /** One attack's TM cells, by source and target, with their eligible and transferred counts. */
  private matrixCells(id: string, l: MatrixLabels, attack: string, a: Loose<MatrixAttackSummary>): void {
    const sources = l.sources ?? [];
    const targets = l.targets ?? [];
    const grid = (k: 'tm' | 'eligible' | 'transferred'): unknown[][] => {
      const g = a[k];
      return Array.isArray(g) ? g : [];
    };
    const tm = grid('tm');
    const eligible = grid('eligible');
    const transferred = grid('transferred');
    tm.forEach((row, t) =>
      row.forEach((v, si) => {
        const source = sources[si] ?? `#${si}`;
        const target = targets[t] ?? `#${t}`;
        const e = eligible[t]?.[si];
        const tr = transferred[t]?.[si];
        this.add({
          path: `${id} tm ${attack} ${source}->${target}`,
          kind: 'tm',
          id,
          label: `${attack}: ${source} -> ${target}`,
          names: { attack, source, target },
          value: v,
          ...(isNum(e) ? { n: e } : {}),
          ...(isNum(e) && isNum(tr) ? { counts: { transferred: tr, eligible: e } } : {}),
          ...(isNum(e) && isNum(tr) && Number.isInteger(e) && Number.isInteger(tr) && e > 0 && tr >= 0 && tr <= e ? { interval: wilson(tr, e)! } : {}),
        });
      }),
    );
  }

  /** One attack's mean TM per target (row) and per source (column). */
  private matrixAverages(id: string, l: MatrixLabels, attack: string, a: Loose<MatrixAttackSummary>): void {
    const sources = l.sources ?? [];
    const targets = l.targets ?? [];
    const rowAvg = Array.isArray(a.rowAvg) ? a.rowAvg : [];
    rowAvg.forEach((v, t) =>
      this.add({
        path: `${id} rowAvg ${attack} ${targets[t] ?? t}`,
        kind: 'other',
        id,
        label: `${attack}: mean TM to ${targets[t] ?? t}`,
        names: { attack, target: targets[t] ?? String(t) },
        value: v,
      }),
    );
    const colAvg = Array.isArray(a.colAvg) ? a.colAvg : [];
    colAvg.forEach((v, si) =>
      this.add({
        path: `${id} colAvg ${attack} ${sources[si] ?? si}`,
        kind: 'other',
        id,
        label: `${attack}: mean TM from ${sources[si] ?? si}`,
        names: { attack, source: sources[si] ?? String(si) },
        value: v,
      }),
    );
  }

  /** One attack's TM mean and sd per (source family, target family). */
  private matrixFamilies(id: string, l: MatrixLabels, attack: string, a: Loose<MatrixAttackSummary>): void {
    if (!Array.isArray(a.families)) return;
    for (const f of a.families) {
      if (!isObj(f)) continue;
      const tf = (isNum(f.targetFamily) ? l.targetFamilies?.[f.targetFamily] : undefined) ?? `#${String(f.targetFamily)}`;
      const sf = (isNum(f.sourceFamily) ? l.sourceFamilies?.[f.sourceFamily] : undefined) ?? `#${String(f.sourceFamily)}`;
      for (const k of ['tmMean', 'tmSd'])
        this.add({
          path: `${id} family ${attack} ${sf}->${tf} ${k}`,
          kind: 'other',
          id,
          label: `${attack}: family ${sf} -> ${tf} ${k}`,
          names: { attack, source: sf, target: tf },
          value: f[k],
          ...(isNum(f.pairs) ? { n: f.pairs } : {}),
        });
    }
  }

  /** The TM-versus-eps fits' RMSE per (source, target), where the matrix has fits. */
  private matrixFits(id: string, l: MatrixLabels, fits: unknown): void {
    if (!Array.isArray(fits)) return;
    const sources = l.sources ?? [];
    const targets = l.targets ?? [];
    fits.forEach((row: unknown[], t: number) =>
      row.forEach((f, si) => {
        if (!isObj(f)) return;
        this.add({
          path: `${id} fit ${sources[si] ?? si}->${targets[t] ?? t} rmse`,
          kind: 'other',
          id,
          label: `TM-vs-eps fit ${sources[si] ?? si} -> ${targets[t] ?? t}: rmse`,
          names: { source: sources[si] ?? String(si), target: targets[t] ?? String(t) },
          value: f.rmse,
        });
      }),
    );
  }

  /** A summary of unknown shape: numeric leaves by object path (array indices only in such summaries). */
  private generic(n: RunNode, v: unknown, path: string, label: string): void {
    if (isNum(v)) {
      this.add({ path, kind: 'other', id: n.id, label: `${n.id}: ${label}`, names: {}, value: v });
      return;
    }
    if (Array.isArray(v)) v.forEach((x, j) => this.generic(n, x, `${path}[${j}]`, `${label}[${j}]`));
    else if (isObj(v)) for (const k of Object.keys(v).sort()) this.generic(n, v[k], `${path}.${k}`, `${label}.${k}`);
  }
}

/** The node-level comparison of two runs: which nodes each has, which changed key, status or bytes. */
function compareNodes(ra: RunRecord, rb: RunRecord): Pick<RunDiff, 'added' | 'removed' | 'notSelected' | 'changed' | 'statuses' | 'bytesDiffer'> {
  const A = new Map(ra.nodes.map((n) => [n.id, n]));
  const B = new Map(rb.nodes.map((n) => [n.id, n]));
  const onlyInB = [...B.keys()].filter((id) => !A.has(id));
  const onlyInA = [...A.keys()].filter((id) => !B.has(id));
  // A run made with --only holds only what was asked for: the rest was not selected, not removed.
  const aPartial = !!ra.only?.length;
  const bPartial = !!rb.only?.length;
  const notSelected: RunDiff['notSelected'] = [
    ...(aPartial ? onlyInB.map((id) => ({ id, run: 'a' as const })) : []),
    ...(bPartial ? onlyInA.map((id) => ({ id, run: 'b' as const })) : []),
  ];
  const added = aPartial ? [] : onlyInB;
  const removed = bPartial ? [] : onlyInA;
  const hasResult = (n: RunNode) => n.status === 'ran' || n.status === 'cached';
  const changed: RunDiff['changed'] = [];
  const statuses: RunDiff['statuses'] = [];
  const bytesDiffer: RunDiff['bytesDiffer'] = [];
  for (const [id, nb] of B) {
    const na = A.get(id);
    if (!na) continue;
    if (na.key !== nb.key) changed.push({ id, params: diffValues(na.params, nb.params, 'params') });
    if (hasResult(na) !== hasResult(nb))
      statuses.push({ id, before: na.status, after: nb.status, ...((nb.error ?? na.error) ? { error: nb.error ?? na.error } : {}) });
    if (na.key !== nb.key) continue;
    const before = nb.replaced?.checksum ?? na.checksum;
    if (nb.checksum && before && before !== nb.checksum) {
      bytesDiffer.push({ id, before, after: nb.checksum, ...(nb.replaced ? { backends: { before: nb.replaced.backend, after: rb.backend ?? '?' } } : {}) });
    }
  }
  return { added, removed, notSelected, changed, statuses, bytesDiffer };
}

export function diffRuns(ra: RunRecord, rb: RunRecord, store: Store, minDelta: number): RunDiff {
  const A = new Map(ra.nodes.map((n) => [n.id, n]));
  const B = new Map(rb.nodes.map((n) => [n.id, n]));
  const { added, removed, notSelected, changed, statuses, bytesDiffer } = compareNodes(ra, rb);
  // A node with the same id, key and status in both runs has the same results: skip reading it.
  const same = (other: Map<string, RunNode>) => (n: RunNode) => {
    const o = other.get(n.id);
    return o !== undefined && o.key === n.key && o.status === n.status && n.op !== 'dataset';
  };
  const summaryOf = (n: RunNode) => store.meta(n.key)?.summary;
  const fa = new RunFacts(ra, summaryOf, same(B));
  const fb = new RunFacts(rb, summaryOf, same(A));
  const results: ResultChange[] = [];
  for (const [path, b] of fb.facts) {
    const a = fa.facts.get(path);
    if (!a || a.value === b.value) continue;
    const delta = a.value !== null && b.value !== null ? b.value - a.value : null;
    const n =
      a.n !== undefined || b.n !== undefined ? { ...(a.n !== undefined ? { before: a.n } : {}), ...(b.n !== undefined ? { after: b.n } : {}) } : undefined;
    const counts = a.counts || b.counts ? { ...(a.counts ? { before: a.counts } : {}), ...(b.counts ? { after: b.counts } : {}) } : undefined;
    const interval = a.interval || b.interval ? { ...(a.interval ? { before: a.interval } : {}), ...(b.interval ? { after: b.interval } : {}) } : undefined;
    results.push({
      id: b.id,
      path,
      kind: b.kind,
      label: b.label,
      names: b.names,
      before: a.value,
      after: b.value,
      delta,
      ...(n ? { n } : {}),
      ...(counts ? { counts } : {}),
      ...(interval ? { interval } : {}),
      flag: delta === null || Math.abs(delta) >= minDelta,
    });
  }
  results.sort((x, y) => Math.abs(y.delta ?? Infinity) - Math.abs(x.delta ?? Infinity) || (x.path < y.path ? -1 : 1));
  const choices: ChoiceChange[] = [];
  for (const [path, b] of fb.choices) {
    const a = fa.choices.get(path);
    if (a && a.names.join() !== b.names.join()) choices.push({ id: b.id, label: b.label, before: a.names, after: b.names });
  }
  return {
    a: ra.id,
    b: rb.id,
    pipelineA: ra.pipeline,
    pipelineB: rb.pipeline,
    minDelta,
    added,
    removed,
    changed,
    results,
    choices,
    statuses,
    notSelected,
    bytesDiffer,
  };
}
