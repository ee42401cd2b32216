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
  return enc(v);
}

/**
 * The encoding, built by string concatenation (V8 joins such strings without copying). This runs
 * for every node of every plan (a 1,000-node pipeline encodes about 200,000 characters on each
 * `trendc run`); an earlier version that pushed pieces to an array and sorted Object.entries
 * copies took about three times as long. test/compiler/canonical.test.ts checks the two produce
 * the same text on random values.
 */
function enc(v: unknown): string {
  switch (typeof v) {
    case 'undefined':
      return 'n';
    case 'boolean':
      return v ? 't' : 'f';
    case 'number':
      if (!Number.isSafeInteger(v)) throw new Error(`canonical encoding accepts integers only, got ${v} (use a Rational)`);
      return `i${v};`;
    case 'bigint':
      return `i${v};`;
    case 'string':
      return `s${v.length}:${v}`;
    case 'object': {
      if (v === null) return 'n';
      if (v instanceof Rational) return `q${v.num}/${v.den};`;
      if (Array.isArray(v)) {
        let out = `a${v.length}:`;
        for (let i = 0; i < v.length; i++) out += enc(v[i]);
        return out;
      }
      const o = v as Record<string, unknown>;
      // Keys in UTF-16 code-unit order (the default sort's order); undefined values are absent.
      const keys = Object.keys(o).sort();
      let body = '';
      let n = 0;
      for (const k of keys) {
        const x = o[k];
        if (x === undefined) continue;
        body += `s${k.length}:${k}` + enc(x);
        n++;
      }
      return `o${n}:${body}`;
    }
    default:
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
