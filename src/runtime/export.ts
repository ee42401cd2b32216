/**
 * `trendc export KEY --out DIR [--format onnx]`: model weights as safetensors plus model.json,
 * the complete network description (docs/export.md), and with `--format onnx` model.onnx;
 * adversarial batches, predictions and datasets as .npy; matrices and tables as CSV and JSON.
 * Labels for matrix rows and columns come from the newest run that holds the node.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../compiler/diagnostics.js';
import type { Store } from '../store/store.js';
import { decodeArtifact, tensor, type TensorData } from './artifact.js';
import type { ModelSpec } from './models/model.js';
import { checkModelExport, modelFiles, type ModelExportOptions } from './onnx/export-model.js';
import { makeDirs } from '../common/dirs.js';

const NPY_DTYPE: Record<TensorData['dtype'], string> = { float32: '<f4', int32: '<i4', uint8: '|u1' };
const ST_DTYPE: Record<TensorData['dtype'], string> = { float32: 'F32', int32: 'I32', uint8: 'U8' };

export function encodeNpy(t: TensorData): Uint8Array {
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${NPY_DTYPE[t.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + t.data.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY'), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), 10 + header.length);
  return out;
}

export function encodeSafetensors(tensors: Record<string, TensorData>, metadata: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  let off = 0;
  const header: Record<string, unknown> = { __metadata__: metadata };
  for (const n of names) {
    const t = tensors[n]!;
    header[n] = { dtype: ST_DTYPE[t.dtype], shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(Buffer.from(json, 'utf8'), 8);
  let p = 8 + json.length;
  for (const n of names) {
    const t = tensors[n]!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

function csv(rows: Array<Array<string | number | null>>): string {
  return (
    rows
      .map((r) => r.map((c) => (c === null ? '' : typeof c === 'number' ? String(c) : /[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)).join(','))
      .join('\n') + '\n'
  );
}

function labelsFor(store: Store, key: string): Record<string, string[]> | undefined {
  const runs = store.runs().reverse();
  for (const r of runs) {
    const n = r.nodes.find((x) => x.key === key);
    if (n) return (n.info as { labels?: Record<string, string[]> }).labels;
  }
  return undefined;
}

export async function exportArtifact(store: Store, key: string, out: string, opts: ModelExportOptions = {}): Promise<string[]> {
  const meta = store.meta(key)!;
  if (opts.format === 'onnx' && meta.op !== 'train')
    throw new UserError(`--format onnx exports trained models; ${key.slice(0, 12)} (${meta.id ?? '?'}) is a ${meta.op} artifact`);
  const bytes = store.read(key, true);
  if (!bytes) throw new UserError(`the payload of ${key.slice(0, 12)} is missing or corrupt (trendc cache verify --repair, then rerun)`);
  const a = decodeArtifact(bytes);
  if (meta.op === 'train') checkModelExport((a.summary as unknown as { spec?: ModelSpec }).spec, key, opts);
  const dir = resolve(out);
  makeDirs(dir);
  const files: string[] = [];
  const write = (name: string, data: Uint8Array | string) => {
    const f = join(dir, name);
    writeFileSync(f, data);
    files.push(f);
  };
  write('summary.json', JSON.stringify({ key, op: meta.op, id: meta.id, backend: meta.backend, params: meta.params, summary: a.summary }, null, 2) + '\n');
  if (meta.op === 'train') {
    const tensors = Object.fromEntries(Object.entries(a.tensors).map(([k, t]) => [k.replace(/^p\//, ''), t]));
    const model = await modelFiles(a.summary as unknown as Record<string, unknown>, tensors, key, opts);
    // The input normalisation travels with the weights (normalize/mean, normalize/std: what
    // `weights=` reads), so an import predicts as the original whatever split its pipeline has.
    const spec = (a.summary as unknown as { spec?: { mean?: number[]; std?: number[] } }).spec;
    const norm: Record<string, TensorData> =
      spec?.mean && spec.std
        ? {
            'normalize/mean': tensor('float32', [spec.mean.length], Float32Array.from(spec.mean)),
            'normalize/std': tensor('float32', [spec.std.length], Float32Array.from(spec.std)),
          }
        : {};
    write('model.safetensors', encodeSafetensors({ ...tensors, ...norm }, { format: 'trend', key, layout: 'NHWC; conv HWIO; dense [in, out]' }));
    write('model.json', JSON.stringify(model.json, null, 2) + '\n');
    if (model.onnx) write('model.onnx', model.onnx);
  } else if (meta.op === 'matrix') {
    const labels = labelsFor(store, key) ?? {};
    const s = a.summary as { attacks: Array<{ tm: Array<Array<number | null>>; transferred: number[][]; eligible: number[][] }> };
    s.attacks.forEach((at, i) => {
      const cols = labels.sources ?? at.tm[0]!.map((_, j) => `source${j}`);
      const rows = labels.targets ?? at.tm.map((_, j) => `target${j}`);
      const name = (labels.attacks?.[i] ?? `attack${i}`).replace(/[^A-Za-z0-9_.=-]+/g, '_');
      write(`tm_${name}.csv`, csv([['target \\ source', ...cols], ...at.tm.map((r, j) => [rows[j]!, ...r])]));
    });
  } else {
    for (const [name, t] of Object.entries(a.tensors)) write(`${name.replace(/\//g, '_')}.npy`, encodeNpy(t));
  }
  return files;
}
