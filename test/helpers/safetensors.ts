/**
 * safetensors files and PyTorch layouts as the tests write them by hand, independently of trend's
 * reader (src/runtime/models/safetensors.ts) and name maps (src/runtime/models/weights.ts).
 */

export type StTensor = { dtype: 'F32' | 'F64' | 'F16' | 'BF16' | 'I64'; shape: number[]; bytes: Uint8Array };

/** A safetensors file: u64 header length, JSON header, tensor bytes in order. */
export function writeSafetensors(tensors: Record<string, StTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.byteLength] };
    off += t.bytes.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const t of Object.values(tensors)) {
    out.set(t.bytes, p);
    p += t.bytes.byteLength;
  }
  return out;
}

/** The F32 tensors of a safetensors file, by name (what `trendc export` writes). */
export function readSafetensorsF32(bytes: Uint8Array): Record<string, { shape: number[]; v: Float32Array }> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out: Record<string, { shape: number[]; v: Float32Array }> = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (e.dtype !== 'F32') throw new Error(`${name}: ${e.dtype}`);
    const [a, b] = e.data_offsets;
    out[name] = { shape: e.shape, v: new Float32Array(Uint8Array.prototype.slice.call(bytes, 8 + n + a, 8 + n + b).buffer) };
  }
  return out;
}

export const f32 = (shape: number[], v: Float32Array): StTensor => ({
  dtype: 'F32',
  shape,
  bytes: new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)),
});
export const i64 = (v: number): StTensor => ({ dtype: 'I64', shape: [], bytes: new Uint8Array(BigInt64Array.of(BigInt(v)).buffer) });

/** HWIO -> OIHW, index by index. */
export function toOihw(v: Float32Array, [kh, kw, i, o]: number[]): Float32Array {
  const out = new Float32Array(v.length);
  for (let y = 0; y < kh!; y++)
    for (let x = 0; x < kw!; x++)
      for (let c = 0; c < i!; c++) for (let f = 0; f < o!; f++) out[((f * i! + c) * kh! + y) * kw! + x] = v[((y * kw! + x) * i! + c) * o! + f]!;
  return out;
}

/** [in, out] -> [out, in], where `map` [h, w, c] says the input is a flattened NHWC map that PyTorch flattens as NCHW. */
export function toOutIn(v: Float32Array, [inN, outN]: number[], map?: number[]): Float32Array {
  const out = new Float32Array(v.length);
  for (let y = 0; y < (map?.[0] ?? 1); y++)
    for (let x = 0; x < (map?.[1] ?? 1); x++)
      for (let c = 0; c < (map?.[2] ?? inN!); c++) {
        const t = map ? (y * map[1]! + x) * map[2]! + c : c; // trend's input index (NHWC)
        const p = map ? (c * map[0]! + y) * map[1]! + x : c; // PyTorch's (NCHW)
        for (let o = 0; o < outN!; o++) out[o * inN! + p] = v[t * outN! + o]!;
      }
  return out;
}
