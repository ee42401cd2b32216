/**
 * The operation contract: for each operation a DAG node can name, ONE type for its parameters
 * (what src/compiler/dag.ts puts into the node, and so into its key) and ONE for its summary (what
 * the runtime's operation writes into the artifact, and what diffs and reports read back).
 * The DAG builder, the operations, the report and the run comparison all use these types, so a
 * parameter the builder leaves out and an operation reads (or a summary field a report reads and
 * no operation writes) is a compile error.
 *
 * Plain types only: this module imports nothing, so every layer can depend on it.
 *
 * Exact numbers are written `X`: the compiler's exact `Rational` in the DAG (`OpParams<K,
 * Rational>`), their canonical "a/b" strings in the JSON form an operation receives
 * (`OpParams<K>`; see jsonSafe in src/compiler/jsonsafe.ts).
 */

/** A parameter value of an attack or a sweep: an exact number, a word, a flag or a count. */
export type PVal<X = string> = X | string | boolean | number;

/** An attack as a key holds it: the builtin attack and only the parameters it reads. */
export interface AttackParams<X = string> {
  attack: string;
  params: Record<string, PVal<X>>;
  /** The attack's code version (ops.ts ATTACK_VERSIONS) where above 1; absent: 1. */
  version?: number;
}

/**
 * A classifier as the runtime builds it, without display names (so renaming a model changes no
 * key). Models listed as inputs are consumed in order: a model takes one, an ensemble takes all
 * of them as members (or, with `select`, as candidates of which the select artifact picks k).
 * `seed` of an ensemble draws its tie-breaks, of a smoothed classifier its noise (0: the
 * operation's own streams).
 */
export type ClassSpec<X = string> =
  | { kind: 'model' }
  | { kind: 'ensemble'; vote: 'majority'; seed: number; select: boolean; /** Not read (the inputs say it); keys no longer hold it. */ n?: number }
  | {
      kind: 'smooth';
      sd: X;
      m: number;
      vote: 'prediction' | 'soft' | 'weighted';
      /** Soft vote only. */
      average?: 'probs' | 'logits';
      seed: number;
      /** Images per inference batch; absent where the batches are the attack's (white-box evaluation). */
      batch?: number;
      base: ClassSpec<X>;
    };

export type Shape = [number, number, number];

// ---------------------------------------------------------------- parameters

export interface DatasetParams<X = string> {
  name: string;
  /** Training (and test) images to take; null: all. */
  train: number | null;
  test: number | null;
  /** Fraction of the training images held out for validation. */
  val: X;
  seed: number;
  shape: Shape;
  classes: number;
  /** The identity of the source files (their content, not their path). */
  identity: string;
}

/** K-bit input quantisation reads its statistics; halftone reads its BPDA stand-in. */
export type InputQuantParams = { kind: 'bits'; bits: number; stats: 'batch' | 'image' } | { kind: 'halftone'; bpda: 'sigmoid' | 'identity' };

export interface NoiseParams<X = string> {
  /** Learned (PNI) with this initial scale, or a fixed sd. */
  learned: boolean;
  sd: X;
}

export interface TrainSettingsParams<X = string> {
  epochs: number;
  batch: number;
  lr: X;
  /** SGD only (Adam reads neither, and its keys hold neither). */
  momentum?: X;
  wd?: X;
  optimizer: 'sgd' | 'adam';
  seed: number;
  schedule: 'step' | 'constant';
}

export type MethodParams<X = string> =
  | { name: 'standard' }
  | { name: 'adversarial'; attack: AttackParams<X>; mix: X }
  | { name: 'avg' | 'max' | 'eat'; attacks: AttackParams<X>[] }
  /** `beta` only with gradient projection (`gp`). */
  | { name: 'ramp'; pair: [AttackParams<X>, AttackParams<X>]; lambda: X; beta?: X; gp: boolean };

export interface TrainParams<X = string> {
  arch: string;
  width: X;
  input: InputQuantParams | null;
  weightBits: number | null;
  activationBits: number | null;
  noise: { input?: NoiseParams<X>; weight?: NoiseParams<X>; activation?: NoiseParams<X> };
  train: TrainSettingsParams<X>;
  method: MethodParams<X>;
  shape: Shape;
  classes: number;
}

/**
 * A model imported from a weights file (`weights=`), a `train` node that loads instead of training.
 * The key holds the file's content checksum (xxHash-128 of its bytes), never its path: a moved
 * file keeps the key, a changed one changes it. The node's `info.path` says where to read it.
 */
export interface ImportParams<X = string> extends Omit<TrainParams<X>, 'train' | 'method'> {
  weights: { checksum: string };
}

export interface PredictParams<X = string> {
  classifier: ClassSpec<X>;
}

export interface AdversarialParams<X = string> {
  attack: AttackParams<X>;
}

export interface TransferParams<X = string> {
  target: ClassSpec<X>;
}

export interface MatrixParams<X = string> {
  /** Per attack, the swept values: only the eps of an eps sweep (for the fits), else empty. */
  attacks: Array<{ sweep: Record<string, PVal<X>> }>;
  sources: number;
  targets: number;
  sourceFamilies: number[][];
  targetFamilies: number[][];
  /** Index pairs (row target, column source) that are the same classifier. */
  self?: Array<[number, number]>;
}

export interface SelectParams {
  k: number;
  objective: 'sum' | 'max';
  attackIndex: number;
  /** Each candidate's column (as a source) and row (as a target) in the matrix. */
  candidates: Array<{ col: number; row: number }>;
}

export interface RobustParams<X = string> {
  attack: AttackParams<X>;
  target: ClassSpec<X>;
  /** Ensembles only: also score and attack each member. */
  members?: boolean;
  /**
   * Smoothed targets only, for attacks that average over draws (EOT) or only query scores: each
   * forward pass of the attack sees the base with one fresh draw of the smoothing noise (the
   * randomized classifier the vote is taken over). Absent: the base without noise (plain PGD).
   */
  noisy?: boolean;
}

export type UnionParams = Record<string, never>;

// ---------------------------------------------------------------- summaries

export type Norms = {
  linf: number;
  l2: number;
  l1: number;
};

export type DatasetSummary = {
  name: string;
  shape: Shape;
  classes: number;
  train: number;
  val: number;
  test: number;
  /** Per-channel statistics of the training split. */
  mean: number[];
  std: number[];
  trainClassCounts: number[];
};

/** A model's spec as trained (numbers as floats), with the dataset's normalisation. */
export type ModelSpecSummary = {
  arch: string;
  width: number;
  shape: Shape;
  classes: number;
  input: { kind: 'bits'; bits: number; stats: 'batch' | 'image'; bpda?: string } | { kind: 'halftone'; bpda: 'sigmoid' | 'identity'; stats?: string } | null;
  weightBits: number | null;
  activationBits: number | null;
  noise: { input?: { learned: boolean; sd: number }; weight?: { learned: boolean; sd: number }; activation?: { learned: boolean; sd: number } };
  mean: number[];
  std: number[];
};

export type EpochSummary = { epoch: number; lr: number; loss: number; valAcc: number };

export type TrainSummary = {
  spec: ModelSpecSummary;
  method: string;
  /** Trainable parameters. */
  params: number;
  history: EpochSummary[];
  bestEpoch: number;
  valAccuracy: number;
  testAccuracy: number;
};

export type PredictSummary = {
  accuracy: number;
  correct: number;
  n: number;
  kind: ClassSpec['kind'];
  /** Ensembles (and smoothed ensembles): the candidates chosen by a selection, else null. */
  chosen?: number[] | null;
  /** Each member's clean accuracy. */
  members?: number[];
  smooth?: { sd: number; m: number; vote: string };
};

export type AdversarialSummary = {
  n: number;
  attack: string;
  sourceCleanAccuracy: number;
  /** Images the source classifies correctly and its attack fools. */
  generated: number;
  successRate: number;
  meanNorm: Norms;
};

/** TM = transferred / eligible (ALGORITHMS.md); null when no image is eligible. */
export type TransferSummary = {
  generated: number;
  eligible: number;
  transferred: number;
  tm: number | null;
};

export type FamilyStats = {
  targetFamily: number;
  sourceFamily: number;
  tmMean: number | null;
  tmSd: number | null;
  transferredMean: number | null;
  transferredSd: number | null;
  generatedMean: number | null;
  generatedSd: number | null;
  pairs: number;
};

/** One attack's matrices: rows targets, columns sources. */
export type MatrixAttackSummary = {
  sweep: Record<string, PVal>;
  tm: Array<Array<number | null>>;
  generated: number[][];
  eligible: number[][];
  transferred: number[][];
  rowAvg: Array<number | null>;
  colAvg: Array<number | null>;
  families: FamilyStats[];
};

/** a (1 - exp(-b x)), with the RMSE of the fit. */
export type SaturatingFit = { a: number; b: number; rmse: number };

export type TmFit = { transferred: SaturatingFit; generated: SaturatingFit; rmse: number };

export type MatrixSummary = {
  sources: number;
  targets: number;
  attacks: MatrixAttackSummary[];
  /** TM-versus-eps fits per (target, source), for eps sweeps of three or more; else null. */
  fits: TmFit[][] | null;
};

export type SelectSummary = {
  /** Indices into the candidates. */
  chosen: number[];
  objective: number;
  method: 'exact' | 'greedy';
  evaluated: number;
  /** Symmetric pairwise TM of the candidates. */
  pairs: number[][];
};

export type RobustSummary = {
  accuracy: number;
  n: number;
  attack: string;
  kind: ClassSpec['kind'];
  meanNorm: Norms;
  /** Ensembles with `members`: `input` is the member's position among the chosen inputs. */
  members?: Array<{ input: number; onEnsembleAdversarial: number; whiteBox: number }>;
};

export type UnionSummary = {
  union: number;
  n: number;
  clean: number;
  perAttack: number[];
};

// ---------------------------------------------------------------- the contract

/** Each operation's parameters and summary, with exact numbers as `X`. */
export interface OpContract<X = string> {
  dataset: { params: DatasetParams<X>; summary: DatasetSummary };
  /** Train a model, or (with `weights`) import one: either way a model artifact. */
  train: { params: TrainParams<X> | ImportParams<X>; summary: TrainSummary };
  predict: { params: PredictParams<X>; summary: PredictSummary };
  adversarial: { params: AdversarialParams<X>; summary: AdversarialSummary };
  transfer: { params: TransferParams<X>; summary: TransferSummary };
  matrix: { params: MatrixParams<X>; summary: MatrixSummary };
  select: { params: SelectParams; summary: SelectSummary };
  robust: { params: RobustParams<X>; summary: RobustSummary };
  union: { params: UnionParams; summary: UnionSummary };
}

export type OpName = keyof OpContract;
export type OpParams<K extends OpName, X = string> = OpContract<X>[K]['params'];
export type OpSummary<K extends OpName> = OpContract[K]['summary'];

/** Reads an exact number in its JSON form ("8/255", "3") or a plain number as a float. */
export function ratio(v: PVal): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') throw new Error(`not a number: ${JSON.stringify(v)}`);
  const [a, b] = v.split('/');
  return b === undefined ? Number(a) : Number(a) / Number(b);
}

/**
 * A stored summary read back as operation K's. The one place a summary is given its type: the
 * store and the executor's inputs hold what K's operation wrote (typed by OpResult<K>), as JSON.
 */
export function summaryAs<K extends OpName>(_op: K, summary: unknown): OpSummary<K> {
  return summary as OpSummary<K>;
}
