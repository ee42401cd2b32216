/**
 * The contract between the compiler and the runtime: the operations a DAG node can name, the
 * input roles each takes, and each operation's code version (their parameter and summary types
 * are in contract.ts). Bump an operation's version when
 * its implementation changes results, so cached artifacts of that operation (and everything
 * downstream) are recomputed.
 */
import type { OpName } from './contract.js';

export type { ClassSpec, OpName } from './contract.js';

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
} as const satisfies Record<OpName, number>;

/**
 * Code versions of single attacks, for a change in one attack's implementation that changes its
 * results: every node whose key holds that attack (evaluations, adversarial batches, models
 * trained with it) is recomputed, and no other. A function gives the version of the code path
 * the parameters select, so a change to one norm or variant leaves the others' results valid. An
 * attack absent here (or at version 1) keeps version 1, which keys leave out.
 */
export const ATTACK_VERSIONS: Partial<Record<string, number | ((params: Readonly<Record<string, unknown>>) => number)>> = {
  /** 2: the l_1 standard version runs FAB-T and Square after APGD-CE and APGD-T, as the reference. */
  autoattack: (p) => (p.norm === 'l1' && (p.version ?? 'standard') === 'standard' ? 2 : 1),
};

/** An attack's code version for these parameters (1 if it never changed). */
export function attackVersion(attack: string, params: Readonly<Record<string, unknown>>): number {
  const v = ATTACK_VERSIONS[attack];
  return typeof v === 'function' ? v(params) : (v ?? 1);
}
