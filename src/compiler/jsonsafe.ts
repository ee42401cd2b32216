/** JSON-safe copies of compiler values: exact rationals become their canonical "a/b" strings. */
import { Rational } from './rational.js';

export function jsonSafe<T = unknown>(v: unknown): T {
  return JSON.parse(JSON.stringify(v, (_, x) => (x instanceof Rational ? x.toString() : typeof x === 'bigint' ? x.toString() : x))) as T;
}

/** Reads back a rational written by jsonSafe ("8/255", "3") or a plain number. */
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const [a, b] = v.split('/');
    return b === undefined ? Number(a) : Number(a) / Number(b);
  }
  if (v instanceof Rational) return v.toNumber();
  throw new Error(`not a number: ${JSON.stringify(v)}`);
}
