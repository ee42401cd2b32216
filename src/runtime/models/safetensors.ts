/**
 * Reading safetensors files (huggingface/safetensors): an 8-byte little-endian header length, a
 * JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: string}}`,
 * then the tensor bytes (offsets relative to the end of the header). Everything is checked against
 * the file's size before any tensor is read, so a truncated or hand-edited file is a clear error.
 * No TF.js here: the planner reads headers without loading the backend.
 */

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Byte offsets of the data, relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Offset of the data section in the file. */
  dataStart: number;
  bytes: Uint8Array;
}

/** Bytes per element of the dtypes the format defines. */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** The floating-point dtypes a parameter may be stored in (read as float32). */
export const FLOAT_DTYPES = ['F32', 'F64', 'F16', 'BF16'] as const;

/** A file that is not a well-formed safetensors file; the message says why. */
export class SafetensorsError extends Error {}

/** Largest header the reader accepts (the format's own limit is 100 MB). */
const MAX_HEADER = 100_000_000;

function entryOf(name: string, raw: unknown, dataLength: number): SafetensorsEntry {
  const bad = (why: string) => new SafetensorsError(`tensor '${name}': ${why}`);
  if (!raw || typeof raw !== 'object') throw bad('its header entry is not an object');
  const { dtype, shape, data_offsets: off } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw bad('its shape is not a list of sizes');
  if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
    throw bad('its data_offsets are not two byte offsets');
  }
  const [begin, end] = off as [number, number];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  if (end < begin || end > dataLength) throw bad(`its data [${begin}, ${end}) lies outside the file's ${dataLength} data bytes`);
  if (end - begin !== elements * DTYPE_BYTES[dtype]!) throw bad(`${end - begin} bytes for ${elements} ${dtype} values`);
  return { dtype, shape: shape as number[], begin, end };
}

/** Parses a safetensors file's header (the tensors are read on demand by readFloat32). */
export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.byteLength < 8) throw new SafetensorsError(`${bytes.byteLength} bytes is too short for a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER, bytes.byteLength - 8))) {
    throw new SafetensorsError(`not a safetensors file (its first 8 bytes give a header of ${n} bytes, the file has ${bytes.byteLength})`);
  }
  const dataStart = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(n)).toString('utf8'));
  } catch (e) {
    throw new SafetensorsError(`not a safetensors file (its header is not JSON: ${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError('not a safetensors file (its header is not a JSON object)');
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw && typeof raw === 'object') metadata = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
      continue;
    }
    tensors.set(name, entryOf(name, raw, bytes.byteLength - dataStart));
  }
  return { tensors, metadata, dataStart, bytes };
}

/** bfloat16 and float16 to float32. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** One tensor's values as float32 (from F32, F64, F16 or BF16; little-endian, as the format is). */
export function readFloat32(f: SafetensorsFile, name: string): Float32Array {
  const e = f.tensors.get(name);
  if (!e) throw new SafetensorsError(`no tensor '${name}'`);
  const at = f.bytes.byteOffset + f.dataStart + e.begin;
  const count = e.shape.reduce((a, b) => a * b, 1);
  const view = new DataView(f.bytes.buffer, at, e.end - e.begin);
  const out = new Float32Array(count);
  switch (e.dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      break;
    case 'BF16': {
      const u = new Uint32Array(1);
      const fl = new Float32Array(u.buffer);
      for (let i = 0; i < count; i++) {
        u[0] = view.getUint16(2 * i, true) << 16;
        out[i] = fl[0]!;
      }
      break;
    }
    default:
      throw new SafetensorsError(`tensor '${name}' is ${e.dtype}, not a floating-point type`);
  }
  return out;
}
