/**
 * The validation checks, registered per statement kind (as Langium's `ValidationChecks<T>`): each
 * is small, independent of the others, and sees one statement with what the builder made of it.
 * They run in the order listed, right after their statement is built.
 */
import type { Accept } from '../context.js';
import { attacksFitTargets, transferAttacksOneModel, trendOnlyParams, twoMembers, unionOfTwo, withNeedsAttacks } from './experiments.js';
import type { Facts, ValidationChecks } from './facts.js';
import { averageOnlySoft, betaNeedsGp, bpdaOnlyHalftone, importNotTrained, knownArchitecture, modelSgdOnly, qstatsOnlyBits } from './model.js';
import { knownBackend, knownDataset, noTrainSweep, pathGiven, subsetFits, trainSgdOnly } from './settings.js';

export type { Facts, TrainDefaults, ValidationChecks } from './facts.js';

export const CHECKS: ValidationChecks = {
  dataset: [knownDataset, subsetFits, pathGiven],
  backend: [knownBackend],
  train: [noTrainSweep, trainSgdOnly],
  model: [knownArchitecture, bpdaOnlyHalftone, qstatsOnlyBits, modelSgdOnly, betaNeedsGp, importNotTrained],
  smooth: [averageOnlySoft],
  ensemble: [trendOnlyParams, twoMembers],
  transfer: [transferAttacksOneModel],
  evaluate: [withNeedsAttacks, attacksFitTargets, unionOfTwo],
};

export function runChecks<K extends keyof Facts>(kind: K, facts: Facts[K], accept: Accept, checks: ValidationChecks = CHECKS): void {
  for (const c of (checks[kind] ?? []) as Array<(f: Facts[K], a: Accept) => void>) c(facts, accept);
}
