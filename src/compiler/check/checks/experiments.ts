/** Checks of ensemble, transfer and evaluate statements: which attacks fit which targets. */
import { diag } from '../../diagnostics.js';
import { ATTACKS } from '../../schema.js';
import type { Check } from './facts.js';

/** `k=` and `objective=` choose TREND members: they mean nothing to a listed ensemble. */
export const trendOnlyParams: Check<'ensemble'> = ({ v }, accept) => {
  for (const k of ['k', 'objective'] as const) {
    if (v.locs[k]) accept(diag('E071', `'${k}' applies only to 'ensemble trend'`, v.locs[k]!));
  }
};

/** At least two members, unless an error on this line already explains why there are fewer. */
export const twoMembers: Check<'ensemble'> = ({ stmt, members, reported }, accept) => {
  if (members.length < 2 && stmt.members!.items.length > 0 && !reported.some((d) => d.loc.line === stmt.loc.line)) {
    accept(diag('E072', 'an ensemble needs at least two members', stmt.members!.loc));
  }
};

export const transferAttacksOneModel: Check<'transfer'> = ({ attacks }, accept) => {
  for (const a of attacks) {
    if (ATTACKS[a.attack]!.kind === 'ensemble') {
      accept(diag('E080', `'${a.label}' attacks ensembles; a transfer attack runs on one source model`, a.loc, { expected: 'pgd, fgsm, cw or deepfool' }));
    }
    if (ATTACKS[a.attack]!.needsSd && a.params.sd === undefined) accept(diag('E081', `${a.attack} on a source model needs sd=`, a.loc));
  }
};

export const withNeedsAttacks: Check<'evaluate'> = ({ stmt }, accept) => {
  if (!stmt.attacks.length && stmt.with.length) accept(diag('E083', `'with' parameters need attacks ('against ...')`, stmt.with[0]!.loc));
};

/** Ensembles need ensemble attacks, and only ensembles take them; once per attack and kind of target. */
export const attacksFitTargets: Check<'evaluate'> = ({ attacks, targets, kindOf }, accept) => {
  const reported = new Set<string>();
  for (const a of attacks) {
    const info = ATTACKS[a.attack]!;
    for (const t of targets) {
      const tk = kindOf(t);
      let msg: string | undefined;
      let suggestion: string | undefined;
      let code: 'E082' | 'E081' = 'E082';
      if (tk === 'ensemble' && info.kind !== 'ensemble' && !info.ensembles) {
        msg = `'${t}' is an ensemble: attack it with an ensemble attack`;
        suggestion = "'agd' (or dag, ugd, empir)";
      } else if (tk === 'smooth' && info.kind === 'ensemble') msg = `'${a.label}' attacks ensembles, but '${t}' is a smoothed classifier`;
      else if (tk === 'model' && info.needsSd && a.params.sd === undefined) {
        msg = `${a.attack} on model '${t}' needs sd= (or smooth the model first)`;
        code = 'E081';
      }
      const key = `${a.label}|${tk}`;
      if (msg && !reported.has(key)) {
        reported.add(key);
        accept(diag(code, msg, a.loc, suggestion ? { suggestion } : {}));
      }
    }
  }
};

export const unionOfTwo: Check<'evaluate'> = ({ stmt, attacks }, accept) => {
  if (!stmt.union) return;
  if (attacks.length < 2) accept(diag('E084', `'union' needs at least two attacks`, stmt.loc));
  else if (attacks.some((a) => Object.keys(a.sweep).some((k) => !a.distinct?.includes(k)))) {
    accept(
      diag('E085', `'union' cannot be combined with a sweep`, stmt.loc, {
        note: 'union accuracy counts an image only if it survives every attack of one budget set',
      }),
    );
  }
};
