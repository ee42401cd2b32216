/**
 * Plan-time reading of imported weights (`model m = ARCH weights="file.safetensors"`): each file
 * is read once, hashed (its checksum goes into the model's key) and checked against the
 * architecture the statement declares, so a missing file, a missing, extra or mis-shaped tensor
 * is an error at the clause (file:line:col) before anything runs or any store is made.
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { checksumBytes, initHash } from '../../common/checksum.js';
import type { CheckedProgram, CModel } from '../../compiler/checked.js';
import type { Code } from '../../compiler/codes.js';
import { diag, type Diagnostic } from '../../compiler/diagnostics.js';
import { DATASETS } from '../../compiler/schema.js';
import type { ParamDecl } from './net.js';
import { parseSafetensors, SafetensorsError, type SafetensorsFile } from './safetensors.js';
import { describeProblem, detectLayout, fileParams, matchWeights, type WeightsProblem } from './weights.js';

export interface WeightsInspection {
  /** Each readable file's checksum, by resolved path (what the DAG builder keys imports by). */
  checksums: Record<string, string>;
  diagnostics: Diagnostic[];
}

type Read = { file: SafetensorsFile; checksum: string } | { error: string };

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
};

/** The file's bytes; refuses what is not a regular file (a FIFO would block). */
function readBytes(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'NOTFILE' });
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads, hashes and parses one weights file; an unreadable or malformed file gives the reason. */
export function readWeightsFile(path: string): Read {
  let bytes: Uint8Array;
  try {
    bytes = readBytes(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    return { error: code === 'NOTFILE' ? 'not a regular file' : REASONS[code] ? `${REASONS[code]} (${code})` : (e as Error).message };
  }
  try {
    return { file: parseSafetensors(bytes), checksum: checksumBytes(bytes) };
  } catch (e) {
    if (e instanceof SafetensorsError) return { error: e.message };
    throw e;
  }
}

const CODE: Record<WeightsProblem['kind'], Code> = { missing: 'E064', extra: 'E065', shape: 'E066', dtype: 'E066' };

/** The parameters a checked model has (the zoo builds the network; this loads TF.js). */
async function declsOf(m: CModel, program: CheckedProgram): Promise<ParamDecl[]> {
  const { modelDecls } = await import('./model.js');
  const ds = DATASETS[program.dataset.name]!;
  const noise = Object.fromEntries(Object.entries(m.noise).map(([k, n]) => [k, { learned: n.learned, sd: n.sd.toNumber() }]));
  return modelDecls({
    arch: m.arch,
    width: m.width.toNumber(),
    shape: ds.shape,
    classes: ds.classes,
    input: null,
    weightBits: m.weightBits ?? null,
    activationBits: m.activationBits ?? null,
    noise,
  });
}

/** Checks one model's file against its architecture: one diagnostic per tensor that does not fit. */
export function weightsDiagnostics(m: CModel, read: Read, decls: ParamDecl[], shape: [number, number, number]): Diagnostic[] {
  const w = m.weights!;
  const what = `model ${m.name}: weights file '${w.written}'`;
  if ('error' in read) return [diag('E063', `${what} cannot be read: ${read.error}`, w.loc, { note: `resolved relative to the .trend file: ${w.path}` })];
  const layout = detectLayout(read.file);
  const arch = `${m.arch} width=${m.width.toString()}`;
  const problems = matchWeights(read.file, fileParams({ arch: m.arch, shape }, decls, layout), layout, shape[2]);
  const note = `read in ${layout === 'trend' ? "trend's layout" : "PyTorch's layout"}; docs/import.md lists the names ${m.arch} takes`;
  return problems.map((p) => diag(CODE[p.kind], `${what} ${describeProblem(p, arch)}`, w.loc, { note }));
}

/** Reads every imported weights file of the program once; hashes it and checks it against each model that uses it. */
export async function inspectWeights(program: CheckedProgram): Promise<WeightsInspection> {
  const imported = program.models.filter((m) => m.weights);
  const out: WeightsInspection = { checksums: {}, diagnostics: [] };
  if (!imported.length) return out;
  await initHash();
  const files = new Map<string, Read>();
  const shape = DATASETS[program.dataset.name]!.shape;
  for (const m of imported) {
    const path = m.weights!.path;
    if (!files.has(path)) files.set(path, readWeightsFile(path));
    const read = files.get(path)!;
    if (!('error' in read)) out.checksums[path] = read.checksum;
    out.diagnostics.push(...weightsDiagnostics(m, read, 'error' in read ? [] : await declsOf(m, program), shape));
  }
  return out;
}
