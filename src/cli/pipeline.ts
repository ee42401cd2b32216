/** Loading a pipeline file for a command: read, parse, check, report diagnostics, plan. */
import { resolve } from 'node:path';
import { checkSource, planChecked, readSource, type Checked } from '../compiler/compile.js';
import type { CheckedProgram } from '../compiler/checked.js';
import type { Dag } from '../compiler/dag.js';
import { UserError } from '../compiler/diagnostics.js';
import { datasetIdentity, type IdentityMemo } from '../runtime/data/files.js';
import { PACKAGE_VERSION } from '../version.js';
import { ExitError, printDiagnostics } from './output.js';
import { inspectImported } from './weights.js';

export { ExitError } from './output.js';

export interface Loaded extends Checked {
  file: string;
  checked: CheckedProgram;
}

/** Reads (or takes the text given) and checks a pipeline; on errors prints them and throws ExitError(2). */
export function loadChecked(file: string, text?: string): Loaded {
  const source = text ?? readSource(file);
  const c = checkSource(source, file);
  printDiagnostics(c.diagnostics, new Map([[file, source]]));
  if (!c.checked || c.diagnostics.some((d) => d.severity === 'error')) {
    const n = c.diagnostics.filter((d) => d.severity === 'error').length;
    throw new ExitError(2, `${file}: ${n} error${n === 1 ? '' : 's'}`);
  }
  return { ...c, file, checked: c.checked };
}

/**
 * Checks and plans a pipeline (`text`: its source as saved, else the file's). The dataset's
 * identity is computed from its files (hashes memoised in `memo`), or taken as given (`identity`:
 * a Slurm job plans with its driver's).
 */
export async function loadPlan(file: string, memo?: IdentityMemo, text?: string, identity?: string): Promise<{ loaded: Loaded; dag: Dag }> {
  const loaded = loadChecked(file, text);
  // Imported weights are read, hashed and checked against their architectures first: a bad file
  // stops the command before anything is computed or written.
  const weights = await inspectImported(loaded.checked);
  if (weights.diagnostics.length) {
    printDiagnostics(weights.diagnostics, new Map([[file, loaded.source]]));
    const n = weights.diagnostics.filter((d) => d.severity === 'error').length;
    if (n) throw new ExitError(2, `${file}: ${n} error${n === 1 ? '' : 's'} in imported weights`);
  }
  const id = identity ?? (await datasetIdentity(loaded.checked.dataset, memo));
  try {
    const dag = await planChecked(loaded.checked, PACKAGE_VERSION, id, weights.checksums);
    return { loaded, dag };
  } catch (e) {
    if (e instanceof UserError) {
      printDiagnostics(e.diagnostics, new Map([[file, loaded.source]]));
      throw new ExitError(2, e.message);
    }
    throw e;
  }
}

export function pipelineId(file: string): string {
  return resolve(file);
}
