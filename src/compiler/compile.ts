/** The compiler pipeline in one place: text -> AST -> checked AST -> DAG, with diagnostics. */
import { closeSync, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import type { Program, Statement } from './ast.js';
import { check } from './check.js';
import type { CheckedProgram } from './checked.js';
import { buildDag, type Dag } from './dag.js';
import { diag, UserError, type Diagnostic } from './diagnostics.js';
import { initHash } from './hash.js';
import { parse } from './parse.js';

export interface Checked {
  source: string;
  program: Program;
  checked?: CheckedProgram;
  diagnostics: Diagnostic[];
}

/** Pipeline files larger than this are refused (a pipeline is a few kilobytes of text). */
export const MAX_FILE_BYTES = 1024 * 1024;

function fileKind(st: Stats): string {
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

/**
 * Reads a pipeline file. Only regular files of at most MAX_FILE_BYTES are read: a device, a pipe
 * or a socket is refused from its stat (before opening it: opening a pipe with no writer would
 * block), and at most MAX_FILE_BYTES + 1 bytes are ever read (a file that grows is caught too).
 */
export function readSource(file: string): string {
  const cannot = (e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    const why: Record<string, string> = { EACCES: 'permission denied', ENOTDIR: 'a part of the path is not a directory', ELOOP: 'too many symbolic links' };
    if (code === 'ENOENT') return new UserError(`${file}: no such file`);
    if (code === 'EISDIR') return new UserError(`${file}: is a directory, not a .trend file`);
    return new UserError(`${file}: cannot read (${(code && why[code] ? `${why[code]}, ${code}` : code) ?? String(e)})`);
  };
  const tooLarge = (size: number) => new UserError(`${file}: ${size} bytes is larger than the 1 MiB limit for a pipeline file (${MAX_FILE_BYTES} bytes)`);
  let st: Stats;
  try {
    st = statSync(file);
  } catch (e) {
    throw cannot(e);
  }
  if (st.isDirectory()) throw new UserError(`${file}: is a directory, not a .trend file`);
  if (!st.isFile()) throw new UserError(`${file}: not a regular file (${fileKind(st)}); a pipeline must be a regular .trend file`);
  if (st.size > MAX_FILE_BYTES) throw tooLarge(st.size);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw cannot(e);
  }
  try {
    const again = fstatSync(fd);
    if (!again.isFile()) throw new UserError(`${file}: not a regular file (${fileKind(again)}); a pipeline must be a regular .trend file`);
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > MAX_FILE_BYTES) throw tooLarge(Math.max(n, fstatSync(fd).size));
    }
    return buf.toString('utf8', 0, n);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw cannot(e);
  } finally {
    closeSync(fd);
  }
}

/** Parse and check; never throws for bad input (errors come back as diagnostics). */
export function checkSource(source: string, file: string): Checked {
  const parsed = parse(source, file);
  const checked = check(parsed.program);
  // Parse errors first (file order), then semantic errors (file order).
  const byPos = (a: Diagnostic, b: Diagnostic) => a.loc.line - b.loc.line || a.loc.col - b.loc.col;
  const diagnostics = [...parsed.diagnostics.sort(byPos), ...checked.diagnostics.sort(byPos)];
  // A pipeline that declares nothing to compute would run an implicit full-MNIST dataset node.
  const nothing = parsed.diagnostics.length === 0 ? declaresNothing(parsed.program) : undefined;
  if (nothing) diagnostics.unshift(nothing);
  // Semantic results are unreliable when statements failed to parse: keep them but mark invalid.
  const ok = parsed.diagnostics.length === 0 && !nothing && checked.checked;
  return { source, program: parsed.program, ...(ok ? { checked: checked.checked } : {}), diagnostics };
}

/** Statements that declare something to compute (the rest are settings for them). */
const STEP_STATEMENTS = new Set<Statement['kind']>(['dataset', 'model', 'smooth', 'ensemble', 'transfer', 'evaluate']);

/** An error when the program has no statement that declares a step (empty, comments only, or only settings). */
function declaresNothing(program: Program): Diagnostic | undefined {
  if (program.statements.some((s) => STEP_STATEMENTS.has(s.kind))) return undefined;
  const first = program.statements[0];
  const loc = first?.loc ?? { file: program.file, line: 1, col: 1, endLine: 1, endCol: 1 };
  const what = first
    ? `only ${[...new Set(program.statements.map((s) => `'${s.kind}'`))].join(', ')} settings`
    : program.comments.length
      ? 'only comments'
      : 'an empty file';
  return diag('E010', `this pipeline declares nothing to compute (${what})`, loc, {
    expected: "a step: 'dataset', 'model', 'smooth', 'ensemble', 'transfer' or 'evaluate'",
    note: "for example 'model a = cnn' (see docs/language.md)",
  });
}

/** `weights`: each imported weights file's checksum by resolved path (runtime/models/inspect-weights.ts). */
export async function planChecked(checked: CheckedProgram, packageVersion: string, datasetIdentity: string, weights?: Record<string, string>): Promise<Dag> {
  await initHash();
  return buildDag(checked, { packageVersion, datasetIdentity, ...(weights ? { weights } : {}) });
}
