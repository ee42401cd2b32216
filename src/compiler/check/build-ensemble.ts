/** Builds ensembles: listed members, or TREND's choice from a transfer statement's matrix. */
import type * as A from '../ast.js';
import type { AttackUse, CEnsemble, CTransfer, Params } from '../checked.js';
import { diag } from '../diagnostics.js';
import { validateParams, withDefaults } from '../params.js';
import { Rational } from '../rational.js';
import { ATTACKS, ENSEMBLE_PARAMS } from '../schema.js';
import type { BuildContext } from './build-model.js';
import type { Facts } from './checks/index.js';

export interface PendingTrend {
  stmt: A.EnsembleStmt;
  ens: CEnsemble;
}

/** Builds one ensemble statement; a TREND ensemble is completed later (it needs the transfers). */
export function buildEnsemble(ctx: BuildContext, s: A.EnsembleStmt, pending: PendingTrend[]): Facts['ensemble'] | undefined {
  const v = validateParams(s.params, ENSEMBLE_PARAMS, 'ensemble', ctx.diags);
  const p = withDefaults(v.fixed, ENSEMBLE_PARAMS);
  if (s.trend) {
    const name = s.name?.name ?? `trend_k${p.k}`;
    if (!s.name) ctx.linker.declareDefaultName(name, s.loc);
    const ens: CEnsemble = { name, loc: s.loc, vote: 'majority', seed: p.seed as number };
    ctx.built.ensembles.push(ens);
    pending.push({ stmt: s, ens });
    return undefined;
  }
  if (!s.name) {
    ctx.diags.push(diag('E070', 'an ensemble of listed members needs a name', s.loc, { expected: 'ensemble NAME = a, b, c' }));
    return undefined;
  }
  const members = ctx.linker.resolveSelection(s.members!, ['model'], 'ensemble members');
  ctx.built.ensembles.push({ name: s.name.name, loc: s.loc, vote: 'majority', seed: p.seed as number, members });
  return { stmt: s, v, members, reported: ctx.diags };
}

/** The transfer statement and attack whose matrix a TREND ensemble chooses from, or undefined after an error. */
function chooseTransfer(ctx: BuildContext, s: A.EnsembleStmt, transfers: CTransfer[]): { transfer: CTransfer; attack: AttackUse } | undefined {
  const using = s.trend!.using;
  let given: Params | undefined;
  if (using) {
    const base = ctx.linker.attackBase(using.name);
    if (!base) return undefined;
    given = validateParams(using.params, ATTACKS[base[0]!.attack]!.params, `attack ${base[0]!.attack}`, ctx.diags).fixed;
  }
  // Without `using`, the transfer statement that measures the most models in both directions
  // is used (independent of statement order); a tie must be broken by `using`.
  const modelNames = new Set(ctx.built.models.map((m) => m.name));
  const coverage = (t: CTransfer) => t.sources.filter((n) => t.targets.includes(n) && modelNames.has(n)).length;
  const matching = transfers.flatMap((t) => t.attacks.filter((a) => !using || sameAttack(using.name.name, given!, a)).map((a) => ({ t, a })));
  // Candidates named in `from` narrow the choice to the transfers that measure them all.
  const named = (s.trend!.from?.items ?? []).flatMap((it) => (it.kind === 'name' ? [it.name] : []));
  const covers = (t: CTransfer) => named.every((n) => t.sources.includes(n) && t.targets.includes(n));
  const narrowed = named.length && matching.some((m) => covers(m.t)) ? matching.filter((m) => covers(m.t)) : matching;
  const best = Math.max(0, ...narrowed.map((m) => coverage(m.t)));
  const top = narrowed.filter((m) => coverage(m.t) === best);
  if (top.length > 1 && new Set(top.map((m) => m.t.index)).size > 1) {
    const lines = [...new Set(top.map((m) => m.t.loc.line))].join(' and ');
    // A `using` that already names the attack cannot break the tie: the models must.
    const label = top.find((m) => m.a.label !== using?.name.name)?.a.label;
    ctx.diags.push(
      diag(
        'E074',
        `several transfers could choose this ensemble (lines ${lines}); say which with 'using'${using ? " or name its models with 'from'" : ''}`,
        s.trend!.loc,
        {
          expected: label ? `e.g. using ${label}` : 'e.g. from a, b, c (models one of those transfers measures)',
        },
      ),
    );
    return undefined;
  }
  if (!top[0]) {
    const msg = using ? `no transfer statement uses the attack given in 'using'` : `'ensemble trend' needs a transfer statement to choose from`;
    ctx.diags.push(diag('E075', msg, s.trend!.using?.loc ?? s.trend!.loc, { expected: 'e.g. transfer pgd eps=8/255 from * to *' }));
    return undefined;
  }
  const transfer = transfers.find((t) => t.index === top[0]!.t.index)!;
  if (!using && transfer.attacks.length > 1) {
    ctx.diags.push(
      diag(
        'E074',
        `the transfer at line ${transfer.loc.line} has ${transfer.attacks.length} attacks; say which one: using ${transfer.attacks[0]!.label}`,
        s.trend!.loc,
      ),
    );
    return undefined;
  }
  return { transfer, attack: top[0].a };
}

/** Completes a TREND ensemble: its candidates, k and the matrix it chooses from. */
export function buildTrend(ctx: BuildContext, { stmt: s, ens }: PendingTrend, transfers: CTransfer[]): void {
  const v = validateParams(s.params, ENSEMBLE_PARAMS, 'ensemble trend', []);
  const p = withDefaults(v.fixed, ENSEMBLE_PARAMS);
  const k = p.k as number;
  const chosen = chooseTransfer(ctx, s, transfers);
  if (!chosen) return;
  const { transfer } = chosen;
  const modelSet = new Set(ctx.built.models.map((m) => m.name));
  let candidates = s.trend!.from
    ? ctx.linker.resolveSelection(s.trend!.from, ['model'], 'TREND candidates')
    : transfer.sources.filter((n) => transfer.targets.includes(n) && modelSet.has(n));
  candidates = candidates.filter((c) => modelSet.has(c));
  const missing = candidates.filter((c) => !transfer.sources.includes(c) || !transfer.targets.includes(c));
  if (missing.length) {
    ctx.diags.push(
      diag(
        'E076',
        `the transfer at line ${transfer.loc.line} does not measure ${missing.join(', ')} as both source and target`,
        s.trend!.from?.loc ?? s.trend!.loc,
        {
          expected: 'candidates that the transfer covers in both directions',
        },
      ),
    );
    return;
  }
  if (transfer.targets.includes(ens.name)) {
    ctx.diags.push(diag('E077', `cycle: '${ens.name}' is chosen from the transfer at line ${transfer.loc.line}, which also targets it`, s.loc));
    return;
  }
  if (k < 2 || k > candidates.length) {
    ctx.diags.push(
      diag('E078', `k=${k} but ${candidates.length} model${candidates.length === 1 ? ' is' : 's are'} available to choose from`, v.locs.k ?? s.trend!.loc, {
        expected: candidates.length >= 2 ? `k between 2 and ${candidates.length}` : 'at least two candidate models in the transfer',
      }),
    );
    return;
  }
  ens.trend = { k, objective: p.objective as 'sum' | 'max', candidates, transfer: transfer.index, attack: chosen.attack };
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
