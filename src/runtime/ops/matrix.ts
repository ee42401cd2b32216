/**
 * The `matrix` operation: the transfer statement's results as matrices, rows targets and columns
 * sources (the artifact's order is canonical; reports reorder by declaration). Row and column
 * averages leave out a classifier's transfer to itself. Seed families get mean and sd over their
 * member pairs (self pairs excluded). Sweeps over eps get the appendix-V fits.
 */
import { ratio, summaryAs, type MatrixAttackSummary, type MatrixSummary } from '../../compiler/contract.js';
import { fitTmVersusEps } from '../analysis/fit.js';
import type { OpContext, OpResult } from '../executor/types.js';
import { list } from './common.js';

const avg = (xs: number[]) => (xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : null);
const sd = (xs: number[]) => {
  const m = avg(xs);
  return m === null || xs.length < 2 ? null : Math.sqrt(xs.reduce((s, v) => s + (v - m) ** 2, 0) / (xs.length - 1));
};

export async function matrixOp(ctx: OpContext<'matrix'>): Promise<OpResult<'matrix'>> {
  const p = ctx.params;
  const cells = list(ctx.inputs.cells).map((a) => summaryAs('transfer', a.summary));
  const S = p.sources;
  const T = p.targets;
  const self = new Set((p.self ?? []).map(([r, c]) => `${r},${c}`));
  const attacks = p.attacks.map((a, ai): MatrixAttackSummary => {
    const at = (t: number, s: number) => cells[ai * S * T + t * S + s]!;
    const tm = Array.from({ length: T }, (_, t) => Array.from({ length: S }, (_, s) => at(t, s).tm));
    const offDiag = (t: number, s: number) => !self.has(`${t},${s}`);
    const rowAvg = tm.map((row, t) => avg(row.filter((v, s): v is number => v !== null && offDiag(t, s))));
    const colAvg = Array.from({ length: S }, (_, s) =>
      avg(tm.map((row) => row[s]).filter((v, t): v is number => v !== null && v !== undefined && offDiag(t, s))),
    );
    const families = p.targetFamilies.flatMap((tf, ti) =>
      p.sourceFamilies.map((sf, si) => {
        const vals: number[] = [];
        for (const t of tf) for (const s of sf) if (offDiag(t, s) && tm[t]![s] !== null) vals.push(tm[t]![s]!);
        const tr = tf.flatMap((t) => sf.filter((s) => offDiag(t, s)).map((s) => at(t, s).transferred));
        const gen = tf.flatMap((t) => sf.filter((s) => offDiag(t, s)).map((s) => at(t, s).generated));
        return {
          targetFamily: ti,
          sourceFamily: si,
          tmMean: avg(vals),
          tmSd: sd(vals),
          transferredMean: avg(tr),
          transferredSd: sd(tr),
          generatedMean: avg(gen),
          generatedSd: sd(gen),
          pairs: vals.length,
        };
      }),
    );
    return {
      sweep: a.sweep,
      tm,
      generated: tm.map((_, t) => Array.from({ length: S }, (_, s) => at(t, s).generated)),
      eligible: tm.map((_, t) => Array.from({ length: S }, (_, s) => at(t, s).eligible)),
      transferred: tm.map((_, t) => Array.from({ length: S }, (_, s) => at(t, s).transferred)),
      rowAvg,
      colAvg,
      families,
    };
  });
  // Appendix V: when the attacks differ only in eps, fit TM against eps per (target, source).
  const eps = p.attacks.map((a) => a.sweep.eps);
  let fits: MatrixSummary['fits'] = null;
  if (p.attacks.length >= 3 && eps.every((e) => e !== undefined) && p.attacks.every((a) => Object.keys(a.sweep).length === 1)) {
    const e = eps.map((v) => ratio(v!));
    fits = Array.from({ length: T }, (_, t) =>
      Array.from({ length: S }, (_, s) => {
        const f = fitTmVersusEps(
          e,
          attacks.map((a) => a.transferred[t]![s]!),
          attacks.map((a) => a.generated[t]![s]!),
          attacks.map((a) => a.tm[t]![s]!),
        );
        return { transferred: f.transferred, generated: f.generated, rmse: f.rmse };
      }),
    );
  }
  return { artifact: { summary: { sources: S, targets: T, attacks, fits }, tensors: {} } };
}
