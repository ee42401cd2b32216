/**
 * Reports: a directory with a Markdown summary, SVG figures and CSV/JSON tables, written from a
 * run record and the cache alone (so `trendc report RUN` can regenerate it at any time).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { RunRecord, Store } from '../store/store.js';
import { sections } from './sections.js';

export async function writeReport(store: Store, run: RunRecord, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const md: string[] = [];
  const counts: Record<string, number> = {};
  for (const n of run.nodes) counts[n.status] = (counts[n.status] ?? 0) + 1;
  md.push(`# ${titleOf(run)}`, '');
  md.push(
    `Run \`${run.id}\` of \`${relative(process.cwd(), run.pipeline) || run.pipeline}\`: **${run.status}**; ` +
      `${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ')}; backend \`${run.backend ?? 'none needed (all cached)'}\`; trend ${run.packageVersion}.`,
    '',
  );
  const ctx = { store, run, dir, files: [] as string[] };
  for (const s of sections) {
    // A section that cannot read its artifacts (an unfamiliar summary shape, an old cache entry)
    // says so in the report instead of failing the run that produced the artifacts.
    let part: string[];
    try {
      part = await s(ctx);
    } catch (e) {
      part = [`> The ${s.name || 'unnamed'} section could not be rendered: ${(e as Error).message}`];
    }
    if (part.length) md.push(...part, '');
  }
  const failed = run.nodes.filter((n) => n.status === 'failed');
  if (failed.length) {
    md.push('## Failed steps', '');
    for (const f of failed) md.push(`- \`${f.id}\` (line ${f.line}): ${f.error ?? ''}`);
    md.push('');
  }
  md.push('## Steps', '', '| node | op | status | time |', '|---|---|---|---|');
  for (const n of run.nodes) md.push(`| \`${n.id}\` | ${n.op} | ${n.status} | ${n.ms !== undefined ? `${(n.ms / 1000).toFixed(1)}s` : ''} |`);
  writeFileSync(join(dir, 'index.md'), md.join('\n') + '\n');
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ id: run.id, pipeline: run.pipeline, status: run.status, backend: run.backend, packageVersion: run.packageVersion, startedAt: run.startedAt, endedAt: run.endedAt, nodes: run.nodes.map(({ params: _p, ...n }) => n) }, null, 2) + '\n');
}

function titleOf(run: RunRecord): string {
  const m = /report\s+.*title="([^"]*)"/.exec(run.source);
  if (m) return m[1]!;
  const first = run.source.split('\n').find((l) => l.startsWith('#'));
  return first ? first.replace(/^#+\s*/, '') : relative(process.cwd(), run.pipeline);
}
