/**
 * The canonical encoding that node keys hash. Its text is part of every key, so a faster
 * implementation must produce the same characters: this checks it against the straightforward
 * encoder it replaced (kept here as the reference) on random nested values.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonical } from '../../src/compiler/hash.js';
import { Rational } from '../../src/compiler/rational.js';

/** The previous implementation, verbatim in behaviour: pieces pushed to an array, entries sorted by `<`. */
function reference(v: unknown): string {
  const out: string[] = [];
  const enc = (v: unknown): void => {
    if (v === null || v === undefined) out.push('n');
    else if (typeof v === 'boolean') out.push(v ? 't' : 'f');
    else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new Error(`canonical encoding accepts integers only, got ${v} (use a Rational)`);
      out.push(`i${v};`);
    } else if (typeof v === 'bigint') out.push(`i${v};`);
    else if (typeof v === 'string') out.push(`s${v.length}:`, v);
    else if (v instanceof Rational) out.push(`q${v.num}/${v.den};`);
    else if (Array.isArray(v)) {
      out.push(`a${v.length}:`);
      for (const x of v) enc(x);
    } else if (typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      out.push(`o${entries.length}:`);
      for (const [k, x] of entries) {
        enc(k);
        enc(x);
      }
    } else throw new Error(`cannot encode ${typeof v}`);
  };
  enc(v);
  return out.join('');
}

const rational = fc.tuple(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.bigInt({ min: 1n, max: 10n ** 20n })).map(([n, d]) => Rational.of(n, d));
// Keys that sort differently by code unit and by locale, digits that look like array indices,
// astral characters (two code units), and the empty key.
const key = fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('', 'a', 'B', 'é', 'Z', '10', '2', '😀', '\uffff', 'eps', 'eps_'));
const leaf = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.maxSafeInteger(),
  fc.bigInt(),
  fc.string({ unit: 'binary', maxLength: 12 }),
  rational,
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 5 }), fc.dictionary(key, tie('v'), { maxKeys: 6 })),
})).v;

describe('canonical encoding', () => {
  it('writes the same text as the reference encoder', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(canonical(v)).toBe(reference(v));
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses what the reference refuses', () => {
    for (const bad of [0.5, Number.NaN, 2 ** 60, () => 1, Symbol('s')]) {
      expect(() => reference({ a: [bad] })).toThrow();
      expect(() => canonical({ a: [bad] })).toThrow();
    }
  });
});
