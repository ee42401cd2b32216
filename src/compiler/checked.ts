/**
 * The checked program: names resolved, defaults filled in, families and sweeps expanded.
 * Everything here is plain data (Rationals for exact numbers) so it can be hashed canonically.
 */
import type { Loc } from './ast.js';
import type { Rational } from './rational.js';
import type { MethodName } from './schema.js';

export type PVal = Rational | string | boolean | number;
export type Params = Record<string, PVal>;

/** One concrete attack: a builtin attack with every parameter set. */
export interface AttackUse {
  /** Builtin attack name: pgd, fgsm, cw, deepfool, epgd, dag, agd, ugd, empir. */
  attack: string;
  params: Params;
  /** How the user wrote it (a defined name like `linf`, or the builtin). */
  label: string;
  /** The values of swept parameters for this instance (empty when nothing is swept). */
  sweep: Params;
  /**
   * Keys of `sweep` that only tell apart attacks of one statement written separately under the
   * same name (`autoattack norm=linf eps=0.3, autoattack norm=l1 eps=10`): labels, not a sweep.
   */
  distinct?: string[];
  loc: Loc;
}

export interface InputQuant {
  kind: 'bits' | 'halftone';
  bits?: number;
  /** Min/max over the batch (authors) or per image. */
  stats: 'batch' | 'image';
  bpda: 'sigmoid' | 'identity';
}

export interface NoiseSpec {
  /** A fixed sd, or learned (PNI) with this initial scale. */
  learned: boolean;
  sd: Rational;
}

export interface TrainSettings {
  epochs: number;
  batch: number;
  lr: Rational;
  momentum: Rational;
  wd: Rational;
  optimizer: 'sgd' | 'adam';
  seed: number;
  schedule: 'step' | 'constant';
}

export type Method =
  | { name: 'standard' }
  | { name: 'adversarial'; attack: AttackUse; mix: Rational }
  | { name: 'avg' | 'max' | 'eat'; attacks: AttackUse[] }
  | { name: 'ramp'; pair: [AttackUse, AttackUse]; lambda: Rational; beta: Rational; gp: boolean };

export interface CModel {
  name: string;
  family?: string;
  loc: Loc;
  arch: string;
  width: Rational;
  input?: InputQuant;
  weightBits?: number;
  activationBits?: number;
  noise: { input?: NoiseSpec; weight?: NoiseSpec; activation?: NoiseSpec };
  train: TrainSettings;
  method: Method & { name: MethodName };
  /** Fine-tune from this model's trained weights. */
  from?: string;
  /**
   * Imported weights (`weights="..."`): the file, resolved relative to the .trend file, and where
   * the clause was written. Such a model is not trained; its `train` settings are unused.
   */
  weights?: { path: string; written: string; loc: Loc };
}

export interface CEnsemble {
  name: string;
  loc: Loc;
  vote: 'majority';
  seed: number;
  members?: string[];
  trend?: {
    k: number;
    objective: 'sum' | 'max';
    candidates: string[];
    /** Index into CheckedProgram.transfers and the attack within it whose TM matrix is used. */
    transfer: number;
    attack: AttackUse;
  };
}

export interface CSmooth {
  name: string;
  family?: string;
  loc: Loc;
  base: string;
  sd: Rational;
  m: number;
  vote: 'prediction' | 'soft' | 'weighted';
  average: 'probs' | 'logits';
  seed: number;
  batch: number;
  /** Swept parameter values of this member. */
  sweep: Params;
}

export interface CDataset {
  name: string;
  loc?: Loc;
  train?: number;
  test?: number;
  val: Rational;
  seed: number;
  path?: string;
}

export interface CTransfer {
  index: number;
  loc: Loc;
  attacks: AttackUse[];
  sources: string[];
  targets: string[];
}

export interface CEvaluate {
  index: number;
  loc: Loc;
  targets: string[];
  attacks: AttackUse[];
  union: boolean;
}

export type ClassifierKind = 'model' | 'ensemble' | 'smooth';

export interface CheckedProgram {
  file: string;
  dataset: CDataset;
  backend?: string;
  title?: string;
  models: CModel[];
  ensembles: CEnsemble[];
  smooths: CSmooth[];
  transfers: CTransfer[];
  evaluates: CEvaluate[];
  /** Family name -> member names, for models and smoothed classifiers. */
  families: Record<string, string[]>;
}
