/** The compiler pipeline in one place: text -> AST -> checked AST -> DAG, with diagnostics. */
import { readFileSync } from 'node:fs';
import type { Program } from './ast.js';
import { check } from './check.js';
import type { CheckedProgram } from './checked.js';
import { buildDag, type Dag } from './dag.js';
import { UserError, type Diagnostic } from './diagnostics.js';
import { initHash } from './hash.js';
import { parse } from './parse.js';

export interface Checked {
  source: string;
  program: Program;
  checked?: CheckedProgram;
  diagnostics: Diagnostic[];
}

export const MAX_FILE_BYTES = 16 * 1024 * 1024;

export function readSource(file: string): string {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `${file}: no such file` : code === 'EISDIR' ? `${file}: is a directory, not a .trend file` : `${file}: cannot read (${code ?? String(e)})`);
  }
  if (buf.length > MAX_FILE_BYTES) throw new UserError(`${file}: ${buf.length} bytes is larger than the ${MAX_FILE_BYTES}-byte limit for a pipeline`);
  return buf.toString('utf8');
}

/** Parse and check; never throws for bad input (errors come back as diagnostics). */
export function checkSource(source: string, file: string): Checked {
  const parsed = parse(source, file);
  const checked = check(parsed.program);
  // Parse errors first (file order), then semantic errors (file order).
  const byPos = (a: Diagnostic, b: Diagnostic) => a.loc.line - b.loc.line || a.loc.col - b.loc.col;
  const diagnostics = [...parsed.diagnostics.sort(byPos), ...checked.diagnostics.sort(byPos)];
  // Semantic results are unreliable when statements failed to parse: keep them but mark invalid.
  const ok = parsed.diagnostics.length === 0 && checked.checked;
  return { source, program: parsed.program, ...(ok ? { checked: checked.checked } : {}), diagnostics };
}

export async function planChecked(checked: CheckedProgram, packageVersion: string, datasetIdentity: string): Promise<Dag> {
  await initHash();
  return buildDag(checked, { packageVersion, datasetIdentity });
}
