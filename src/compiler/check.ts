/**
 * Semantic checks: a separate pass over the AST (as in Langium) that resolves names, validates
 * parameters against the schema, fills defaults, expands families and sweeps, and reports every
 * independent error with a location and, where possible, a suggestion.
 *
 * Declarations may appear in any order: all names are collected first, then references resolved.
 */
import type * as A from './ast.js';
import type {
  AttackUse,
  CDataset,
  CEnsemble,
  CEvaluate,
  CheckedProgram,
  CModel,
  CSmooth,
  CTransfer,
  InputQuant,
  Method,
  NoiseSpec,
  Params,
  PVal,
  TrainSettings,
} from './checked.js';
import { didYouMean, error, oneOf, type Diagnostic } from './diagnostics.js';
import { product, validateParams, withDefaults, type Raw, type Validated } from './params.js';
import { Rational } from './rational.js';
import {
  ARCHS,
  ATTACKS,
  BACKENDS,
  DATASET_PARAMS,
  DATASETS,
  ENSEMBLE_PARAMS,
  METHOD_PARAMS,
  METHODS,
  MODEL_PARAMS,
  NOISE_TARGETS,
  QUANT_TARGETS,
  REPORT_PARAMS,
  SMOOTH_PARAMS,
  TRAIN_PARAMS,
  type MethodName,
  type ParamSpec,
} from './schema.js';

/** A parameter that is written but takes no effect where it is written: said, not fatal. */
function unusedParam(message: string, loc: A.Loc, note: string): Diagnostic {
  return { ...error(message, loc, { note }), severity: 'warning' };
}

/** Dataset-budget PGD aliases, usable wherever an attack name is: `linf`, `l2`, `l1`. */
export const ATTACK_ALIASES = ['linf', 'l2', 'l1'] as const;
const ALIAS_STEPS = 10;

type DeclKind = 'model' | 'family' | 'ensemble' | 'smooth' | 'smoothfamily' | 'attack';
interface Decl {
  kind: DeclKind;
  loc: A.Loc;
}

export interface CheckResult {
  checked?: CheckedProgram;
  diagnostics: Diagnostic[];
}

export function check(program: A.Program): CheckResult {
  return new Checker(program).run();
}

class Checker {
  private readonly diags: Diagnostic[] = [];
  private readonly decls = new Map<string, Decl>();
  private readonly attackStmts = new Map<string, A.AttackStmt>();
  private readonly attackCache = new Map<string, AttackUse[] | null>();
  private readonly resolving = new Set<string>();
  private dataset!: CDataset;
  private models: CModel[] = [];
  private readonly families: Record<string, string[]> = {};
  private ensembles: CEnsemble[] = [];
  private smooths: CSmooth[] = [];

  constructor(private readonly program: A.Program) {}

  run(): CheckResult {
    const st = this.program.statements;
    const one = <K extends A.Statement['kind']>(kind: K) => {
      const xs = st.filter((s): s is Extract<A.Statement, { kind: K }> => s.kind === kind);
      for (const extra of xs.slice(1)) {
        this.diags.push(error(`only one '${kind}' statement is allowed`, extra.loc, { note: `the first is at line ${xs[0]!.loc.line}` }));
      }
      return xs[0];
    };
    const datasetStmt = one('dataset');
    const backendStmt = one('backend');
    const reportStmt = one('report');
    const trainStmt = one('train');

    this.collectDeclarations();
    this.dataset = this.checkDataset(datasetStmt);

    let backend: string | undefined;
    if (backendStmt) {
      const b = backendStmt.name.name;
      if (!(BACKENDS as readonly string[]).includes(b)) {
        const g = didYouMean(b, BACKENDS);
        this.diags.push(error(`unknown backend '${b}'`, backendStmt.name.loc, { expected: oneOf(BACKENDS), ...(g ? { suggestion: `'${g}'` } : {}) }));
      } else backend = b;
    }
    let title: string | undefined;
    if (reportStmt) {
      const v = validateParams(reportStmt.params, REPORT_PARAMS, 'report', this.diags);
      if (typeof v.fixed.title === 'string') title = v.fixed.title;
    }

    const defaults = this.checkTrainDefaults(trainStmt);
    for (const s of st) if (s.kind === 'model') this.checkModel(s, defaults);
    this.checkFromReferences();
    for (const s of st) if (s.kind === 'smooth') this.checkSmooth(s);
    const pendingTrend: Array<{ stmt: A.EnsembleStmt; ens: CEnsemble }> = [];
    for (const s of st) if (s.kind === 'ensemble') this.checkEnsemble(s, pendingTrend);
    const transfers: CTransfer[] = [];
    for (const s of st) if (s.kind === 'transfer') transfers.push(this.checkTransfer(s));
    const evaluates: CEvaluate[] = [];
    for (const s of st) if (s.kind === 'evaluate') evaluates.push(this.checkEvaluate(s));
    for (const p of pendingTrend) this.checkTrend(p.stmt, p.ens, transfers);

    if (this.diags.some((d) => d.severity === 'error')) return { diagnostics: this.diags };
    return {
      diagnostics: this.diags,
      checked: {
        file: this.program.file,
        dataset: this.dataset,
        ...(backend ? { backend } : {}),
        ...(title !== undefined ? { title } : {}),
        models: this.models,
        ensembles: this.ensembles,
        smooths: this.smooths,
        transfers,
        evaluates,
        families: this.families,
      },
    };
  }

  // ------------------------------------------------------------------ declarations
  private declare(name: A.Name, kind: DeclKind): boolean {
    const prev = this.decls.get(name.name);
    if (prev) {
      this.diags.push(error(`'${name.name}' is already declared`, name.loc, { note: `first declared at line ${prev.loc.line}` }));
      return false;
    }
    if (kind === 'attack' && ATTACKS[name.name]) {
      this.diags.push(error(`'${name.name}' is a builtin attack and cannot be redefined`, name.loc, { suggestion: `a new name such as '${name.name}2'` }));
      return false;
    }
    if (/\.[0-9]+$/.test(name.name)) {
      this.diags.push(error(`'${name.name}' cannot be declared: NAME.N names family members`, name.loc));
      return false;
    }
    this.decls.set(name.name, { kind, loc: name.loc });
    return true;
  }

  private collectDeclarations(): void {
    for (const s of this.program.statements) {
      if (s.kind === 'model') this.declare(s.name, 'model');
      else if (s.kind === 'attack') {
        if (this.declare(s.name, 'attack')) this.attackStmts.set(s.name.name, s);
      } else if (s.kind === 'smooth') this.declare(s.name, 'smooth');
      else if (s.kind === 'ensemble' && s.name) this.declare(s.name, 'ensemble');
    }
  }

  // ------------------------------------------------------------------ dataset
  private checkDataset(s: A.DatasetStmt | undefined): CDataset {
    if (!s) return { name: 'mnist', val: Rational.of(1, 10), seed: 0 };
    const name = s.name.name;
    const info = DATASETS[name];
    if (!info) {
      const g = didYouMean(name, Object.keys(DATASETS));
      this.diags.push(error(`unknown dataset '${name}'`, s.name.loc, { expected: oneOf(Object.keys(DATASETS)), ...(g ? { suggestion: `'${g}'` } : {}) }));
    }
    const v = validateParams(s.params, DATASET_PARAMS, `dataset ${name}`, this.diags);
    const p = withDefaults(v.fixed, DATASET_PARAMS);
    const limits: Record<string, [number, number]> = { mnist: [60000, 10000], cifar10: [50000, 10000], cifar100: [50000, 10000] };
    const lim = limits[name];
    if (lim) {
      for (const [k, max] of [['train', lim[0]], ['test', lim[1]]] as const) {
        if (typeof p[k] === 'number' && (p[k] as number) > max) {
          this.diags.push(error(`${k}=${p[k]} is larger than ${name} (${max} images)`, v.locs[k]!, { expected: `an integer <= ${max}` }));
        }
      }
    }
    if ((name === 'cifar10' || name === 'cifar100') && typeof p.path !== 'string') {
      this.diags.push(error(`dataset ${name} needs path="..."`, s.name.loc, { expected: 'the folder holding the CIFAR binary files' }));
    }
    return {
      name,
      loc: s.loc,
      ...(typeof p.train === 'number' ? { train: p.train } : {}),
      ...(typeof p.test === 'number' ? { test: p.test } : {}),
      val: p.val as Rational,
      seed: p.seed as number,
      ...(typeof p.path === 'string' ? { path: p.path } : {}),
    };
  }

  // ------------------------------------------------------------------ attacks
  /** Resolves an attack written as `name param=...` plus statement-level `with` params. */
  private resolveAttack(spec: { name: A.Name; params: A.Param[]; loc: A.Loc }, withParams: A.Param[] = []): AttackUse[] {
    const base = this.attackBase(spec.name);
    if (!base) return [];
    const info = ATTACKS[base[0]!.attack]!;
    const out: AttackUse[] = [];
    const own = validateParams(spec.params, info.params, `attack ${base[0]!.attack}`, this.diags);
    const shared = validateParams(withParams, info.params, `attack ${base[0]!.attack} (from 'with')`, this.diags);
    for (const b of base) {
      const given: Params = { ...b.params, ...shared.fixed, ...own.fixed };
      const swept: Record<string, PVal[]> = {};
      for (const [k, vs] of Object.entries({ ...shared.swept, ...own.swept })) {
        if (own.fixed[k] === undefined) swept[k] = vs;
      }
      for (const k of Object.keys(swept)) delete given[k];
      for (const combo of product(swept)) {
        const params = finishAttackParams(b.attack, { ...given, ...combo });
        if (params.norm === 'linf' && params.eps instanceof Rational && params.eps.cmp(Rational.of(1)) > 0) {
          this.diags.push(error(`eps=${params.eps.pretty()} is out of range for l_inf`, own.locs.eps ?? shared.locs.eps ?? spec.loc, { expected: 'a number in (0, 1]' }));
          break;
        }
        const topkLoc = own.locs.topk ?? shared.locs.topk;
        if (b.attack === 'pgd' && params.norm !== 'l1' && topkLoc && !this.diags.some((d) => d.loc === topkLoc)) {
          this.diags.push(unusedParam(`'topk' applies only to norm=l1; it is ignored for norm=${String(params.norm)}`, topkLoc, 'it shapes l_1 steps (the fraction of coordinates moved)'));
        }
        out.push({ attack: b.attack, params, label: spec.name.name, sweep: { ...b.sweep, ...combo }, loc: spec.loc });
      }
    }
    return out;
  }

  /** The builtin, alias or defined attack a name refers to (resolving definitions recursively). */
  private attackBase(name: A.Name): AttackUse[] | undefined {
    const n = name.name;
    if (ATTACKS[n]) return [{ attack: n, params: {}, label: n, sweep: {}, loc: name.loc }];
    const def = this.attackStmts.get(n);
    if (def) {
      if (this.attackCache.has(n)) return this.attackCache.get(n) ?? undefined;
      if (this.resolving.has(n)) {
        this.diags.push(error(`attack '${n}' is defined in terms of itself`, name.loc, { note: `cycle through: ${[...this.resolving, n].join(' -> ')}` }));
        return undefined;
      }
      this.resolving.add(n);
      const uses = this.resolveAttack(def.spec);
      this.resolving.delete(n);
      const res = uses.length ? uses.map((u) => ({ ...u, label: n })) : null;
      this.attackCache.set(n, res);
      return res ?? undefined;
    }
    if ((ATTACK_ALIASES as readonly string[]).includes(n)) {
      const budgets = (DATASETS[this.dataset.name] ?? DATASETS.mnist!).budgets;
      const eps = budgets[n as 'linf' | 'l2' | 'l1'];
      return [
        {
          attack: 'pgd',
          params: { norm: n, eps, steps: ALIAS_STEPS, step: eps.mul(Rational.of(5, 2)).div(Rational.of(ALIAS_STEPS)) },
          label: n,
          sweep: {},
          loc: name.loc,
        },
      ];
    }
    const known = [...Object.keys(ATTACKS), ...ATTACK_ALIASES, ...this.attackStmts.keys()];
    const g = didYouMean(n, known);
    const decl = this.decls.get(n);
    this.diags.push(
      error(decl ? `'${n}' is a ${decl.kind}, not an attack` : `unknown attack '${n}'`, name.loc, {
        expected: oneOf(known),
        ...(g ? { suggestion: `'${g}'` } : {}),
      }),
    );
    return undefined;
  }

  private attackRef(raw: Raw): AttackUse | undefined {
    if (raw.value.kind !== 'ident') return undefined;
    const uses = this.resolveAttack({ name: { name: raw.value.name, loc: raw.loc }, params: [], loc: raw.loc });
    if (uses.length > 1) {
      this.diags.push(error(`attack '${raw.value.name}' is a sweep (${uses.length} attacks); a single attack is needed here`, raw.loc));
      return undefined;
    }
    return uses[0];
  }

  // ------------------------------------------------------------------ training
  private checkTrainDefaults(s: A.TrainStmt | undefined): { method: MethodName; v: Validated; methodV: Validated } {
    const empty: Validated = { fixed: {}, swept: {}, locs: {}, attackRefs: {} };
    if (!s) return { method: 'standard', v: empty, methodV: empty };
    const method = this.checkMethodName(s.method) ?? 'standard';
    const schema: Record<string, ParamSpec> = { ...TRAIN_PARAMS, ...METHOD_PARAMS[method] };
    const all = validateParams(s.params, schema, `train${s.method ? ' ' + s.method.name : ''}`, this.diags);
    for (const [k, vs] of Object.entries(all.swept)) {
      this.diags.push(error(`'${k}' cannot be a list in the train statement`, all.locs[k]!, { note: `a range makes a family of models: give it on a model, e.g. seed ${vs.length > 1 ? '1..' + vs.length : '1'}` }));
    }
    if (all.fixed.optimizer === 'adam') this.sgdOnly(all.locs);
    return { method, v: all, methodV: all };
  }

  private checkMethodName(n: A.Name | undefined): MethodName | undefined {
    if (!n) return undefined;
    if ((METHODS as readonly string[]).includes(n.name)) return n.name as MethodName;
    const g = didYouMean(n.name, METHODS);
    this.diags.push(error(`unknown training method '${n.name}'`, n.loc, { expected: oneOf(METHODS), ...(g ? { suggestion: `'${g}'` } : {}) }));
    return undefined;
  }

  private checkModel(s: A.ModelStmt, defaults: ReturnType<Checker['checkTrainDefaults']>): void {
    const arch = s.arch.name;
    if (!ARCHS[arch]) {
      const g = didYouMean(arch, Object.keys(ARCHS));
      this.diags.push(error(`unknown architecture '${arch}'`, s.arch.loc, { expected: oneOf(Object.keys(ARCHS)), ...(g ? { suggestion: `'${g}'` } : {}) }));
    }
    const method: MethodName = this.checkMethodName(s.method) ?? (s.method ? 'standard' : defaults.method);
    const schema: Record<string, ParamSpec> = { ...MODEL_PARAMS, ...METHOD_PARAMS[method] };
    const v = validateParams(s.params, schema, `model ${s.name.name}${s.method ? ` (train ${method})` : ''}`, this.diags);
    // Global defaults apply where the model is silent (method params only when the method matches).
    const inherited: Params = {};
    for (const [k, val] of Object.entries(defaults.v.fixed)) {
      if (schema[k] && (TRAIN_PARAMS[k] || method === defaults.method)) inherited[k] = val;
    }
    const given = { ...inherited, ...v.fixed };
    const p = withDefaults(given, schema, new Set(Object.keys(v.swept)));

    const input = this.checkQuant(s, p);
    if (v.locs.bpda && input.input?.kind !== 'halftone') {
      this.diags.push(
        unusedParam(
          `'bpda' applies only to 'quant input halftone'; it is ignored here`,
          v.locs.bpda,
          input.input ? 'K-bit input quantisation always passes gradients straight through (the identity)' : 'this model has no input quantisation',
        ),
      );
    }
    if (v.locs.qstats && input.input?.kind !== 'bits') {
      this.diags.push(unusedParam(`'qstats' applies only to K-bit input quantisation ('quant input 2bit'); it is ignored here`, v.locs.qstats, input.input ? 'halftone normalises each image by its own range' : 'this model has no input quantisation'));
    }
    if (p.optimizer === 'adam' && !v.swept.optimizer) this.sgdOnly(v.locs);
    if (method === 'ramp' && p.gp === false && (v.locs.beta ?? (defaults.method === 'ramp' ? defaults.v.locs.beta : undefined))) {
      this.diags.push(unusedParam(`'beta' (the gradient-projection weight) is ignored with gp=false`, (v.locs.beta ?? defaults.v.locs.beta)!, 'set gp=true to project gradients, or drop beta'));
    }
    const noise = this.checkNoise(s);
    const attackRefs = { ...(method === defaults.method ? defaults.v.attackRefs : {}), ...v.attackRefs };
    const m = this.checkMethod(method, p, attackRefs, METHOD_PARAMS[method], s.loc);

    for (const { name, combo, family: familyName } of this.expandFamily(s.name, v.swept, 'family', 'model')) {
      const q = { ...p, ...combo };
      const train: TrainSettings = {
        epochs: q.epochs as number,
        batch: q.batch as number,
        lr: q.lr as Rational,
        momentum: q.momentum as Rational,
        wd: q.wd as Rational,
        optimizer: q.optimizer as 'sgd' | 'adam',
        seed: q.seed as number,
        schedule: q.schedule as 'step' | 'constant',
      };
      const model: CModel = {
        name,
        ...(familyName ? { family: familyName } : {}),
        loc: s.loc,
        arch,
        width: q.width as Rational,
        ...(input.input ? { input: input.input } : {}),
        ...(input.weightBits ? { weightBits: input.weightBits } : {}),
        ...(input.activationBits ? { activationBits: input.activationBits } : {}),
        noise,
        train,
        method: (m ?? { name: 'standard' }) as CModel['method'],
        ...(s.from ? { from: s.from.name } : {}),
      };
      this.models.push(model);
    }
  }

  /** Members of a declaration with swept parameters (a family NAME.1..NAME.n), or the one name. */
  private expandFamily(name: A.Name, swept: Record<string, PVal[]>, kind: DeclKind, memberKind: DeclKind): Array<{ name: string; combo: Params; family?: string }> {
    if (!Object.keys(swept).length) return [{ name: name.name, combo: {} }];
    this.decls.set(name.name, { kind, loc: name.loc });
    const members = (this.families[name.name] = [] as string[]);
    return product(swept).map((combo, i) => {
      const member = `${name.name}.${i + 1}`;
      members.push(member);
      this.decls.set(member, { kind: memberKind, loc: name.loc });
      return { name: member, combo, family: name.name };
    });
  }

  private checkQuant(s: A.ModelStmt, p: Params): { input?: InputQuant; weightBits?: number; activationBits?: number } {
    const out: { input?: InputQuant; weightBits?: number; activationBits?: number } = {};
    const seen = new Map<string, A.Loc>();
    for (const q of s.quant) {
      const t = q.target.name;
      if (!(QUANT_TARGETS as readonly string[]).includes(t)) {
        const g = didYouMean(t, QUANT_TARGETS);
        this.diags.push(error(`unknown quantisation target '${t}'`, q.target.loc, { expected: oneOf(QUANT_TARGETS), ...(g ? { suggestion: `'${g}'` } : {}) }));
        continue;
      }
      if (seen.has(t)) {
        this.diags.push(error(`'quant ${t}' is given twice`, q.loc, { note: `first at line ${seen.get(t)!.line}` }));
        continue;
      }
      seen.set(t, q.loc);
      if (q.value.kind === 'ident') {
        if (t === 'input' && q.value.name === 'halftone') {
          out.input = { kind: 'halftone', stats: p.qstats as 'batch' | 'image', bpda: p.bpda as 'sigmoid' | 'identity' };
        } else {
          const g = t === 'input' ? didYouMean(q.value.name, ['halftone']) : undefined;
          this.diags.push(
            error(`bad quantisation '${q.value.name}' for ${t}`, q.value.loc, {
              expected: t === 'input' ? 'a bit width (1bit..32bit) or halftone' : 'a bit width (1bit..32bit)',
              ...(g ? { suggestion: `'${g}'` } : {}),
            }),
          );
        }
        continue;
      }
      const bits = q.value.bits;
      if (bits < 1 || bits > 32) {
        this.diags.push(error(`${bits} bits is out of range`, q.value.loc, { expected: 'a bit width from 1bit to 32bit' }));
        continue;
      }
      if (t === 'input') out.input = { kind: 'bits', bits, stats: p.qstats as 'batch' | 'image', bpda: p.bpda as 'sigmoid' | 'identity' };
      else if (t === 'weight') out.weightBits = bits;
      else out.activationBits = bits;
    }
    return out;
  }

  private checkNoise(s: A.ModelStmt): CModel['noise'] {
    const out: CModel['noise'] = {};
    for (const n of s.noise) {
      const t = n.target.name;
      if (!(NOISE_TARGETS as readonly string[]).includes(t)) {
        const g = didYouMean(t, NOISE_TARGETS);
        this.diags.push(error(`unknown noise target '${t}'`, n.target.loc, { expected: oneOf(NOISE_TARGETS), ...(g ? { suggestion: `'${g}'` } : {}) }));
        continue;
      }
      if (out[t as 'input']) {
        this.diags.push(error(`'noise ${t}' is given twice`, n.loc));
        continue;
      }
      let spec: NoiseSpec | undefined;
      if (n.value.kind === 'ident') {
        if (n.value.name === 'learned') spec = { learned: true, sd: Rational.of(1, 4) };
        else {
          const g = didYouMean(n.value.name, ['learned']);
          this.diags.push(error(`bad noise '${n.value.name}'`, n.value.loc, { expected: 'an sd (e.g. 0.25) or learned', ...(g ? { suggestion: `'${g}'` } : {}) }));
        }
      } else if (n.value.value.cmp(Rational.of(0)) < 0 || n.value.value.cmp(Rational.of(10)) > 0) {
        this.diags.push(error(`noise sd ${n.value.text} is out of range`, n.value.loc, { expected: 'a number in [0, 10]' }));
      } else spec = { learned: false, sd: n.value.value };
      if (spec) out[t as 'input'] = spec;
    }
    return out;
  }

  private checkMethod(method: MethodName, p: Params, refs: Record<string, Raw[]>, schema: Record<string, ParamSpec>, loc: A.Loc): Method | undefined {
    const attackList = (key: string): AttackUse[] | undefined => {
      const raws = refs[key] ?? defaultRefs(schema[key]?.default, loc);
      const uses = raws.map((r) => this.attackRef(r));
      if (uses.some((u) => !u)) return undefined;
      return uses as AttackUse[];
    };
    const trainable = (uses: AttackUse[] | undefined): AttackUse[] | undefined => {
      if (!uses) return undefined;
      for (const u of uses) {
        if (ATTACKS[u.attack]!.kind !== 'single' || u.attack === 'cw' || u.attack === 'deepfool') {
          this.diags.push(error(`attack '${u.label}' (${u.attack}) cannot be used for adversarial training`, u.loc, { expected: 'pgd or fgsm attacks (e.g. linf, l2, l1)' }));
          return undefined;
        }
      }
      return uses;
    };
    switch (method) {
      case 'standard':
        return { name: 'standard' };
      case 'adversarial': {
        const a = trainable(attackList('attack'));
        if (!a) return undefined;
        return { name: 'adversarial', attack: a[0]!, mix: p.mix as Rational };
      }
      case 'avg':
      case 'max':
      case 'eat': {
        const a = trainable(attackList('attacks'));
        if (!a) return undefined;
        if (a.length < 2) this.diags.push(error(`'${method}' needs at least two attacks`, loc));
        return { name: method, attacks: a };
      }
      case 'ramp': {
        const pair = trainable(attackList('pair'));
        if (!pair) return undefined;
        if (pair.length !== 2) {
          this.diags.push(error(`'pair' needs exactly two attacks (source, target)`, refs.pair?.[0]?.loc ?? loc));
          return undefined;
        }
        return { name: 'ramp', pair: [pair[0]!, pair[1]!], lambda: p.lambda as Rational, beta: p.beta as Rational, gp: p.gp as boolean };
      }
    }
  }

  /** momentum= and wd= written where the optimizer is Adam, which reads neither. */
  private sgdOnly(locs: Record<string, A.Loc>): void {
    for (const k of ['momentum', 'wd'] as const) {
      if (locs[k]) this.diags.push(unusedParam(`'${k}' applies only to optimizer sgd; Adam ignores it`, locs[k]!, 'it is left out of the keys of Adam-trained models'));
    }
  }

  private checkFromReferences(): void {
    const byName = new Map(this.models.map((m) => [m.name, m]));
    for (const m of this.models) {
      if (!m.from) continue;
      const d = this.decls.get(m.from);
      if (!d || (d.kind !== 'model' && d.kind !== 'family')) {
        const g = didYouMean(m.from, [...byName.keys()]);
        this.diags.push(error(d ? `'${m.from}' is a ${d.kind}; 'from' needs a model` : `unknown model '${m.from}'`, m.loc, { ...(g ? { suggestion: `'${g}'` } : {}) }));
        delete m.from;
      } else if (d.kind === 'family') {
        this.diags.push(error(`'${m.from}' is a family of models; 'from' needs one model`, m.loc, { suggestion: `'${this.families[m.from]![0]}'` }));
        delete m.from;
      }
    }
    // Cycles: a model fine-tuned (transitively) from itself.
    const state = new Map<string, 1 | 2>();
    const visit = (name: string, path: string[]): void => {
      const st = state.get(name);
      if (st === 2) return;
      if (st === 1) {
        const m = byName.get(name)!;
        this.diags.push(error(`model '${name}' is fine-tuned from itself`, m.loc, { note: `cycle: ${[...path.slice(path.indexOf(name)), name].join(' -> ')}` }));
        return;
      }
      state.set(name, 1);
      const f = byName.get(name)?.from;
      if (f) visit(f, [...path, name]);
      state.set(name, 2);
    };
    for (const m of this.models) visit(m.name, []);
    // Break cycles so later stages never loop.
    for (const m of this.models) if (m.from && state.get(m.from) !== 2) delete m.from;
  }

  // ------------------------------------------------------------------ selections
  private classifierNames(): Array<{ name: string; kind: 'model' | 'ensemble' | 'smooth' }> {
    return [
      ...this.models.map((m) => ({ name: m.name, kind: 'model' as const })),
      ...this.ensembles.map((e) => ({ name: e.name, kind: 'ensemble' as const })),
      ...this.smooths.map((s) => ({ name: s.name, kind: 'smooth' as const })),
    ];
  }

  private resolveSelection(sel: A.Selection, allowed: ReadonlyArray<'model' | 'ensemble' | 'smooth'>, role: string): string[] {
    const out: string[] = [];
    const add = (n: string) => {
      if (!out.includes(n)) out.push(n);
    };
    const all = this.classifierNames();
    for (const it of sel.items) {
      if (it.kind === 'glob') {
        const re = new RegExp('^' + it.pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
        const pool = it.pattern === '*' ? all.filter((c) => c.kind === 'model') : all.filter((c) => allowed.includes(c.kind));
        const hits = pool.filter((c) => re.test(c.name) || (c.name.includes('.') && re.test(c.name.split('.')[0]!)));
        if (hits.length === 0) {
          this.diags.push(
            error(it.pattern === '*' ? `'*' selects nothing: the pipeline declares no models` : `'${it.pattern}' selects nothing`, it.loc, {
              expected: pool.length ? `a pattern matching some of: ${pool.map((c) => c.name).join(', ')}` : 'a model declaration first',
            }),
          );
        }
        hits.forEach((h) => add(h.name));
        continue;
      }
      const d = this.decls.get(it.name);
      const kind = d?.kind === 'family' ? 'model' : d?.kind === 'smoothfamily' ? 'smooth' : d?.kind;
      if (!d || kind === 'attack') {
        const g = didYouMean(
          it.name,
          all.map((c) => c.name).concat(Object.keys(this.families)),
        );
        this.diags.push(error(d ? `'${it.name}' is an attack, not a classifier` : `unknown name '${it.name}'`, it.loc, { ...(g ? { suggestion: `'${g}'` } : {}) }));
        continue;
      }
      if (!allowed.includes(kind as 'model')) {
        this.diags.push(error(`'${it.name}' is ${kind === 'ensemble' ? 'an ensemble' : 'a smoothed classifier'}; ${role} must be ${allowed.map((k) => k + 's').join(' or ')}`, it.loc));
        continue;
      }
      const fam = this.families[it.name];
      if (fam) fam.forEach(add);
      else add(it.name);
    }
    return out;
  }

  // ------------------------------------------------------------------ ensembles and smoothing
  private checkEnsemble(s: A.EnsembleStmt, pending: Array<{ stmt: A.EnsembleStmt; ens: CEnsemble }>): void {
    const v = validateParams(s.params, ENSEMBLE_PARAMS, 'ensemble', this.diags);
    const p = withDefaults(v.fixed, ENSEMBLE_PARAMS);
    if (s.trend) {
      const name = s.name?.name ?? `trend_k${p.k}`;
      if (!s.name) {
        if (this.decls.has(name)) this.diags.push(error(`the default name '${name}' is taken; name this ensemble: ensemble NAME = trend ...`, s.loc));
        else this.decls.set(name, { kind: 'ensemble', loc: s.loc });
      }
      const ens: CEnsemble = { name, loc: s.loc, vote: 'majority', seed: p.seed as number };
      this.ensembles.push(ens);
      pending.push({ stmt: s, ens });
      return;
    }
    if (!s.name) {
      this.diags.push(error('an ensemble of listed members needs a name', s.loc, { expected: 'ensemble NAME = a, b, c' }));
      return;
    }
    for (const k of ['k', 'objective'] as const) {
      if (v.locs[k]) this.diags.push(error(`'${k}' applies only to 'ensemble trend'`, v.locs[k]!));
    }
    const members = this.resolveSelection(s.members!, ['model'], 'ensemble members');
    if (members.length < 2 && s.members!.items.length > 0 && !this.diags.some((d) => d.loc.line === s.loc.line)) {
      this.diags.push(error('an ensemble needs at least two members', s.members!.loc));
    }
    this.ensembles.push({ name: s.name.name, loc: s.loc, vote: 'majority', seed: p.seed as number, members });
  }

  private checkTrend(s: A.EnsembleStmt, ens: CEnsemble, transfers: CTransfer[]): void {
    const v = validateParams(s.params, ENSEMBLE_PARAMS, 'ensemble trend', []);
    const p = withDefaults(v.fixed, ENSEMBLE_PARAMS);
    const k = p.k as number;
    const using = s.trend!.using;
    let given: Params | undefined;
    if (using) {
      const base = this.attackBase(using.name);
      if (!base) return;
      given = validateParams(using.params, ATTACKS[base[0]!.attack]!.params, `attack ${base[0]!.attack}`, this.diags).fixed;
    }
    // Without `using`, the transfer statement that measures the most models in both directions
    // is used (independent of statement order); a tie must be broken by `using`.
    const modelNames = new Set(this.models.map((m) => m.name));
    const coverage = (t: CTransfer) => t.sources.filter((n) => t.targets.includes(n) && modelNames.has(n)).length;
    const matching = transfers.flatMap((t) => t.attacks.filter((a) => !using || sameAttack(using.name.name, given!, a)).map((a) => ({ t, a })));
    const best = Math.max(0, ...matching.map((m) => coverage(m.t)));
    const top = matching.filter((m) => coverage(m.t) === best);
    if (top.length > 1 && new Set(top.map((m) => m.t.index)).size > 1) {
      const lines = [...new Set(top.map((m) => m.t.loc.line))].join(' and ');
      this.diags.push(error(`several transfers could choose this ensemble (lines ${lines}); say which with 'using'`, s.trend!.loc, { expected: `e.g. using ${top[0]!.a.label}` }));
      return;
    }
    const chosen = top[0] ? { t: top[0].t.index, a: top[0].a } : undefined;
    if (!chosen) {
      this.diags.push(
        error(
          using ? `no transfer statement uses the attack given in 'using'` : `'ensemble trend' needs a transfer statement to choose from`,
          s.trend!.using?.loc ?? s.trend!.loc,
          { expected: 'e.g. transfer pgd eps=8/255 from * to *' },
        ),
      );
      return;
    }
    const transfer = transfers.find((t) => t.index === chosen.t)!;
    if (!using && transfer.attacks.length > 1) {
      this.diags.push(
        error(`the transfer at line ${transfer.loc.line} has ${transfer.attacks.length} attacks; say which one: using ${transfer.attacks[0]!.label}`, s.trend!.loc),
      );
      return;
    }
    const modelSet = modelNames;
    let candidates = s.trend!.from
      ? this.resolveSelection(s.trend!.from, ['model'], 'TREND candidates')
      : transfer.sources.filter((n) => transfer.targets.includes(n) && modelSet.has(n));
    candidates = candidates.filter((c) => modelSet.has(c));
    const missing = candidates.filter((c) => !transfer.sources.includes(c) || !transfer.targets.includes(c));
    if (missing.length) {
      this.diags.push(
        error(`the transfer at line ${transfer.loc.line} does not measure ${missing.join(', ')} as both source and target`, s.trend!.from?.loc ?? s.trend!.loc, {
          expected: 'candidates that the transfer covers in both directions',
        }),
      );
      return;
    }
    if (transfer.targets.includes(ens.name)) {
      this.diags.push(error(`cycle: '${ens.name}' is chosen from the transfer at line ${transfer.loc.line}, which also targets it`, s.loc));
      return;
    }
    if (k < 2 || k > candidates.length) {
      this.diags.push(
        error(`k=${k} but ${candidates.length} model${candidates.length === 1 ? ' is' : 's are'} available to choose from`, v.locs.k ?? s.trend!.loc, {
          expected: candidates.length >= 2 ? `k between 2 and ${candidates.length}` : 'at least two candidate models in the transfer',
        }),
      );
      return;
    }
    ens.trend = { k, objective: p.objective as 'sum' | 'max', candidates, transfer: chosen.t, attack: chosen.a };
  }

  private checkSmooth(s: A.SmoothStmt): void {
    const v = validateParams(s.params, SMOOTH_PARAMS, `smooth ${s.name.name}`, this.diags);
    const p = withDefaults(v.fixed, SMOOTH_PARAMS, new Set(Object.keys(v.swept)));
    const d = this.decls.get(s.base.name);
    if (!d || (d.kind !== 'model' && d.kind !== 'ensemble')) {
      const g = didYouMean(s.base.name, this.models.map((m) => m.name));
      this.diags.push(
        error(d?.kind === 'family' ? `'${s.base.name}' is a family; smooth one model` : d ? `'${s.base.name}' is a ${d.kind}; smoothing needs a model or an ensemble` : `unknown model '${s.base.name}'`, s.base.loc, {
          ...(g ? { suggestion: `'${g}'` } : {}),
        }),
      );
      return;
    }
    if (v.locs.average && p.vote !== 'soft') {
      this.diags.push(unusedParam(`'average' applies only to vote=soft; it is ignored with vote=${String(p.vote)}`, v.locs.average, 'the soft vote averages probabilities or logits; the other votes count'));
    }
    for (const { name, combo, family } of this.expandFamily(s.name, v.swept, 'smoothfamily', 'smooth')) {
      const q = { ...p, ...combo };
      this.smooths.push({
        name,
        ...(family ? { family } : {}),
        loc: s.loc,
        base: s.base.name,
        sd: q.sd as Rational,
        m: q.m as number,
        vote: q.vote as CSmooth['vote'],
        average: q.average as CSmooth['average'],
        seed: q.seed as number,
        batch: q.batch as number,
        sweep: combo,
      });
    }
  }

  // ------------------------------------------------------------------ experiments
  private checkTransfer(s: A.TransferStmt): CTransfer {
    const attacks = distinguish(s.attacks.flatMap((a) => this.resolveAttack(a, s.with)));
    for (const a of attacks) {
      const kind = ATTACKS[a.attack]!.kind;
      if (kind === 'ensemble') this.diags.push(error(`'${a.label}' attacks ensembles; a transfer attack runs on one source model`, a.loc, { expected: 'pgd, fgsm, cw or deepfool' }));
      if (a.attack === 'epgd' && a.params.sd === undefined) this.diags.push(error(`epgd on a source model needs sd=`, a.loc));
    }
    const sources = this.resolveSelection(s.sources, ['model'], 'transfer sources');
    const targets = this.resolveSelection(s.targets, ['model', 'ensemble', 'smooth'], 'transfer targets');
    return { index: s.index, loc: s.loc, attacks, sources, targets };
  }

  private checkEvaluate(s: A.EvaluateStmt): CEvaluate {
    const attacks = distinguish(s.attacks.flatMap((a) => this.resolveAttack(a, s.with)));
    if (!s.attacks.length && s.with.length) this.diags.push(error(`'with' parameters need attacks ('against ...')`, s.with[0]!.loc));
    const targets = this.resolveSelection(s.targets, ['model', 'ensemble', 'smooth'], 'evaluation targets');
    const kindOf = (n: string) => (this.ensembles.some((e) => e.name === n) ? 'ensemble' : this.smooths.some((m) => m.name === n) ? 'smooth' : 'model');
    const reported = new Set<string>();
    for (const a of attacks) {
      const akind = ATTACKS[a.attack]!.kind;
      for (const t of targets) {
        const tk = kindOf(t);
        let msg: string | undefined;
        let suggestion: string | undefined;
        if (tk === 'ensemble' && akind !== 'ensemble') {
          msg = `'${t}' is an ensemble: attack it with an ensemble attack`;
          suggestion = "'agd' (or dag, ugd, empir)";
        } else if (tk === 'smooth' && akind === 'ensemble') msg = `'${a.label}' attacks ensembles, but '${t}' is a smoothed classifier`;
        else if (tk === 'model' && a.attack === 'epgd' && a.params.sd === undefined) msg = `epgd on model '${t}' needs sd= (or smooth the model first)`;
        const key = `${a.label}|${tk}`;
        if (msg && !reported.has(key)) {
          reported.add(key);
          this.diags.push(error(msg, a.loc, suggestion ? { suggestion } : {}));
        }
      }
    }
    if (s.union) {
      const swept = attacks.some((a) => Object.keys(a.sweep).length > 0);
      if (attacks.length < 2) this.diags.push(error(`'union' needs at least two attacks`, s.loc));
      else if (swept) this.diags.push(error(`'union' cannot be combined with a sweep`, s.loc, { note: 'union accuracy counts an image only if it survives every attack of one budget set' }));
    }
    return { index: s.index, loc: s.loc, targets, attacks, union: s.union };
  }
}

function defaultRefs(def: unknown, loc: A.Loc): Raw[] {
  if (typeof def !== 'string') return [];
  return def.split(',').map((name) => ({ value: { kind: 'ident' as const, name, text: name, loc }, loc }));
}

/** Fills parameters whose defaults depend on others (step sizes). */
function finishAttackParams(attack: string, given: Params): Params {
  const p = withDefaults(given, ATTACKS[attack]!.params);
  if (attack === 'pgd' && p.step === undefined) {
    const eps = p.eps as Rational;
    p.step = p.norm === 'linf' ? Rational.of(1, 100) : eps.mul(Rational.of(5, 2)).div(Rational.of(p.steps as number));
  }
  if (attack === 'epgd' && p.step === undefined) p.step = (p.eps as Rational).div(Rational.of(4));
  return p;
}

/** Does a transfer attack match `using NAME k=v ...`? Only the parameters written there count. */
function sameAttack(name: string, given: Params, have: AttackUse): boolean {
  if (have.label !== name && have.attack !== name) return false;
  for (const [k, v] of Object.entries(given)) {
    const h = have.params[k];
    if (h === undefined) return false;
    if (v instanceof Rational ? !(h instanceof Rational && v.eq(h)) : v !== h) return false;
  }
  return true;
}

/**
 * Attacks of one statement that would show the same label (`cw, cw kappa=30`) are told apart by
 * the parameters in which they differ, which then count as swept: `cw[kappa=0]`, `cw[kappa=30]`.
 * Labels and plots change; keys do not (they hash the parameters, never the labels).
 */
export function distinguish(uses: AttackUse[]): AttackUse[] {
  const shown = uses.map((u) => JSON.stringify([u.label, Object.entries(u.sweep).map(([k, v]) => [k, String(v)])]));
  const groups = new Map<string, AttackUse[]>();
  uses.forEach((u, i) => groups.set(shown[i]!, [...(groups.get(shown[i]!) ?? []), u]));
  return uses.map((u, i) => {
    const group = groups.get(shown[i]!)!;
    if (group.length < 2) return u;
    const differing = Object.keys(u.params).filter((k) => group.some((o) => String(o.params[k]) !== String(u.params[k])));
    return { ...u, sweep: { ...u.sweep, ...Object.fromEntries(differing.map((k) => [k, u.params[k]!])) } };
  });
}
