/**
 * Semantic checks, in Langium's shape: the linker collects declarations and resolves references
 * (linker.ts); the builder makes the checked program statement by statement (builder.ts,
 * build-model.ts, build-ensemble.ts); after each statement, the validation checks registered for
 * its kind run (checks/). Every independent error is reported, each with a code (codes.ts).
 */
import type * as A from '../ast.js';
import type { CEvaluate, CheckedProgram, CTransfer } from '../checked.js';
import type { Diagnostic } from '../diagnostics.js';
import { validateParams } from '../params.js';
import { BACKENDS, REPORT_PARAMS } from '../schema.js';
import { buildEnsemble, buildTrend, type PendingTrend } from './build-ensemble.js';
import { buildModel, buildTrainDefaults, type BuildContext } from './build-model.js';
import { buildDataset, buildEvaluate, buildSmooth, buildTransfer } from './builder.js';
import { runChecks } from './checks/index.js';
import type { Built } from './context.js';
import { Linker, singletons } from './linker.js';

export { distinguish } from './builder.js';
export { ATTACK_ALIASES } from '../schema.js';

export interface CheckResult {
  checked?: CheckedProgram;
  diagnostics: Diagnostic[];
}

export function check(program: A.Program): CheckResult {
  const diags: Diagnostic[] = [];
  const accept = (d: Diagnostic) => void diags.push(d);
  const st = program.statements;
  const once = singletons(program, diags);
  const ds = buildDataset(diags, once.dataset);
  const built: Built = { dataset: ds.dataset, models: [], ensembles: [], smooths: [] };
  const linker = new Linker(program, diags, built);
  const ctx: BuildContext = { linker, diags, built };
  linker.collectDeclarations();
  if (ds.facts) runChecks('dataset', ds.facts, accept);
  if (once.backend) runChecks('backend', { stmt: once.backend }, accept);
  const backend = once.backend && (BACKENDS as readonly string[]).includes(once.backend.name.name) ? once.backend.name.name : undefined;
  const title = once.report ? validateParams(once.report.params, REPORT_PARAMS, 'report', diags).fixed.title : undefined;

  const train = buildTrainDefaults(ctx, once.train);
  if (train.facts) runChecks('train', train.facts, accept);
  for (const s of st) if (s.kind === 'model') runChecks('model', buildModel(ctx, s, train.defaults), accept);
  linker.linkFromReferences(built.models);
  for (const s of st) {
    if (s.kind !== 'smooth') continue;
    const facts = buildSmooth(ctx, s);
    if (facts) runChecks('smooth', facts, accept);
  }
  const pendingTrend: PendingTrend[] = [];
  for (const s of st) {
    if (s.kind !== 'ensemble') continue;
    const facts = buildEnsemble(ctx, s, pendingTrend);
    if (facts) runChecks('ensemble', facts, accept);
  }
  const transfers: CTransfer[] = [];
  for (const s of st) {
    if (s.kind !== 'transfer') continue;
    const t = buildTransfer(ctx, s);
    runChecks('transfer', t.facts, accept);
    transfers.push(t.transfer);
  }
  const evaluates: CEvaluate[] = [];
  for (const s of st) {
    if (s.kind !== 'evaluate') continue;
    const e = buildEvaluate(ctx, s);
    runChecks('evaluate', e.facts, accept);
    evaluates.push(e.evaluate);
  }
  for (const p of pendingTrend) buildTrend(ctx, p, transfers);

  if (diags.some((d) => d.severity === 'error')) return { diagnostics: diags };
  return {
    diagnostics: diags,
    checked: {
      file: program.file,
      dataset: built.dataset,
      ...(backend ? { backend } : {}),
      ...(typeof title === 'string' ? { title } : {}),
      models: built.models,
      ensembles: built.ensembles,
      smooths: built.smooths,
      transfers,
      evaluates,
      families: linker.families,
    },
  };
}
