/** Small helpers for CLI output: diagnostics, tables, JSON lines. */
import { formatDiagnostics, type Diagnostic } from '../compiler/diagnostics.js';
import { jsonSafe } from '../compiler/jsonsafe.js';

export const EXIT = { ok: 0, failed: 1, user: 2, internal: 70 } as const;

export function printDiagnostics(diags: Diagnostic[], sources: Map<string, string>): void {
  if (diags.length) process.stderr.write(formatDiagnostics(diags, sources) + '\n');
}

export function table(rows: string[][], header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  const widths: number[] = [];
  for (const r of all) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const lines = all.map(fmt);
  if (header) lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
}

export function json(v: unknown): string {
  return JSON.stringify(jsonSafe(v));
}
