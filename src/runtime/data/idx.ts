/** The IDX format (MNIST): a big-endian header of magic and dimensions, then unsigned bytes. */
import { readFileSync } from 'node:fs';
import { StepError } from '../../common/errors.js';

export interface Idx {
  dims: number[];
  data: Uint8Array;
}

export function parseIdx(buf: Uint8Array, name = 'IDX file'): Idx {
  if (buf.length < 4) throw new StepError(`${name}: too short for an IDX header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0);
  const type = (magic >> 8) & 0xff;
  const rank = magic & 0xff;
  if (magic >>> 16 !== 0 || type !== 0x08 || rank < 1 || rank > 4) {
    throw new StepError(`${name}: not an unsigned-byte IDX file (magic 0x${magic.toString(16).padStart(8, '0')})`);
  }
  if (buf.length < 4 + 4 * rank) throw new StepError(`${name}: truncated header`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (buf.length < start + size) throw new StepError(`${name}: truncated: ${buf.length - start} bytes of data, the header promises ${size}`);
  return { dims, data: buf.subarray(start, start + size) };
}

export function readIdx(file: string): Idx {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new StepError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return parseIdx(buf, file);
}

export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x0800 | dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
