/**
 * What each validation check sees: a statement together with what the builder made of it
 * (validated parameters with defaults, resolved attacks and selections).
 */
import type * as A from '../../ast.js';
import type { AttackUse, ClassifierKind, InputQuant, Params } from '../../checked.js';
import type { Diagnostic } from '../../diagnostics.js';
import type { Validated } from '../../params.js';
import type { MethodName } from '../../schema.js';
import type { Accept } from '../context.js';

/** The `train` statement's settings, which models inherit. */
export interface TrainDefaults {
  method: MethodName;
  v: Validated;
}

export interface Facts {
  dataset: { stmt: A.DatasetStmt; p: Params; v: Validated };
  backend: { stmt: A.BackendStmt };
  train: { stmt: A.TrainStmt; v: Validated };
  model: { stmt: A.ModelStmt; v: Validated; p: Params; method: MethodName; defaults: TrainDefaults; input?: InputQuant };
  smooth: { stmt: A.SmoothStmt; v: Validated; p: Params };
  /** A listed ensemble (`ensemble e = a, b, c`); `reported` is every diagnostic so far. */
  ensemble: { stmt: A.EnsembleStmt; v: Validated; members: string[]; reported: readonly Diagnostic[] };
  transfer: { stmt: A.TransferStmt; attacks: AttackUse[] };
  evaluate: { stmt: A.EvaluateStmt; attacks: AttackUse[]; targets: string[]; kindOf: (name: string) => ClassifierKind };
}

export type Check<K extends keyof Facts> = (facts: Facts[K], accept: Accept) => void;

/** Checks registered per statement kind, as Langium's `ValidationChecks<T>`. */
export type ValidationChecks = { [K in keyof Facts]?: Array<Check<K>> };
