/**
 * DAG construction: expands the checked program into explicit nodes (one training node per
 * model, one adversarial batch per (attack, source), one evaluation per (attack, source, target),
 * aggregates per statement) and keys each node by content (src/compiler/hash.ts).
 *
 * Node parameters never contain display names: inputs are referenced by key and position, so
 * renaming a model or reordering statements changes no key. Names live in `info`, for reports.
 */
import type { Loc } from './ast.js';
import type { AttackUse, CEnsemble, CheckedProgram, CModel, CSmooth } from './checked.js';
import type { AttackParams, ClassSpec as ClassSpecOf, MethodParams, OpName, OpParams } from './contract.js';
import { error, UserError } from './diagnostics.js';
import { nodeKey } from './hash.js';
import { attackVersion, OP_VERSIONS } from './ops.js';
import { Rational } from './rational.js';
import { DATASETS } from './schema.js';

export interface NodeInfo {
  /** Statement kind and ordinal that produced the node (for grouping in reports). */
  stmt?: { kind: string; n: number; line: number };
  model?: string;
  source?: string;
  target?: string;
  classifier?: string;
  attack?: string;
  sweep?: Record<string, string>;
  /** For aggregates: row/column names etc. */
  labels?: Record<string, string[]>;
  /**
   * Where to find a dataset's files, or an imported model's weights file (not part of the key:
   * the files' content identity is).
   */
  path?: string;
  /**
   * Other names declared with the same content (`smooth s = at sd=0.5 ...` when a sweep already
   * has that point): the node is computed once, and reports list it under each name.
   */
  aliases?: string[];
  /**
   * Other statements that wrote the same computation (`evaluate s against pgd ...` in two
   * statements): the node is computed once and each statement's report section lists it, under
   * that statement's labels.
   */
  also?: Array<Pick<NodeInfo, 'stmt' | 'target' | 'attack' | 'sweep'>>;
}

/** A classifier spec as the DAG holds it (exact numbers as Rationals). */
type ClassSpec = ClassSpecOf<Rational>;

/** A node of operation K; its parameters are the contract's (src/compiler/contract.ts). */
export interface DagNode<K extends OpName = OpName> {
  id: string;
  op: K;
  key: string;
  params: OpParams<K, Rational>;
  /** Role -> node id(s). */
  inputs: Record<string, string | string[]>;
  loc: Loc;
  info: NodeInfo;
}

export interface Dag {
  file: string;
  salt: { package: string };
  nodes: DagNode[];
  byId: Map<string, DagNode>;
  /** Node ids of the training node of each model, etc., for lookups by name. */
  program: CheckedProgram;
}

export interface PlanOptions {
  packageVersion: string;
  /** A stable identity of the dataset's source files (see runtime/data/identity.ts). */
  datasetIdentity: string;
  /**
   * The content checksum of each imported weights file, by resolved path (read and checked
   * against its architecture by runtime/models/inspect-weights.ts before planning).
   */
  weights?: Record<string, string>;
}

export function buildDag(program: CheckedProgram, opts: PlanOptions): Dag {
  return new DagBuilder(program, opts).build();
}

/**
 * An attack as a key holds it: only the parameters the attack reads. `topk` shapes only l_1 PGD
 * steps, so it is left out of l_inf and l_2 PGD keys.
 */
export function attackParams(a: AttackUse): AttackParams<Rational> {
  const params = { ...a.params };
  if (a.attack === 'pgd' && params.norm !== 'l1') delete params.topk;
  // APGD's rho rules the l_inf and l_2 step halving; l_1 APGD adapts its step to sparsity instead.
  if ((a.attack === 'apgd' || a.attack === 'apgdt') && params.norm === 'l1') delete params.rho;
  // Their l_1 eps schedule (largereps) exists under l_1 only.
  if ((a.attack === 'apgd' || a.attack === 'apgdt') && params.norm !== 'l1') delete params.largereps;
  const version = attackVersion(a.attack, params);
  return { attack: a.attack, params, ...(version > 1 ? { version } : {}) };
}

/**
 * An attack used for training: it runs on each training minibatch with the training seed's
 * stream, so the evaluation settings `images`, `batch` and `seed` play no part and stay out of
 * the model's key.
 */
export function trainingAttackParams(a: AttackUse): AttackParams<Rational> {
  const { params, ...rest } = attackParams(a);
  const { images: _i, batch: _b, seed: _s, ...kept } = params;
  return { ...rest, params: kept };
}

export function attackDisplay(a: AttackUse): string {
  const sw = Object.entries(a.sweep);
  if (!sw.length) return a.label;
  return `${a.label}[${sw.map(([k, v]) => `${k}=${v instanceof Rational ? v.pretty() : String(v)}`).join(',')}]`;
}

/** The swept parameters of an attack use, less `except` (labels that are not a sweep). */
function sweepInfo(a: AttackUse, except: readonly string[] = []): Record<string, string> | undefined {
  const sw = Object.entries(a.sweep).filter(([k]) => !except.includes(k));
  if (!sw.length) return undefined;
  return Object.fromEntries(sw.map(([k, v]) => [k, v instanceof Rational ? v.toString() : String(v)]));
}

/** A classifier spec without the smoothed classifier's inference batch (white-box evaluation). */
/**
 * Whether an attack on a smoothed classifier must see its noise: attacks that take an expectation
 * over draws (AutoAttack's rand version, APGD with EOT) or only query scores (Square, NAttack);
 * EPGD draws the noise itself and the others attack the base without noise.
 */
export function drawsSmoothingNoise(a: AttackParams<Rational>): boolean {
  const p = a.params as { version?: unknown; eot?: unknown };
  if (a.attack === 'autoattack') return p.version === 'rand';
  if (a.attack === 'apgd' || a.attack === 'apgdt') return Number(p.eot ?? 1) > 1;
  return a.attack === 'square' || a.attack === 'nattack';
}

function withoutInferenceBatch(spec: ClassSpec): ClassSpec {
  if (spec.kind !== 'smooth') return spec;
  const { batch: _b, ...rest } = spec;
  return { ...rest, base: withoutInferenceBatch(spec.base) } as ClassSpec;
}

class DagBuilder {
  private readonly nodes: DagNode[] = [];
  private readonly byId = new Map<string, DagNode>();
  private readonly byKey = new Map<string, DagNode>();
  private readonly models: Map<string, CModel>;
  private readonly ensembles: Map<string, CEnsemble>;
  private readonly smooths: Map<string, CSmooth>;
  private readonly building = new Set<string>();
  private readonly salt: { package: string };
  private datasetId = '';
  private readonly memo = new Map<string, string>();

  constructor(
    private readonly program: CheckedProgram,
    private readonly opts: PlanOptions,
  ) {
    this.models = new Map(program.models.map((m) => [m.name, m]));
    this.ensembles = new Map(program.ensembles.map((e) => [e.name, e]));
    this.smooths = new Map(program.smooths.map((s) => [s.name, s]));
    this.salt = { package: opts.packageVersion };
  }

  build(): Dag {
    const p = this.program;
    this.datasetId = this.datasetNode();
    for (const m of p.models) this.trainNode(m.name);
    for (const m of p.models) this.predictNode(m.name);
    p.transfers.forEach((_, i) => this.matrixNode(i));
    for (const e of p.ensembles) this.predictNode(e.name);
    for (const s of p.smooths) this.predictNode(s.name);
    p.evaluates.forEach((ev, i) => this.evaluateNodes(i, ev));
    return { file: p.file, salt: this.salt, nodes: this.nodes, byId: this.byId, program: p };
  }

  private add<K extends OpName>(op: K, id: string, params: OpParams<K, Rational>, inputs: Record<string, string | string[]>, loc: Loc, info: NodeInfo): string {
    const keyInputs: Record<string, string | string[]> = {};
    for (const [role, v] of Object.entries(inputs)) {
      keyInputs[role] = Array.isArray(v) ? v.map((x) => this.byId.get(x)!.key) : this.byId.get(v)!.key;
    }
    const key = nodeKey({ op, opVersion: OP_VERSIONS[op], params, inputs: keyInputs, salt: this.salt });
    const existing = this.byKey.get(key);
    if (existing) {
      const name = info.classifier ?? info.model;
      const own = existing.info.classifier ?? existing.info.model;
      if (name !== undefined && name !== own && !existing.info.aliases?.includes(name)) existing.info.aliases = [...(existing.info.aliases ?? []), name];
      const at = existing.info.stmt;
      const sameStmt = (x: NodeInfo['stmt']) => x?.kind === info.stmt?.kind && x?.n === info.stmt?.n;
      if (info.stmt && at && !sameStmt(at) && !existing.info.also?.some((v) => sameStmt(v.stmt))) {
        const { stmt, target, attack, sweep } = info;
        existing.info.also = [...(existing.info.also ?? []), { stmt, target, attack, ...(sweep ? { sweep } : {}) }];
      }
      return existing.id;
    }
    let uid = id;
    for (let n = 2; this.byId.has(uid); n++) uid = `${id}#${n}`;
    const node: DagNode<K> = { id: uid, op, key, params, inputs, loc, info };
    this.nodes.push(node);
    this.byId.set(uid, node);
    this.byKey.set(key, node);
    return uid;
  }

  private once(memoKey: string, loc: Loc, make: () => string): string {
    const hit = this.memo.get(memoKey);
    if (hit) return hit;
    if (this.building.has(memoKey)) {
      throw new UserError('cycle in the pipeline', [error(`cycle: ${memoKey} depends on itself`, loc)]);
    }
    this.building.add(memoKey);
    const id = make();
    this.building.delete(memoKey);
    this.memo.set(memoKey, id);
    return id;
  }

  private datasetNode(): string {
    const d = this.program.dataset;
    const loc = d.loc ?? { file: this.program.file, line: 0, col: 0, endLine: 0, endCol: 0 };
    const info = DATASETS[d.name]!;
    return this.add(
      'dataset',
      `dataset/${d.name}`,
      {
        name: d.name,
        train: d.train ?? null,
        test: d.test ?? null,
        val: d.val,
        seed: d.seed,
        shape: info.shape,
        classes: info.classes,
        identity: this.opts.datasetIdentity,
      },
      {},
      loc,
      d.path ? { path: d.path } : {},
    );
  }

  private trainNode(name: string): string {
    const m = this.models.get(name)!;
    if (m.weights) return this.once(`train:${name}`, m.loc, () => this.importNode(m, m.weights!));
    return this.once(`train:${name}`, m.loc, () => {
      const inputs: Record<string, string> = { data: this.datasetId };
      if (m.from) inputs.from = this.trainNode(m.from);
      // Only what training reads: RAMP's beta only with gradient projection.
      const method: MethodParams<Rational> =
        m.method.name === 'standard'
          ? { name: 'standard' }
          : m.method.name === 'adversarial'
            ? { name: 'adversarial', attack: trainingAttackParams(m.method.attack), mix: m.method.mix }
            : m.method.name === 'ramp'
              ? {
                  name: 'ramp',
                  pair: [trainingAttackParams(m.method.pair[0]), trainingAttackParams(m.method.pair[1])],
                  lambda: m.method.lambda,
                  ...(m.method.gp ? { beta: m.method.beta } : {}),
                  gp: m.method.gp,
                }
              : { name: m.method.name, attacks: (m.method as { attacks: AttackUse[] }).attacks.map(trainingAttackParams) };
      // Momentum and weight decay belong to SGD; Adam reads neither.
      const { momentum, wd, ...common } = m.train;
      const train = m.train.optimizer === 'sgd' ? { ...common, momentum, wd } : common;
      const params: OpParams<'train', Rational> = { ...this.modelParams(m), train, method };
      return this.add('train', `train/${name}`, params, inputs, m.loc, { model: name });
    });
  }

  /** The architecture, quantisers and noise of a model: what both a trained and an imported model's key hold. */
  private modelParams(m: CModel): Omit<OpParams<'train', Rational>, 'train' | 'method'> {
    const info = DATASETS[this.program.dataset.name]!;
    // K-bit input quantisation reads its statistics (batch or image) and always passes
    // gradients straight through; halftone normalises per image and reads its BPDA stand-in.
    const q = m.input;
    const input: OpParams<'train'>['input'] = !q
      ? null
      : q.kind === 'bits'
        ? { kind: 'bits', bits: q.bits!, stats: q.stats }
        : { kind: 'halftone', bpda: q.bpda };
    return {
      arch: m.arch,
      width: m.width,
      input,
      weightBits: m.weightBits ?? null,
      activationBits: m.activationBits ?? null,
      noise: m.noise,
      shape: info.shape,
      classes: info.classes,
    };
  }

  /** An imported model: keyed by the weights file's content, read from its path (info, not key). */
  private importNode(m: CModel, w: NonNullable<CModel['weights']>): string {
    const checksum = this.opts.weights?.[w.path];
    if (checksum === undefined) {
      throw new UserError(`weights file ${w.path} was not read before planning`, [error(`weights file '${w.written}' was not read before planning`, w.loc)]);
    }
    const params: OpParams<'train', Rational> = { ...this.modelParams(m), weights: { checksum } };
    return this.add('train', `train/${m.name}`, params, { data: this.datasetId }, m.loc, { model: m.name, path: w.path });
  }

  /** The spec and the model-input list of a classifier (model, ensemble or smoothed). */
  private classifier(name: string): { spec: ClassSpec; models: string[]; select?: string; loc: Loc } {
    const m = this.models.get(name);
    if (m) return { spec: { kind: 'model' }, models: [this.trainNode(name)], loc: m.loc };
    const e = this.ensembles.get(name);
    if (e) {
      if (e.trend) {
        const select = this.selectNode(e);
        return {
          spec: { kind: 'ensemble', vote: e.vote, seed: e.seed, select: true },
          models: this.canonicalOrder(e.trend.candidates).map((c) => this.trainNode(c)),
          select,
          loc: e.loc,
        };
      }
      const members = this.canonicalOrder(e.members!);
      return { spec: { kind: 'ensemble', vote: e.vote, seed: e.seed, select: false }, models: members.map((c) => this.trainNode(c)), loc: e.loc };
    }
    const s = this.smooths.get(name)!;
    const base = this.classifier(s.base);
    return {
      // `average` is read by the soft vote only.
      spec: {
        kind: 'smooth',
        sd: s.sd,
        m: s.m,
        vote: s.vote,
        ...(s.vote === 'soft' ? { average: s.average } : {}),
        seed: s.seed,
        batch: s.batch,
        base: base.spec,
      },
      models: base.models,
      ...(base.select ? { select: base.select } : {}),
      loc: s.loc,
    };
  }

  private locOf(name: string): Loc {
    return (this.models.get(name) ?? this.ensembles.get(name) ?? this.smooths.get(name))!.loc;
  }

  private classifierInputs(c: { models: string[]; select?: string }): Record<string, string | string[]> {
    return { models: c.models, ...(c.select ? { select: c.select } : {}) };
  }

  private predictNode(name: string): string {
    return this.once(`predict:${name}`, this.locOf(name), () => {
      const c = this.classifier(name);
      return this.add('predict', `predict/${name}`, { classifier: c.spec }, { data: this.datasetId, ...this.classifierInputs(c) }, c.loc, { classifier: name });
    });
  }

  private advNode(a: AttackUse, source: string): string {
    const disp = attackDisplay(a);
    const sw = sweepInfo(a);
    return this.add('adversarial', `adv/${disp}/${source}`, { attack: attackParams(a) }, { data: this.datasetId, models: [this.trainNode(source)] }, a.loc, {
      source,
      attack: disp,
      ...(sw ? { sweep: sw } : {}),
    });
  }

  /** The content key of a classifier (its clean-prediction node): a name-free sort key. */
  private classifierKey(name: string): string {
    return this.byId.get(this.predictNode(name))!.key;
  }

  /** Sorts classifier names by content key, so statement order never changes a key. */
  private canonicalOrder(names: string[]): string[] {
    return [...names].sort((a, b) => (this.classifierKey(a) < this.classifierKey(b) ? -1 : 1));
  }

  private matrixNode(i: number): string {
    const t = this.program.transfers[i]!;
    return this.once(`matrix:${i}`, t.loc, () => {
      const sources = this.canonicalOrder(t.sources);
      const targets = this.canonicalOrder(t.targets);
      const cells: string[] = [];
      for (const a of t.attacks) {
        const disp = attackDisplay(a);
        const sw = sweepInfo(a);
        for (const target of targets) {
          const tc = this.classifier(target);
          for (const source of sources) {
            const adv = this.advNode(a, source);
            cells.push(
              this.add(
                'transfer',
                `transfer/${disp}/${source}->${target}`,
                { target: tc.spec },
                { adv, ...this.classifierInputs(tc), sourceClean: this.predictNode(source), targetClean: this.predictNode(target) },
                a.loc,
                { source, target, attack: disp, stmt: { kind: 'transfer', n: i + 1, line: t.loc.line }, ...(sw ? { sweep: sw } : {}) },
              ),
            );
          }
        }
      }
      const familyOf = (n: string) => this.models.get(n)?.family ?? this.smooths.get(n)?.family;
      const famIdx = (names: string[]) => {
        const groups: Record<string, number[]> = {};
        names.forEach((n, j) => {
          const f = familyOf(n);
          if (f) (groups[f] ??= []).push(j);
        });
        return Object.entries(groups).filter(([, g]) => g.length > 1);
      };
      const sf = famIdx(sources);
      const tf = famIdx(targets);
      // The swept values matter only to the TM-versus-eps fits (three or more attacks that differ
      // in eps alone); otherwise the cells' own keys already say everything about the attacks.
      const fits = t.attacks.length >= 3 && t.attacks.every((a) => Object.keys(a.sweep).length === 1 && a.sweep.eps !== undefined);
      const params: OpParams<'matrix', Rational> = {
        attacks: t.attacks.map((a) => ({ sweep: fits ? a.sweep : {} })),
        sources: sources.length,
        targets: targets.length,
        sourceFamilies: sf.map(([, g]) => g).sort(),
        targetFamilies: tf.map(([, g]) => g).sort(),
        self: targets
          .flatMap((t, ti) => sources.map((s, si) => [ti, si, s === t] as const))
          .filter(([, , same]) => same)
          .map(([ti, si]): [number, number] => [ti, si]),
      };
      return this.add('matrix', `matrix/transfer${i + 1}`, params, { cells }, t.loc, {
        stmt: { kind: 'transfer', n: i + 1, line: t.loc.line },
        labels: {
          sources,
          targets,
          attacks: t.attacks.map(attackDisplay),
          sourceFamilies: sf.sort(([, a], [, b]) => (String(a) < String(b) ? -1 : 1)).map(([f]) => f),
          targetFamilies: tf.sort(([, a], [, b]) => (String(a) < String(b) ? -1 : 1)).map(([f]) => f),
        },
      });
    });
  }

  private selectNode(e: CEnsemble): string {
    return this.once(`select:${e.name}`, e.loc, () => {
      const tr = e.trend!;
      const ti = this.program.transfers.findIndex((t) => t.index === tr.transfer);
      const t = this.program.transfers[ti]!;
      const matrix = this.matrixNode(ti);
      // Positions in this transfer's own canonical order: the matrix node may be another
      // transfer's (same key: models of the same content under other names), whose labels
      // name its own models. Canonical order is by content, so the positions agree.
      const sources = this.canonicalOrder(t.sources);
      const targets = this.canonicalOrder(t.targets);
      const attackIndex = t.attacks.indexOf(tr.attack);
      const candidates = this.canonicalOrder(tr.candidates);
      const params: OpParams<'select'> = {
        k: tr.k,
        objective: tr.objective,
        attackIndex,
        candidates: candidates.map((c) => ({ col: sources.indexOf(c), row: targets.indexOf(c) })),
      };
      return this.add('select', `select/${e.name}`, params, { matrix }, e.loc, { classifier: e.name, labels: { candidates } });
    });
  }

  private evaluateNodes(i: number, ev: CheckedProgram['evaluates'][number]): void {
    for (const target of ev.targets) {
      const c = this.classifier(target);
      const runs: string[] = [];
      for (const a of ev.attacks) {
        const disp = attackDisplay(a);
        // In a union, attacks told apart by their parameters form one set, not a sweep.
        const sw = sweepInfo(a, ev.union ? (a.distinct ?? []) : []);
        // An ensemble is also compared with its members; a smoothed target is attacked in the
        // attack's batches, so its own inference batch plays no part here.
        const ensemble = c.spec.kind === 'ensemble';
        const attack = attackParams(a);
        runs.push(
          this.add(
            'robust',
            `robust/${disp}/${target}`,
            {
              attack,
              target: withoutInferenceBatch(c.spec),
              ...(ensemble ? { members: true } : {}),
              ...(c.spec.kind === 'smooth' && drawsSmoothingNoise(attack) ? { noisy: true } : {}),
            },
            { data: this.datasetId, ...this.classifierInputs(c) },
            a.loc,
            { target, attack: disp, stmt: { kind: 'evaluate', n: i + 1, line: ev.loc.line }, ...(sw ? { sweep: sw } : {}) },
          ),
        );
      }
      if (ev.union) {
        const order = runs.map((r, j) => ({ r, j, key: this.byId.get(r)!.key })).sort((a, b) => (a.key < b.key ? -1 : 1));
        this.add('union', `union/evaluate${i + 1}/${target}`, {}, { runs: order.map((o) => o.r), clean: this.predictNode(target) }, ev.loc, {
          target,
          stmt: { kind: 'evaluate', n: i + 1, line: ev.loc.line },
          labels: { attacks: order.map((o) => attackDisplay(ev.attacks[o.j]!)) },
        });
      }
    }
  }
}
