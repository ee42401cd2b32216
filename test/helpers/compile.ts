import { checkSource, planChecked } from '../../src/compiler/compile.js';
import type { Dag } from '../../src/compiler/dag.js';
import { formatDiagnostics, type Diagnostic } from '../../src/compiler/diagnostics.js';
import { datasetIdentity } from '../../src/runtime/data/files.js';

export function diagnose(src: string, file = 'test.trend'): Diagnostic[] {
  return checkSource(src, file).diagnostics;
}

export function render(src: string, file = 'test.trend'): string {
  return formatDiagnostics(diagnose(src, file), new Map([[file, src]]));
}

const identities = new Map<string, Promise<string>>();

/**
 * Plans a pipeline as the CLI does, with the dataset files' real identity (the dataset step
 * checks what it reads against it; hashed once per dataset and path in this process), or the
 * identity given.
 */
export async function plan(src: string, file = 'test.trend', identity?: string): Promise<Dag> {
  const c = checkSource(src, file);
  if (!c.checked) throw new Error('pipeline has errors:\n' + formatDiagnostics(c.diagnostics, new Map([[file, src]])));
  const d = c.checked.dataset;
  const memo = `${d.name}|${d.path ?? ''}`;
  if (identity === undefined && !identities.has(memo)) identities.set(memo, datasetIdentity(d));
  return planChecked(c.checked, '0.0.0-test', identity ?? (await identities.get(memo)!));
}

export function keysById(dag: Dag): Map<string, string> {
  return new Map(dag.nodes.map((n) => [n.id, n.key]));
}

export const QUICKSTART = `# TREND at CPU scale
dataset mnist subset train=12000 test=1000
train epochs=3 batch=128 lr=0.01 optimizer sgd

model fp     = cnn
model rn18q1 = resnet18 quant input 1bit optimizer sgd
model q2     = cnn quant input 2bit
model ht     = cnn quant input halftone
model w2     = cnn quant weight 2bit
model a2     = cnn quant activation 2bit
model adam   = cnn optimizer adam seed 2

transfer pgd eps=8/255 from * to *
transfer cw from fp, adam to q2, ht
ensemble trend k=3
`;
