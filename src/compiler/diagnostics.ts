/** Diagnostics: one type for every user-facing error, rendered as `file:line:col: error[E031]: ...`. */
import type { Loc } from './ast.js';
import { CODES, type Code } from './codes.js';

export interface Diagnostic {
  severity: 'error' | 'warning';
  /** Stable code from src/compiler/codes.ts (E0xx errors, W0xx warnings). */
  code?: Code;
  message: string;
  loc: Loc;
  /** What was expected, as a short phrase ("one of: pgd, cw, deepfool"). */
  expected?: string;
  /** A replacement suggestion ("did you mean 'pgd'?"). */
  suggestion?: string;
  /** Extra explanation. */
  note?: string;
}

/** An error the user caused (bad file, bad flag, missing data): exit code 2, no stack trace. */
export class UserError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(message: string, diagnostics: Diagnostic[] = []) {
    super(message);
    this.name = 'UserError';
    this.diagnostics = diagnostics;
  }
}

/** An error without a code: only for internal checks that no pipeline can trigger (use diag()). */
export function error(message: string, loc: Loc, extra: Partial<Diagnostic> = {}): Diagnostic {
  return { severity: 'error', message, loc, ...extra };
}

/** A diagnostic with its code; the severity is the code's. */
export function diag(code: Code, message: string, loc: Loc, extra: Omit<Partial<Diagnostic>, 'code' | 'severity'> = {}): Diagnostic {
  return { severity: CODES[code].severity, code, message, loc, ...extra };
}

export { didYouMean, editDistance, suggest } from '../common/names.js';

export function oneOf(xs: readonly string[]): string {
  return xs.length === 1 ? xs[0]! : `one of: ${xs.join(', ')}`;
}

/** Renders diagnostics with the source line and a caret under the offending span. */
export function formatDiagnostics(diags: Diagnostic[], sources: Map<string, string>): string {
  const out: string[] = [];
  for (const d of diags) {
    const { file, line, col } = d.loc;
    out.push(`${file}:${line}:${col}: ${d.severity}${d.code ? `[${d.code}]` : ''}: ${d.message}`);
    const src = sources.get(file);
    const text = src?.split(/\r?\n/)[line - 1];
    if (text !== undefined && line > 0) {
      const shown = text.length > 200 ? text.slice(0, 200) + '…' : text;
      const gutter = String(line).length;
      const width = d.loc.endLine === line ? Math.max(1, d.loc.endCol - col + 1) : Math.max(1, text.length - col + 1);
      out.push(`  ${String(line)} | ${printable(shown)}`);
      out.push(`  ${' '.repeat(gutter)} | ${' '.repeat(Math.max(0, Math.min(col - 1, 200)))}${'^'.repeat(Math.min(width, 80))}`);
    }
    if (d.expected) out.push(`  expected ${d.expected}`);
    if (d.suggestion) out.push(`  did you mean ${d.suggestion}?`);
    if (d.note) out.push(`  note: ${d.note}`);
  }
  return out.join('\n');
}

function printable(s: string): string {
  // Replace control characters (binary input) so the terminal is not garbled.
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '\uFFFD').replace(/\t/g, ' ');
}
