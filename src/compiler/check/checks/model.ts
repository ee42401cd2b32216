/** Checks of model and smooth statements: names from the schema, parameters without effect. */
import { suggest } from '../../../common/names.js';
import { diag, oneOf } from '../../diagnostics.js';
import { ARCHS, METHOD_PARAMS, TRAINING_ONLY } from '../../schema.js';
import type { Check } from './facts.js';
import { sgdOnly } from './settings.js';

export const knownArchitecture: Check<'model'> = ({ stmt }, accept) => {
  const arch = stmt.arch.name;
  if (ARCHS[arch]) return;
  const names = Object.keys(ARCHS);
  accept(diag('E050', `unknown architecture '${arch}'`, stmt.arch.loc, { expected: oneOf(names), ...suggest(arch, names) }));
};

export const bpdaOnlyHalftone: Check<'model'> = ({ v, input }, accept) => {
  if (!v.locs.bpda || input?.kind === 'halftone') return;
  const note = input ? 'K-bit input quantisation always passes gradients straight through (the identity)' : 'this model has no input quantisation';
  accept(diag('W002', `'bpda' applies only to 'quant input halftone'; it is ignored here`, v.locs.bpda, { note }));
};

export const qstatsOnlyBits: Check<'model'> = ({ v, input }, accept) => {
  if (!v.locs.qstats || input?.kind === 'bits') return;
  const note = input ? 'halftone normalises each image by its own range' : 'this model has no input quantisation';
  accept(diag('W003', `'qstats' applies only to K-bit input quantisation ('quant input 2bit'); it is ignored here`, v.locs.qstats, { note }));
};

export const modelSgdOnly: Check<'model'> = ({ v, p }, accept) => {
  if (p.optimizer === 'adam' && !v.swept.optimizer) sgdOnly(v.locs, accept);
};

/** RAMP's beta weighs the gradient projection, which gp=false turns off. */
export const betaNeedsGp: Check<'model'> = ({ v, p, method, defaults }, accept) => {
  const beta = v.locs.beta ?? (defaults.method === 'ramp' ? defaults.v.locs.beta : undefined);
  if (method === 'ramp' && p.gp === false && beta) {
    accept(
      diag('W004', `'beta' (the gradient-projection weight) is ignored with gp=false`, (v.locs.beta ?? defaults.v.locs.beta)!, {
        note: 'set gp=true to project gradients, or drop beta',
      }),
    );
  }
};

/**
 * An imported model (weights=) is not trained: training settings, a method or `from` on its
 * statement would promise training that never happens. Fine-tuning is a model `from` it.
 */
export const importNotTrained: Check<'model'> = ({ stmt, v }, accept) => {
  if (!v.locs.weights) return;
  const note = `to fine-tune the imported weights, declare another model: model ft = ${stmt.arch.name} from ${stmt.name.name} epochs=1`;
  const given = [
    ...(stmt.method ? [{ what: `'train ${stmt.method.name}'`, loc: stmt.method.loc }] : []),
    ...(stmt.from ? [{ what: `'from ${stmt.from.name}'`, loc: stmt.from.loc }] : []),
    ...Object.keys(v.locs)
      .filter((k) => TRAINING_ONLY.includes(k) || Object.values(METHOD_PARAMS).some((m) => k in m))
      .map((k) => ({ what: `'${k}'`, loc: v.locs[k]! })),
  ];
  for (const g of given) accept(diag('E062', `${g.what} has no effect on a model imported with weights=: it is not trained`, g.loc, { note }));
};

export const averageOnlySoft: Check<'smooth'> = ({ v, p }, accept) => {
  if (v.locs.average && p.vote !== 'soft') {
    accept(
      diag('W006', `'average' applies only to vote=soft; it is ignored with vote=${String(p.vote)}`, v.locs.average, {
        note: 'the soft vote averages probabilities or logits; the other votes count',
      }),
    );
  }
};
