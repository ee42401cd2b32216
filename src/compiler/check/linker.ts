/**
 * The linker (as Langium's): collects every declaration first, so declarations may come in any
 * order, then resolves references on request: attack names (builtins, aliases, definitions, in
 * terms of one another), selections (`from a, q* to *`), `from` and `smooth ... of` references.
 */
import { globToRegExp, suggest } from '../../common/names.js';
import type * as A from '../ast.js';
import type { AttackUse, CModel, Params, PVal } from '../checked.js';
import { diag, oneOf, type Diagnostic } from '../diagnostics.js';
import { product, validateParams, withDefaults, type Raw } from '../params.js';
import { Rational } from '../rational.js';
import { ALIAS_STEPS, ATTACK_ALIASES, ATTACKS, DATASETS } from '../schema.js';
import type { Built, Decl, DeclKind } from './context.js';

type ClassifierKind = 'model' | 'ensemble' | 'smooth';

/** The statements that may appear at most once. */
export interface Singletons {
  dataset?: A.DatasetStmt;
  backend?: A.BackendStmt;
  report?: A.ReportStmt;
  train?: A.TrainStmt;
}

/** The first of each once-only statement; a second one is an error. */
export function singletons(program: A.Program, diags: Diagnostic[]): Singletons {
  const one = (kind: keyof Singletons): A.Statement | undefined => {
    const xs = program.statements.filter((s) => s.kind === kind);
    for (const extra of xs.slice(1)) {
      diags.push(diag('E011', `only one '${kind}' statement is allowed`, extra.loc, { note: `the first is at line ${xs[0]!.loc.line}` }));
    }
    return xs[0];
  };
  const dataset = one('dataset') as A.DatasetStmt | undefined;
  const backend = one('backend') as A.BackendStmt | undefined;
  const report = one('report') as A.ReportStmt | undefined;
  const train = one('train') as A.TrainStmt | undefined;
  return { ...(dataset ? { dataset } : {}), ...(backend ? { backend } : {}), ...(report ? { report } : {}), ...(train ? { train } : {}) };
}

export class Linker {
  readonly decls = new Map<string, Decl>();
  /** Family name -> member names, for models and smoothed classifiers. */
  readonly families: Record<string, string[]> = {};
  private readonly attackStmts = new Map<string, A.AttackStmt>();
  private readonly attackCache = new Map<string, AttackUse[] | null>();
  private readonly resolving = new Set<string>();

  constructor(
    private readonly program: A.Program,
    private readonly diags: Diagnostic[],
    private readonly built: Built,
  ) {}

  // ------------------------------------------------------------------ declarations
  collectDeclarations(): void {
    for (const s of this.program.statements) {
      if (s.kind === 'model') this.declare(s.name, 'model');
      else if (s.kind === 'attack') {
        if (this.declare(s.name, 'attack')) this.attackStmts.set(s.name.name, s);
      } else if (s.kind === 'smooth') this.declare(s.name, 'smooth');
      else if (s.kind === 'ensemble' && s.name) this.declare(s.name, 'ensemble');
    }
  }

  private declare(name: A.Name, kind: DeclKind): boolean {
    const prev = this.decls.get(name.name);
    if (prev) {
      this.diags.push(diag('E030', `'${name.name}' is already declared`, name.loc, { note: `first declared at line ${prev.loc.line}` }));
      return false;
    }
    if (kind === 'attack' && ATTACKS[name.name]) {
      this.diags.push(
        diag('E031', `'${name.name}' is a builtin attack and cannot be redefined`, name.loc, { suggestion: `a new name such as '${name.name}2'` }),
      );
      return false;
    }
    if (/\.[0-9]+$/.test(name.name)) {
      this.diags.push(diag('E032', `'${name.name}' cannot be declared: NAME.N names family members`, name.loc));
      return false;
    }
    this.decls.set(name.name, { kind, loc: name.loc });
    return true;
  }

  /** Declares an unnamed TREND ensemble under its default name; false (and an error) when taken. */
  declareDefaultName(name: string, loc: A.Loc): boolean {
    if (this.decls.has(name)) {
      this.diags.push(diag('E073', `the default name '${name}' is taken; name this ensemble: ensemble NAME = trend ...`, loc));
      return false;
    }
    this.decls.set(name, { kind: 'ensemble', loc });
    return true;
  }

  /** Members of a declaration with swept parameters (a family NAME.1..NAME.n), or the one name. */
  declareFamily(name: A.Name, swept: Record<string, PVal[]>, kind: DeclKind, memberKind: DeclKind): Array<{ name: string; combo: Params; family?: string }> {
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

  // ------------------------------------------------------------------ attacks
  /** Resolves an attack written as `name param=...` plus statement-level `with` params. */
  resolveAttack(spec: { name: A.Name; params: A.Param[]; loc: A.Loc }, withParams: A.Param[] = []): AttackUse[] {
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
          this.diags.push(
            diag('E023', `eps=${params.eps.pretty()} is out of range for l_inf`, own.locs.eps ?? shared.locs.eps ?? spec.loc, {
              expected: 'a number in (0, 1]',
            }),
          );
          break;
        }
        const topkLoc = own.locs.topk ?? shared.locs.topk;
        if (b.attack === 'pgd' && params.norm !== 'l1' && topkLoc && !this.diags.some((d) => d.loc === topkLoc)) {
          this.diags.push(
            diag('W001', `'topk' applies only to norm=l1; it is ignored for norm=${String(params.norm)}`, topkLoc, {
              note: 'it shapes l_1 steps (the fraction of coordinates moved)',
            }),
          );
        }
        out.push({ attack: b.attack, params, label: spec.name.name, sweep: { ...b.sweep, ...combo }, loc: spec.loc });
      }
    }
    return out;
  }

  /** The builtin, alias or defined attack a name refers to (resolving definitions recursively). */
  attackBase(name: A.Name): AttackUse[] | undefined {
    const n = name.name;
    if (ATTACKS[n]) return [{ attack: n, params: {}, label: n, sweep: {}, loc: name.loc }];
    const def = this.attackStmts.get(n);
    if (def) return this.definedAttack(n, def, name.loc);
    if ((ATTACK_ALIASES as readonly string[]).includes(n)) {
      const budgets = (DATASETS[this.built.dataset.name] ?? DATASETS.mnist!).budgets;
      const eps = budgets[n as 'linf' | 'l2' | 'l1'];
      const params = { norm: n, eps, steps: ALIAS_STEPS, step: eps.mul(Rational.of(5, 2)).div(Rational.of(ALIAS_STEPS)) };
      return [{ attack: 'pgd', params, label: n, sweep: {}, loc: name.loc }];
    }
    const known = [...Object.keys(ATTACKS), ...ATTACK_ALIASES, ...this.attackStmts.keys()];
    const decl = this.decls.get(n);
    this.diags.push(
      diag(decl ? 'E037' : 'E033', decl ? `'${n}' is a ${decl.kind}, not an attack` : `unknown attack '${n}'`, name.loc, {
        expected: oneOf(known),
        ...suggest(n, known),
      }),
    );
    return undefined;
  }

  private definedAttack(n: string, def: A.AttackStmt, loc: A.Loc): AttackUse[] | undefined {
    if (this.attackCache.has(n)) return this.attackCache.get(n) ?? undefined;
    if (this.resolving.has(n)) {
      this.diags.push(diag('E034', `attack '${n}' is defined in terms of itself`, loc, { note: `cycle through: ${[...this.resolving, n].join(' -> ')}` }));
      return undefined;
    }
    this.resolving.add(n);
    const uses = this.resolveAttack(def.spec);
    this.resolving.delete(n);
    const res = uses.length ? uses.map((u) => ({ ...u, label: n })) : null;
    this.attackCache.set(n, res);
    return res ?? undefined;
  }

  /** One attack named in a parameter (`attack=linf`); a sweep is an error here. */
  attackRef(raw: Raw): AttackUse | undefined {
    if (raw.value.kind !== 'ident') return undefined;
    const uses = this.resolveAttack({ name: { name: raw.value.name, loc: raw.loc }, params: [], loc: raw.loc });
    if (uses.length > 1) {
      this.diags.push(diag('E027', `attack '${raw.value.name}' is a sweep (${uses.length} attacks); a single attack is needed here`, raw.loc));
      return undefined;
    }
    return uses[0];
  }

  // ------------------------------------------------------------------ selections
  private classifierNames(): Array<{ name: string; kind: ClassifierKind }> {
    return [
      ...this.built.models.map((m) => ({ name: m.name, kind: 'model' as const })),
      ...this.built.ensembles.map((e) => ({ name: e.name, kind: 'ensemble' as const })),
      ...this.built.smooths.map((s) => ({ name: s.name, kind: 'smooth' as const })),
    ];
  }

  /** The classifier names a selection denotes, families expanded, in order and without repeats. */
  resolveSelection(sel: A.Selection, allowed: readonly ClassifierKind[], role: string): string[] {
    const out: string[] = [];
    const add = (n: string) => {
      if (!out.includes(n)) out.push(n);
    };
    for (const it of sel.items) {
      if (it.kind === 'glob') this.matchGlob(it, allowed).forEach(add);
      else this.lookupClassifier(it, allowed, role)?.forEach(add);
    }
    return out;
  }

  private matchGlob(it: { pattern: string; loc: A.Loc }, allowed: readonly ClassifierKind[]): string[] {
    const all = this.classifierNames();
    const re = globToRegExp(it.pattern);
    const pool = it.pattern === '*' ? all.filter((c) => c.kind === 'model') : all.filter((c) => allowed.includes(c.kind));
    const hits = pool.filter((c) => re.test(c.name) || (c.name.includes('.') && re.test(c.name.split('.')[0]!)));
    if (hits.length === 0) {
      this.diags.push(
        diag('E036', it.pattern === '*' ? `'*' selects nothing: the pipeline declares no models` : `'${it.pattern}' selects nothing`, it.loc, {
          expected: pool.length ? `a pattern matching some of: ${pool.map((c) => c.name).join(', ')}` : 'a model declaration first',
        }),
      );
    }
    return hits.map((h) => h.name);
  }

  private lookupClassifier(it: { name: string; loc: A.Loc }, allowed: readonly ClassifierKind[], role: string): string[] | undefined {
    const d = this.decls.get(it.name);
    const kind = d?.kind === 'family' ? 'model' : d?.kind === 'smoothfamily' ? 'smooth' : d?.kind;
    if (!d || kind === 'attack') {
      const names = this.classifierNames()
        .map((c) => c.name)
        .concat(Object.keys(this.families));
      this.diags.push(
        diag(d ? 'E037' : 'E035', d ? `'${it.name}' is an attack, not a classifier` : `unknown name '${it.name}'`, it.loc, { ...suggest(it.name, names) }),
      );
      return undefined;
    }
    if (!allowed.includes(kind as ClassifierKind)) {
      this.diags.push(
        diag(
          'E037',
          `'${it.name}' is ${kind === 'ensemble' ? 'an ensemble' : 'a smoothed classifier'}; ${role} must be ${allowed.map((k) => k + 's').join(' or ')}`,
          it.loc,
        ),
      );
      return undefined;
    }
    return this.families[it.name] ?? [it.name];
  }

  // ------------------------------------------------------------------ model references
  /** Checks every `from NAME` against the models, and breaks fine-tuning cycles. */
  linkFromReferences(models: CModel[]): void {
    const byName = new Map(models.map((m) => [m.name, m]));
    for (const m of models) {
      if (!m.from) continue;
      const d = this.decls.get(m.from);
      if (!d || (d.kind !== 'model' && d.kind !== 'family')) {
        this.diags.push(
          diag(d ? 'E037' : 'E038', d ? `'${m.from}' is a ${d.kind}; 'from' needs a model` : `unknown model '${m.from}'`, m.loc, {
            ...suggest(m.from, [...byName.keys()]),
          }),
        );
        delete m.from;
      } else if (d.kind === 'family') {
        this.diags.push(diag('E039', `'${m.from}' is a family of models; 'from' needs one model`, m.loc, { suggestion: `'${this.families[m.from]![0]}'` }));
        delete m.from;
      }
    }
    this.breakFineTuneCycles(models, byName);
  }

  private breakFineTuneCycles(models: CModel[], byName: Map<string, CModel>): void {
    const state = new Map<string, 1 | 2>();
    const visit = (name: string, path: string[]): void => {
      const st = state.get(name);
      if (st === 2) return;
      if (st === 1) {
        const m = byName.get(name)!;
        this.diags.push(
          diag('E040', `model '${name}' is fine-tuned from itself`, m.loc, { note: `cycle: ${[...path.slice(path.indexOf(name)), name].join(' -> ')}` }),
        );
        return;
      }
      state.set(name, 1);
      const f = byName.get(name)?.from;
      if (f) visit(f, [...path, name]);
      state.set(name, 2);
    };
    for (const m of models) visit(m.name, []);
    // Break cycles so later stages never loop.
    for (const m of models) if (m.from && state.get(m.from) !== 2) delete m.from;
  }

  /** The base of `smooth NAME = BASE`: a model or an ensemble (not a family); false after an error. */
  linkSmoothBase(base: A.Name): boolean {
    const d = this.decls.get(base.name);
    if (d && (d.kind === 'model' || d.kind === 'ensemble')) return true;
    const msg =
      d?.kind === 'family'
        ? `'${base.name}' is a family; smooth one model`
        : d
          ? `'${base.name}' is a ${d.kind}; smoothing needs a model or an ensemble`
          : `unknown model '${base.name}'`;
    const code = d?.kind === 'family' ? 'E039' : d ? 'E037' : 'E038';
    this.diags.push(
      diag(code, msg, base.loc, {
        ...suggest(
          base.name,
          this.built.models.map((m) => m.name),
        ),
      }),
    );
    return false;
  }
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
