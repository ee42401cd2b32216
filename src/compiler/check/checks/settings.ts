/** Checks of the settings statements: dataset, backend, train. */
import { suggest } from '../../../common/names.js';
import type { Loc } from '../../ast.js';
import { diag, oneOf } from '../../diagnostics.js';
import { BACKENDS, DATASETS } from '../../schema.js';
import type { Accept } from '../context.js';
import type { Check } from './facts.js';

export const knownDataset: Check<'dataset'> = ({ stmt }, accept) => {
  const name = stmt.name.name;
  if (DATASETS[name]) return;
  const names = Object.keys(DATASETS);
  accept(diag('E042', `unknown dataset '${name}'`, stmt.name.loc, { expected: oneOf(names), ...suggest(name, names) }));
};

/** A subset cannot ask for more images than the dataset has. */
export const subsetFits: Check<'dataset'> = ({ stmt, p, v }, accept) => {
  const name = stmt.name.name;
  const images = DATASETS[name]?.images;
  if (!images) return;
  for (const k of ['train', 'test'] as const) {
    if (typeof p[k] === 'number' && (p[k] as number) > images[k]) {
      accept(diag('E043', `${k}=${p[k]} is larger than ${name} (${images[k]} images)`, v.locs[k]!, { expected: `an integer <= ${images[k]}` }));
    }
  }
};

export const pathGiven: Check<'dataset'> = ({ stmt, p }, accept) => {
  const name = stmt.name.name;
  if (DATASETS[name]?.needsPath && typeof p.path !== 'string') {
    accept(diag('E044', `dataset ${name} needs path="..."`, stmt.name.loc, { expected: 'the folder holding the CIFAR binary files' }));
  }
};

export const knownBackend: Check<'backend'> = ({ stmt }, accept) => {
  const b = stmt.name.name;
  if ((BACKENDS as readonly string[]).includes(b)) return;
  accept(diag('E041', `unknown backend '${b}'`, stmt.name.loc, { expected: oneOf(BACKENDS), ...suggest(b, BACKENDS) }));
};

/** Ranges make families of models: only on a model, never in the train statement. */
export const noTrainSweep: Check<'train'> = ({ v }, accept) => {
  for (const [k, vs] of Object.entries(v.swept)) {
    accept(
      diag('E052', `'${k}' cannot be a list in the train statement`, v.locs[k]!, {
        note: `a range makes a family of models: give it on a model, e.g. seed ${vs.length > 1 ? '1..' + vs.length : '1'}`,
      }),
    );
  }
};

/** momentum= and wd= written where the optimizer is Adam, which reads neither. */
export function sgdOnly(locs: Record<string, Loc>, accept: Accept): void {
  for (const k of ['momentum', 'wd'] as const) {
    if (locs[k])
      accept(diag('W005', `'${k}' applies only to optimizer sgd; Adam ignores it`, locs[k]!, { note: 'it is left out of the keys of Adam-trained models' }));
  }
}

export const trainSgdOnly: Check<'train'> = ({ v }, accept) => {
  if (v.fixed.optimizer === 'adam') sgdOnly(v.locs, accept);
};
