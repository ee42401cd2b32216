/** The attack registry: builtin attack name -> implementation (stepped, and its synchronous form). */
import { apgdSteps, apgdtSteps } from './apgd.js';
import { autoattackSteps } from './autoattack.js';
import { unstepped, type Attack, type SteppedAttack } from './base.js';
import { cwSteps } from './cw.js';
import { deepfoolSteps } from './deepfool.js';
import { ensembleSteps } from './ensemble.js';
import { epgdSteps } from './epgd.js';
import { fabtSteps } from './fab.js';
import { fgsmSteps } from './fgsm.js';
import { nattackSteps } from './nattack.js';
import { pgdSteps } from './pgd.js';
import { squareSteps } from './square.js';

export const ATTACK_STEPS: Record<string, SteppedAttack> = {
  fgsm: fgsmSteps,
  pgd: pgdSteps,
  cw: cwSteps,
  deepfool: deepfoolSteps,
  epgd: epgdSteps,
  fabt: fabtSteps,
  dag: ensembleSteps('dag'),
  agd: ensembleSteps('agd'),
  ugd: ensembleSteps('ugd'),
  empir: ensembleSteps('empir'),
  apgd: apgdSteps,
  apgdt: apgdtSteps,
  square: squareSteps,
  nattack: nattackSteps,
  autoattack: autoattackSteps,
};

export const ATTACK_IMPLS: Record<string, Attack> = Object.fromEntries(Object.entries(ATTACK_STEPS).map(([name, a]) => [name, unstepped(a)]));
