/** Builds the checked program's dataset, smoothed classifiers and experiments (models and ensembles: build-*.ts). */
import type * as A from '../ast.js';
import type { AttackUse, CDataset, CEvaluate, CSmooth, CTransfer } from '../checked.js';
import type { Diagnostic } from '../diagnostics.js';
import { validateParams, withDefaults } from '../params.js';
import { Rational } from '../rational.js';
import { DATASET_PARAMS, SMOOTH_PARAMS } from '../schema.js';
import type { BuildContext } from './build-model.js';
import type { Facts } from './checks/index.js';

/** The dataset statement, or MNIST with the default split when there is none. */
export function buildDataset(diags: Diagnostic[], s: A.DatasetStmt | undefined): { dataset: CDataset; facts?: Facts['dataset'] } {
  if (!s) return { dataset: { name: 'mnist', val: Rational.of(1, 10), seed: 0 } };
  const v = validateParams(s.params, DATASET_PARAMS, `dataset ${s.name.name}`, diags);
  const p = withDefaults(v.fixed, DATASET_PARAMS);
  const dataset: CDataset = {
    name: s.name.name,
    loc: s.loc,
    ...(typeof p.train === 'number' ? { train: p.train } : {}),
    ...(typeof p.test === 'number' ? { test: p.test } : {}),
    val: p.val as Rational,
    seed: p.seed as number,
    ...(typeof p.path === 'string' ? { path: p.path } : {}),
  };
  return { dataset, facts: { stmt: s, p, v } };
}

/** A smoothed classifier (a family when sd= or m= is swept); undefined when its base does not resolve. */
export function buildSmooth(ctx: BuildContext, s: A.SmoothStmt): Facts['smooth'] | undefined {
  const v = validateParams(s.params, SMOOTH_PARAMS, `smooth ${s.name.name}`, ctx.diags);
  const p = withDefaults(v.fixed, SMOOTH_PARAMS, new Set(Object.keys(v.swept)));
  if (!ctx.linker.linkSmoothBase(s.base)) return undefined;
  for (const { name, combo, family } of ctx.linker.declareFamily(s.name, v.swept, 'smoothfamily', 'smooth')) {
    const q = { ...p, ...combo };
    ctx.built.smooths.push({
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
  return { stmt: s, v, p };
}

export function buildTransfer(ctx: BuildContext, s: A.TransferStmt): { transfer: CTransfer; facts: Facts['transfer'] } {
  const attacks = distinguish(s.attacks.flatMap((a) => ctx.linker.resolveAttack(a, s.with)));
  const sources = ctx.linker.resolveSelection(s.sources, ['model'], 'transfer sources');
  const targets = ctx.linker.resolveSelection(s.targets, ['model', 'ensemble', 'smooth'], 'transfer targets');
  return { transfer: { index: s.index, loc: s.loc, attacks, sources, targets }, facts: { stmt: s, attacks } };
}

export function buildEvaluate(ctx: BuildContext, s: A.EvaluateStmt): { evaluate: CEvaluate; facts: Facts['evaluate'] } {
  const attacks = distinguish(s.attacks.flatMap((a) => ctx.linker.resolveAttack(a, s.with)));
  const targets = ctx.linker.resolveSelection(s.targets, ['model', 'ensemble', 'smooth'], 'evaluation targets');
  const { ensembles, smooths } = ctx.built;
  const kindOf = (n: string) =>
    (ensembles.some((e) => e.name === n) ? 'ensemble' : smooths.some((m) => m.name === n) ? 'smooth' : 'model') as 'model' | 'ensemble' | 'smooth';
  return { evaluate: { index: s.index, loc: s.loc, targets, attacks, union: s.union }, facts: { stmt: s, attacks, targets, kindOf } };
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
    const distinct = differing.filter((k) => !(k in u.sweep));
    return { ...u, sweep: { ...u.sweep, ...Object.fromEntries(differing.map((k) => [k, u.params[k]!])) }, ...(distinct.length ? { distinct } : {}) };
  });
}
