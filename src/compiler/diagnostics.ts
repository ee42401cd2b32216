/** Diagnostics: one type for every user-facing error, rendered as `file:line:col: error: ...`. */
import type { Loc } from './ast.js';

export interface Diagnostic {
  severity: 'error' | 'warning';
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

export function error(message: string, loc: Loc, extra: Partial<Diagnostic> = {}): Diagnostic {
  return { severity: 'error', message, loc, ...extra };
}

/** Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  const d: number[][] = Array.from({ length: m + 1 }, (_, i) => {
    const row = new Array<number>(n + 1).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j <= n; j++) d[0]![j] = j;
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[m]![n]!;
}

/** The closest candidate within a distance that scales with the word's length, if any. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      best = c;
      bestD = d;
    }
  }
  const limit = w.length <= 3 ? 1 : w.length <= 6 ? 2 : 3;
  return best !== undefined && bestD > 0 && bestD <= limit ? best : undefined;
}

export function oneOf(xs: readonly string[]): string {
  return xs.length === 1 ? xs[0]! : `one of: ${xs.join(', ')}`;
}

/** Renders diagnostics with the source line and a caret under the offending span. */
export function formatDiagnostics(diags: Diagnostic[], sources: Map<string, string>): string {
  const out: string[] = [];
  for (const d of diags) {
    const { file, line, col } = d.loc;
    out.push(`${file}:${line}:${col}: ${d.severity}: ${d.message}`);
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
