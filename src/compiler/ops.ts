/**
 * The contract between the compiler and the runtime: the operations a DAG node can name, the
 * input roles each takes, and each operation's code version. Bump an operation's version when
 * its implementation changes results, so cached artifacts of that operation (and everything
 * downstream) are recomputed.
 */
export const OP_VERSIONS = {
  /** Load, subset, split and normalise a dataset. */
  dataset: 1,
  /** Train (or fine-tune) one model. Inputs: data, from?. */
  train: 2,
  /** Clean predictions of a classifier on the test set. Inputs: data, models[], select?. */
  predict: 2,
  /** An adversarial batch from one source model. Inputs: data, models[1]. */
  adversarial: 3,
  /** A target's predictions on an adversarial batch, and the transfer counts. */
  transfer: 2,
  /** Transfer matrices of one transfer statement (with TM-versus-eps fits for sweeps). */
  matrix: 1,
  /** TREND selection of k members by lowest pairwise transferability. */
  select: 1,
  /** White-box attack on a classifier (model, ensemble or smoothed). */
  robust: 3,
  /** Union accuracy over several attacks of one classifier. */
  union: 1,
} as const;

export type OpName = keyof typeof OP_VERSIONS;

/**
 * A classifier as the runtime builds it, without display names (so renaming a model changes no
 * key). Models listed as inputs are consumed in order: a model takes one, an ensemble takes all
 * of them as members (or, with `select`, as candidates of which the select artifact picks k).
 * `seed` of an ensemble draws its tie-breaks, of a smoothed classifier its noise (0: the
 * operation's own streams).
 */
export type ClassSpec =
  | { kind: 'model' }
  | { kind: 'ensemble'; vote: 'majority'; seed: number; select: boolean; /** Not read (the inputs say it); keys no longer hold it. */ n?: number }
  | {
      kind: 'smooth';
      sd: unknown;
      m: number;
      vote: 'prediction' | 'soft' | 'weighted';
      /** Soft vote only. */
      average?: 'probs' | 'logits';
      seed: number;
      /** Images per inference batch; absent where the batches are the attack's (white-box evaluation). */
      batch?: number;
      base: ClassSpec;
    };
