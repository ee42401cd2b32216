/** The attack registry: builtin attack name -> implementation. */
import type { Attack } from './base.js';
import { cw } from './cw.js';
import { deepfool } from './deepfool.js';
import { ensembleAttack } from './ensemble.js';
import { epgd } from './epgd.js';
import { fgsm } from './fgsm.js';
import { pgd } from './pgd.js';

export const ATTACK_IMPLS: Record<string, Attack> = {
  fgsm,
  pgd,
  cw,
  deepfool,
  epgd,
  dag: ensembleAttack('dag'),
  agd: ensembleAttack('agd'),
  ugd: ensembleAttack('ugd'),
  empir: ensembleAttack('empir'),
};
