/** Validation of `name=value` parameters against the schema, with sweeps (lists and ranges). */
import type { Loc, Param, Scalar, Value } from './ast.js';
import type { Params, PVal } from './checked.js';
import { diag, oneOf, suggest, type Diagnostic } from './diagnostics.js';
import { Rational } from './rational.js';
import type { ParamSpec, ParamType } from './schema.js';

export const MAX_SWEEP = 10_000;

export type Raw = { value: Scalar; loc: Loc };

/** Expands a value into its scalar items (a list, a range, or one scalar). */
export function expandValue(v: Value, diags: Diagnostic[]): Scalar[] | undefined {
  const items = v.kind === 'list' ? v.items : [v];
  const out: Scalar[] = [];
  for (const it of items) {
    if (it.kind !== 'range') {
      out.push(it);
      continue;
    }
    const step = it.by ?? Rational.of(1);
    if (step.cmp(Rational.of(0)) <= 0) {
      diags.push(diag('E025', 'a range step must be positive', it.loc));
      return undefined;
    }
    if (!it.by && (!it.lo.isInteger() || !it.hi.isInteger())) {
      diags.push(diag('E025', `the range ${it.text} has non-integer ends`, it.loc, { expected: `a step, e.g. ${it.text} by 0.01` }));
      return undefined;
    }
    if (it.hi.cmp(it.lo) < 0) {
      diags.push(diag('E025', `the range ${it.text} is empty (its end is below its start)`, it.loc));
      return undefined;
    }
    const count = it.hi.sub(it.lo).div(step);
    if (count.toNumber() + 1 > MAX_SWEEP) {
      diags.push(diag('E026', `the range ${it.text} has more than ${MAX_SWEEP} values`, it.loc));
      return undefined;
    }
    for (let x = it.lo; x.cmp(it.hi) <= 0; x = x.add(step)) {
      out.push({ kind: 'number', value: x, text: x.pretty(), loc: it.loc });
    }
  }
  if (out.length > MAX_SWEEP) {
    diags.push(diag('E026', `more than ${MAX_SWEEP} values`, v.loc));
    return undefined;
  }
  return out;
}

export function describeType(t: ParamType): string {
  switch (t.t) {
    case 'number': {
      const lo = t.min ? `${t.minOpen ? '(' : '['}${t.min.pretty()}` : '(-inf';
      const hi = t.max ? `${t.max.pretty()}${t.maxOpen ? ')' : ']'}` : 'inf)';
      return `a number in ${lo}, ${hi}`;
    }
    case 'int':
      return `an integer${t.min !== undefined ? ` >= ${t.min}` : ''}${t.max !== undefined ? ` and <= ${t.max}` : ''}`;
    case 'choice':
      return oneOf(t.choices);
    case 'bool':
      return 'true or false';
    case 'string':
      return 'a quoted string';
    case 'attack':
      return 'an attack name';
    case 'attacks':
      return 'a list of attack names, e.g. [linf, l2, l1]';
  }
}

const TRUE = new Set(['true', 'yes', 'on']);
const FALSE = new Set(['false', 'no', 'off']);

/** Converts one scalar to the parameter's type; attack types return the identifier name. */
export function convertScalar(key: string, s: Scalar, t: ParamType, diags: Diagnostic[]): PVal | undefined {
  const bad = (what = describeType(t), extra: Partial<Diagnostic> = {}) => {
    diags.push(diag('E022', `bad value ${s.text} for ${key}`, s.loc, { expected: what, ...extra }));
    return undefined;
  };
  switch (t.t) {
    case 'number': {
      if (s.kind !== 'number') return bad();
      const v = s.value;
      const below = t.min && (t.minOpen ? v.cmp(t.min) <= 0 : v.cmp(t.min) < 0);
      const above = t.max && (t.maxOpen ? v.cmp(t.max) >= 0 : v.cmp(t.max) > 0);
      if (below || above) {
        diags.push(diag('E023', `${key}=${s.text} is out of range`, s.loc, { expected: describeType(t) }));
        return undefined;
      }
      return v;
    }
    case 'int': {
      if (s.kind !== 'number' || !s.value.isInteger()) return bad();
      const n = s.value.toNumber();
      if ((t.min !== undefined && n < t.min) || (t.max !== undefined && n > t.max)) {
        diags.push(diag('E023', `${key}=${s.text} is out of range`, s.loc, { expected: describeType(t) }));
        return undefined;
      }
      return n;
    }
    case 'choice': {
      const word = s.kind === 'ident' ? s.name : s.kind === 'string' ? s.value : undefined;
      if (word === undefined || !t.choices.includes(word)) {
        return bad(undefined, word !== undefined ? suggest(word, t.choices) : {});
      }
      return word;
    }
    case 'bool': {
      if (s.kind === 'ident' && TRUE.has(s.name)) return true;
      if (s.kind === 'ident' && FALSE.has(s.name)) return false;
      return bad();
    }
    case 'string':
      return s.kind === 'string' ? s.value : bad();
    case 'attack':
    case 'attacks':
      return s.kind === 'ident' ? s.name : bad();
  }
}

export interface Validated {
  /** Single values (unswept params). */
  fixed: Params;
  /** Swept params: key -> values (two or more, or one from a one-item list). */
  swept: Record<string, PVal[]>;
  /** Where each given param was written. */
  locs: Record<string, Loc>;
  /** Attack-typed params keep their raw scalars so the caller can resolve names with locations. */
  attackRefs: Record<string, Raw[]>;
}

/**
 * Validates params against a schema. Unknown keys get a "did you mean"; duplicates are errors;
 * lists and ranges are allowed only where the schema says `sweep`.
 */
export function validateParams(params: Param[], schema: Record<string, ParamSpec>, context: string, diags: Diagnostic[]): Validated {
  const out: Validated = { fixed: {}, swept: {}, locs: {}, attackRefs: {} };
  for (const p of params) {
    const spec = schema[p.key];
    if (!spec) {
      diags.push(
        diag('E020', `unknown parameter '${p.key}' for ${context}`, p.keyLoc, {
          expected: Object.keys(schema).length ? oneOf(Object.keys(schema)) : 'no parameters',
          ...suggest(p.key, Object.keys(schema)),
        }),
      );
      continue;
    }
    if (out.locs[p.key]) {
      diags.push(diag('E021', `parameter '${p.key}' is given twice`, p.keyLoc, { note: `first given at line ${out.locs[p.key]!.line}` }));
      continue;
    }
    out.locs[p.key] = p.loc;
    if (spec.type.t === 'attacks') {
      const items = p.value.kind === 'list' ? p.value.items : [p.value];
      const raws: Raw[] = [];
      for (const it of items) {
        if (it.kind !== 'ident') diags.push(diag('E022', `bad value ${it.text} for ${p.key}`, it.loc, { expected: describeType(spec.type) }));
        else raws.push({ value: it, loc: it.loc });
      }
      out.attackRefs[p.key] = raws;
      continue;
    }
    const isMulti = p.value.kind === 'list' || p.value.kind === 'range';
    if (isMulti && !spec.sweep) {
      diags.push(diag('E024', `'${p.key}' takes a single value here, not a list or range`, p.value.loc, { expected: describeType(spec.type) }));
      continue;
    }
    const items = expandValue(p.value, diags);
    if (!items) continue;
    if (spec.type.t === 'attack') {
      if (items.length !== 1) {
        diags.push(diag('E027', `'${p.key}' takes one attack`, p.value.loc));
        continue;
      }
      out.attackRefs[p.key] = [{ value: items[0]!, loc: items[0]!.loc }];
      continue;
    }
    const values: PVal[] = [];
    let ok = true;
    for (const it of items) {
      const v = convertScalar(p.key, it, spec.type, diags);
      if (v === undefined) ok = false;
      else values.push(v);
    }
    if (!ok) continue;
    if (isMulti) out.swept[p.key] = dedupe(values);
    else out.fixed[p.key] = values[0]!;
  }
  return out;
}

function dedupe(vs: PVal[]): PVal[] {
  const seen = new Set<string>();
  return vs.filter((v) => {
    const k = String(v);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Fills schema defaults for keys not given (and not swept). */
export function withDefaults(given: Params, schema: Record<string, ParamSpec>, skip: Set<string> = new Set()): Params {
  const out: Params = {};
  for (const [k, spec] of Object.entries(schema)) {
    if (skip.has(k)) continue;
    if (given[k] !== undefined) out[k] = given[k]!;
    else if (spec.default !== undefined && spec.type.t !== 'attack' && spec.type.t !== 'attacks') out[k] = spec.default;
  }
  return out;
}

/** Cartesian product of swept params, in the order the keys were written. */
export function product(swept: Record<string, PVal[]>): Params[] {
  let acc: Params[] = [{}];
  for (const [k, vs] of Object.entries(swept)) {
    const next: Params[] = [];
    for (const a of acc) for (const v of vs) next.push({ ...a, [k]: v });
    acc = next;
    if (acc.length > MAX_SWEEP) break;
  }
  return acc;
}
