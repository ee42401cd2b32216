/** Minimal NumPy .npy (format 1.0, little-endian) reading and writing for the cross-check files. */
import { readFileSync, writeFileSync } from 'node:fs';

type Arr = Float32Array | Int32Array | Uint8Array;

const DESCR: Record<string, string> = { Float32Array: '<f4', Int32Array: '<i4', Uint8Array: '|u1' };

export function writeNpy(file: string, data: Arr, shape: number[]): void {
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${DESCR[data.constructor.name]}', 'fortran_order': False, 'shape': ${shp}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

export function readNpy(file: string): { data: Arr; shape: number[] } {
  const buf = readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const hlen = buf[6] === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = buf[6] === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)![1]!;
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order is not supported`);
  const shape = /'shape':\s*\(([^)]*)\)/
    .exec(header)![1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const body = buf.subarray(start + hlen);
  const copy = new Uint8Array(body).buffer; // aligned
  if (descr === '<f4') return { data: new Float32Array(copy), shape };
  if (descr === '<i4') return { data: new Int32Array(copy), shape };
  if (descr === '|u1') return { data: new Uint8Array(copy), shape };
  throw new Error(`${file}: dtype ${descr} is not supported`);
}
