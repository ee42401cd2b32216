/**
 * Artifacts: what an operation produces. A small JSON `summary` (numbers for reports and diffs)
 * plus named tensors. Encoded deterministically (sorted JSON header, 8-byte aligned tensor data),
 * so the same results always give byte-identical payloads.
 *
 *   "TRNDART1" | u32 header length | header JSON | pad to 8 | tensor bytes (each padded to 8)
 */
export type DType = 'float32' | 'int32' | 'uint8';
export type TypedArray = Float32Array | Int32Array | Uint8Array;
export interface TensorData {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export interface Artifact {
  summary: Json;
  tensors: Record<string, TensorData>;
}

const MAGIC = 'TRNDART1';

export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_, x) => {
    if (typeof x === 'number' && !Number.isFinite(x)) throw new Error(`artifact summary holds a non-finite number (${x})`);
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      return Object.fromEntries(
        Object.keys(x)
          .sort()
          .map((k) => [k, (x as Record<string, unknown>)[k]]),
      );
    }
    return x;
  });
}

const pad8 = (n: number) => (n + 7) & ~7;

export function tensor(dtype: DType, shape: number[], data: TypedArray): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`tensor data has ${data.length} elements, shape ${JSON.stringify(shape)} needs ${n}`);
  return { dtype, shape, data };
}

export function encodeArtifact(a: Artifact): Uint8Array {
  const names = Object.keys(a.tensors).sort();
  let offset = 0;
  const index = names.map((name) => {
    const t = a.tensors[name]!;
    const entry = { name, dtype: t.dtype, shape: t.shape, offset, length: t.data.byteLength };
    offset += pad8(t.data.byteLength);
    return entry;
  });
  const header = new TextEncoder().encode(canonicalJson({ summary: a.summary, tensors: index }));
  const start = pad8(8 + 4 + header.length);
  const out = new Uint8Array(start + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  names.forEach((name, i) => {
    const t = a.tensors[name]!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), start + index[i]!.offset);
  });
  return out;
}

export function decodeArtifact(bytes: Uint8Array): Artifact {
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== MAGIC) throw new Error('not a trend artifact');
  const hl = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hl))) as {
    summary: Json;
    tensors: Array<{ name: string; dtype: DType; shape: number[]; offset: number; length: number }>;
  };
  const start = pad8(12 + hl);
  const tensors: Record<string, TensorData> = {};
  for (const e of header.tensors) {
    // Copy into a fresh, aligned buffer: payload buffers may be shared or unaligned.
    // (Buffer.slice would share the pool; copy explicitly.)
    const raw = new Uint8Array(e.length);
    raw.set(bytes.subarray(start + e.offset, start + e.offset + e.length));
    const data = e.dtype === 'float32' ? new Float32Array(raw.buffer) : e.dtype === 'int32' ? new Int32Array(raw.buffer) : new Uint8Array(raw.buffer);
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data };
  }
  return { summary: header.summary, tensors };
}

/** Reads only the summary (cheap: no tensor copies). */
export function artifactSummary(bytes: Uint8Array): Json {
  const hl = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  return (JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hl))) as { summary: Json }).summary;
}
