/**
 * Content hashing of DAG nodes: a canonical, versioned, length-prefixed encoding of a node's
 * operation, parameters, input keys and salt, hashed with xxHash64 (xxhash-wasm) under two seeds
 * for a 128-bit key. The encoding is unambiguous (every item carries its type and length) and
 * independent of how a value was written: numbers are exact rationals, object keys are sorted.
 */
import { digest } from '../common/checksum.js';
import { Rational } from './rational.js';

export { checksumBytes, digest, initHash } from '../common/checksum.js';

export const ENCODING_VERSION = 'trend-node-key/1';

export function canonical(v: unknown): string {
  const out: string[] = [];
  enc(v, out);
  return out.join('');
}

function enc(v: unknown, out: string[]): void {
  if (v === null || v === undefined) {
    out.push('n');
  } else if (typeof v === 'boolean') {
    out.push(v ? 't' : 'f');
  } else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`canonical encoding accepts integers only, got ${v} (use a Rational)`);
    out.push(`i${v};`);
  } else if (typeof v === 'bigint') {
    out.push(`i${v};`);
  } else if (typeof v === 'string') {
    out.push(`s${v.length}:`, v);
  } else if (v instanceof Rational) {
    out.push(`q${v.num}/${v.den};`);
  } else if (Array.isArray(v)) {
    out.push(`a${v.length}:`);
    for (const x of v) enc(x, out);
  } else if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    out.push(`o${entries.length}:`);
    for (const [k, x] of entries) {
      enc(k, out);
      enc(x, out);
    }
  } else {
    throw new Error(`cannot encode ${typeof v}`);
  }
}

export interface KeyInput {
  op: string;
  opVersion: number;
  params: unknown;
  inputs: Record<string, string | string[]>;
  salt: unknown;
}

export function nodeKey(k: KeyInput): string {
  return digest(ENCODING_VERSION + '\n' + canonical([k.op, k.opVersion, k.params, k.inputs, k.salt]));
}
