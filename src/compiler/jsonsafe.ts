/** JSON-safe copies of compiler values: exact rationals become their canonical "a/b" strings. */
import { ratio } from './contract.js';
import { Rational } from './rational.js';

export function jsonSafe<T = unknown>(v: unknown): T {
  return JSON.parse(JSON.stringify(v, (_, x) => (x instanceof Rational ? x.toString() : typeof x === 'bigint' ? x.toString() : x))) as T;
}

/** Reads back a rational written by jsonSafe ("8/255", "3") or a plain number. */
export function num(v: unknown): number {
  if (typeof v === 'number' || typeof v === 'string') return ratio(v);
  if (v instanceof Rational) return v.toNumber();
  throw new Error(`not a number: ${JSON.stringify(v)}`);
}
