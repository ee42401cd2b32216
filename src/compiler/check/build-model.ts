/** Builds checked models: parameters with inherited defaults, quantisers, noise, the training method, families. */
import { dirname, resolve } from 'node:path';
import { suggest } from '../../common/names.js';
import type * as A from '../ast.js';
import type { AttackUse, CModel, InputQuant, Method, NoiseSpec, Params, TrainSettings } from '../checked.js';
import { diag, oneOf, type Diagnostic } from '../diagnostics.js';
import { validateParams, withDefaults, type Raw } from '../params.js';
import { Rational } from '../rational.js';
import {
  ATTACKS,
  METHOD_PARAMS,
  METHODS,
  MODEL_PARAMS,
  NOISE_SD,
  NOISE_TARGETS,
  QUANT_BITS,
  QUANT_TARGETS,
  TRAIN_PARAMS,
  type MethodName,
  type ParamSpec,
} from '../schema.js';
import type { Facts, TrainDefaults } from './checks/index.js';
import type { Built } from './context.js';
import type { Linker } from './linker.js';

export interface BuildContext {
  linker: Linker;
  diags: Diagnostic[];
  built: Built;
}

type Quant = { input?: InputQuant; weightBits?: number; activationBits?: number };

export function methodName(ctx: BuildContext, n: A.Name | undefined): MethodName | undefined {
  if (!n) return undefined;
  if ((METHODS as readonly string[]).includes(n.name)) return n.name as MethodName;
  ctx.diags.push(diag('E051', `unknown training method '${n.name}'`, n.loc, { expected: oneOf(METHODS), ...suggest(n.name, METHODS) }));
  return undefined;
}

/** The train statement: settings every model inherits where it is silent. */
export function buildTrainDefaults(ctx: BuildContext, s: A.TrainStmt | undefined): { defaults: TrainDefaults; facts?: Facts['train'] } {
  const empty = { fixed: {}, swept: {}, locs: {}, attackRefs: {} };
  if (!s) return { defaults: { method: 'standard', v: empty } };
  const method = methodName(ctx, s.method) ?? 'standard';
  const schema: Record<string, ParamSpec> = { ...TRAIN_PARAMS, ...METHOD_PARAMS[method] };
  const v = validateParams(s.params, schema, `train${s.method ? ' ' + s.method.name : ''}`, ctx.diags);
  return { defaults: { method, v }, facts: { stmt: s, v } };
}

export function buildModel(ctx: BuildContext, s: A.ModelStmt, defaults: TrainDefaults): Facts['model'] {
  const method: MethodName = methodName(ctx, s.method) ?? (s.method ? 'standard' : defaults.method);
  const schema: Record<string, ParamSpec> = { ...MODEL_PARAMS, ...METHOD_PARAMS[method] };
  const v = validateParams(s.params, schema, `model ${s.name.name}${s.method ? ` (train ${method})` : ''}`, ctx.diags);
  // Global defaults apply where the model is silent (method params only when the method matches).
  const inherited: Params = {};
  for (const [k, val] of Object.entries(defaults.v.fixed)) {
    if (schema[k] && (TRAIN_PARAMS[k] || method === defaults.method)) inherited[k] = val;
  }
  const p = withDefaults({ ...inherited, ...v.fixed }, schema, new Set(Object.keys(v.swept)));
  const quant = buildQuant(ctx, s, p);
  const noise = buildNoise(ctx, s);
  const attackRefs = { ...(method === defaults.method ? defaults.v.attackRefs : {}), ...v.attackRefs };
  const m = buildMethod(ctx, method, p, attackRefs, METHOD_PARAMS[method], s.loc);
  for (const { name, combo, family } of ctx.linker.declareFamily(s.name, v.swept, 'family', 'model')) {
    const q = { ...p, ...combo };
    const train: TrainSettings = {
      epochs: q.epochs as number,
      batch: q.batch as number,
      lr: q.lr as Rational,
      momentum: q.momentum as Rational,
      wd: q.wd as Rational,
      optimizer: q.optimizer as 'sgd' | 'adam',
      seed: q.seed as number,
      schedule: q.schedule as 'step' | 'constant',
    };
    ctx.built.models.push({
      name,
      ...(family ? { family } : {}),
      loc: s.loc,
      arch: s.arch.name,
      width: q.width as Rational,
      ...(quant.input ? { input: quant.input } : {}),
      ...(quant.weightBits ? { weightBits: quant.weightBits } : {}),
      ...(quant.activationBits ? { activationBits: quant.activationBits } : {}),
      noise,
      train,
      method: (m ?? { name: 'standard' }) as CModel['method'],
      ...(s.from ? { from: s.from.name } : {}),
      ...(typeof q.weights === 'string' ? { weights: { path: resolve(dirname(s.loc.file), q.weights), written: q.weights, loc: v.locs.weights! } } : {}),
    });
  }
  return { stmt: s, v, p, method, defaults, ...(quant.input ? { input: quant.input } : {}) };
}

function buildQuant(ctx: BuildContext, s: A.ModelStmt, p: Params): Quant {
  const out: Quant = {};
  const seen = new Map<string, A.Loc>();
  for (const q of s.quant) {
    const t = q.target.name;
    if (!(QUANT_TARGETS as readonly string[]).includes(t)) {
      ctx.diags.push(diag('E053', `unknown quantisation target '${t}'`, q.target.loc, { expected: oneOf(QUANT_TARGETS), ...suggest(t, QUANT_TARGETS) }));
      continue;
    }
    if (seen.has(t)) {
      ctx.diags.push(diag('E054', `'quant ${t}' is given twice`, q.loc, { note: `first at line ${seen.get(t)!.line}` }));
      continue;
    }
    seen.set(t, q.loc);
    const stats = p.qstats as 'batch' | 'image';
    const bpda = p.bpda as 'sigmoid' | 'identity';
    if (q.value.kind === 'ident') {
      if (t === 'input' && q.value.name === 'halftone') out.input = { kind: 'halftone', stats, bpda };
      else {
        ctx.diags.push(
          diag('E055', `bad quantisation '${q.value.name}' for ${t}`, q.value.loc, {
            expected: t === 'input' ? 'a bit width (1bit..32bit) or halftone' : 'a bit width (1bit..32bit)',
            ...(t === 'input' ? suggest(q.value.name, ['halftone']) : {}),
          }),
        );
      }
      continue;
    }
    const bits = q.value.bits;
    if (bits < QUANT_BITS.min || bits > QUANT_BITS.max) {
      ctx.diags.push(diag('E023', `${bits} bits is out of range`, q.value.loc, { expected: `a bit width from ${QUANT_BITS.min}bit to ${QUANT_BITS.max}bit` }));
      continue;
    }
    if (t === 'input') out.input = { kind: 'bits', bits, stats, bpda };
    else if (t === 'weight') out.weightBits = bits;
    else out.activationBits = bits;
  }
  return out;
}

function buildNoise(ctx: BuildContext, s: A.ModelStmt): CModel['noise'] {
  const out: CModel['noise'] = {};
  for (const n of s.noise) {
    const t = n.target.name;
    if (!(NOISE_TARGETS as readonly string[]).includes(t)) {
      ctx.diags.push(diag('E056', `unknown noise target '${t}'`, n.target.loc, { expected: oneOf(NOISE_TARGETS), ...suggest(t, NOISE_TARGETS) }));
      continue;
    }
    if (out[t as 'input']) {
      ctx.diags.push(diag('E057', `'noise ${t}' is given twice`, n.loc));
      continue;
    }
    let spec: NoiseSpec | undefined;
    if (n.value.kind === 'ident') {
      if (n.value.name === 'learned') spec = { learned: true, sd: NOISE_SD.learnedInit };
      else
        ctx.diags.push(
          diag('E058', `bad noise '${n.value.name}'`, n.value.loc, { expected: 'an sd (e.g. 0.25) or learned', ...suggest(n.value.name, ['learned']) }),
        );
    } else if (n.value.value.cmp(Rational.of(0)) < 0 || n.value.value.cmp(NOISE_SD.max) > 0) {
      ctx.diags.push(diag('E023', `noise sd ${n.value.text} is out of range`, n.value.loc, { expected: `a number in [0, ${NOISE_SD.max.pretty()}]` }));
    } else spec = { learned: false, sd: n.value.value };
    if (spec) out[t as 'input'] = spec;
  }
  return out;
}

function defaultRefs(def: unknown, loc: A.Loc): Raw[] {
  if (typeof def !== 'string') return [];
  return def.split(',').map((name) => ({ value: { kind: 'ident' as const, name, text: name, loc }, loc }));
}

function buildMethod(
  ctx: BuildContext,
  method: MethodName,
  p: Params,
  refs: Record<string, Raw[]>,
  schema: Record<string, ParamSpec>,
  loc: A.Loc,
): Method | undefined {
  const attackList = (key: string): AttackUse[] | undefined => {
    const uses = (refs[key] ?? defaultRefs(schema[key]?.default, loc)).map((r) => ctx.linker.attackRef(r));
    return uses.some((u) => !u) ? undefined : (uses as AttackUse[]);
  };
  const trainable = (uses: AttackUse[] | undefined): AttackUse[] | undefined => {
    if (!uses) return undefined;
    const bad = uses.find((u) => !ATTACKS[u.attack]!.trainable);
    if (!bad) return uses;
    ctx.diags.push(
      diag('E059', `attack '${bad.label}' (${bad.attack}) cannot be used for adversarial training`, bad.loc, {
        expected: 'pgd or fgsm attacks (e.g. linf, l2, l1)',
      }),
    );
    return undefined;
  };
  switch (method) {
    case 'standard':
      return { name: 'standard' };
    case 'adversarial': {
      const a = trainable(attackList('attack'));
      return a ? { name: 'adversarial', attack: a[0]!, mix: p.mix as Rational } : undefined;
    }
    case 'avg':
    case 'max':
    case 'eat': {
      const a = trainable(attackList('attacks'));
      if (!a) return undefined;
      if (a.length < 2) ctx.diags.push(diag('E060', `'${method}' needs at least two attacks`, loc));
      return { name: method, attacks: a };
    }
    case 'ramp': {
      const pair = trainable(attackList('pair'));
      if (!pair) return undefined;
      if (pair.length !== 2) {
        ctx.diags.push(diag('E061', `'pair' needs exactly two attacks (source, target)`, refs.pair?.[0]?.loc ?? loc));
        return undefined;
      }
      return { name: 'ramp', pair: [pair[0]!, pair[1]!], lambda: p.lambda as Rational, beta: p.beta as Rational, gp: p.gp as boolean };
    }
  }
}
