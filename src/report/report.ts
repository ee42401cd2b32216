/**
 * Reports: a directory with a Markdown summary, SVG figures and CSV/JSON tables, and the same
 * report as one self-contained HTML page with live charts (index.html), written from a run record
 * and the cache alone (so `trendc report RUN` can regenerate it at any time).
 */
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from '../compiler/parse.js';
import type { RunRecord, Store } from '../store/store.js';
import { renderHtml, type Chart } from './html.js';
import { sections } from './sections.js';
import { DAGGER, SMALL_N, SMALL_NOTE } from './stats.js';
import { makeDirs } from '../common/dirs.js';

export async function writeReport(store: Store, run: RunRecord, dir: string): Promise<void> {
  makeDirs(dir);
  const md: string[] = [];
  const counts: Record<string, number> = {};
  for (const n of run.nodes) counts[n.status] = (counts[n.status] ?? 0) + 1;
  md.push(`# ${titleOf(run)}`, '');
  md.push(
    `Run \`${run.id}\` of \`${relative(process.cwd(), run.pipeline) || run.pipeline}\`: **${run.status}**; ` +
      `${Object.entries(counts)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')}; backend \`${run.backend ?? 'none needed (all cached)'}\`; trend ${run.packageVersion}.`,
    '',
  );
  md.push(
    'Accuracies, success rates and transfer-matrix cells are written `value [low, high] (n=…)`: the 95% Wilson score interval ' +
      `and the number of images the value is a fraction of; ${DAGGER} marks a figure that rests on fewer than ${SMALL_N} images. CSV files beside each table hold the same numbers unformatted, with \`n\`, \`lo95\` and \`hi95\` columns.`,
    '',
  );
  const ctx = { store, run, dir, files: [] as string[], charts: new Map<string, Chart>() };
  for (const s of sections) {
    // A section that cannot read its artifacts (an unfamiliar summary shape, an old cache entry)
    // says so in the report instead of failing the run that produced the artifacts.
    let part: string[];
    try {
      part = await s(ctx);
    } catch (e) {
      part = [`> The ${s.name || 'unnamed'} section could not be rendered: ${(e as Error).message}`];
    }
    while (part.length && part[part.length - 1] === '') part = part.slice(0, -1);
    if (part.length) md.push(...part, '', ...(part.some((l) => l.includes(DAGGER)) ? [SMALL_NOTE, ''] : []));
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
  writeFileSync(join(dir, 'index.html'), renderHtml(titleOf(run), md.join('\n') + '\n', ctx.charts));
  writeFileSync(
    join(dir, 'run.json'),
    JSON.stringify(
      {
        id: run.id,
        pipeline: run.pipeline,
        status: run.status,
        backend: run.backend,
        packageVersion: run.packageVersion,
        startedAt: run.startedAt,
        endedAt: run.endedAt,
        nodes: run.nodes.map(({ params: _p, ...n }) => n),
      },
      null,
      2,
    ) + '\n',
  );
}

/**
 * The report title: the `report title="..."` statement of the run's pipeline (read from its
 * syntax tree, so a commented-out statement does not count and escaped quotes are kept), else
 * the first comment on a line of its own, else the pipeline path.
 */
export function titleOf(run: Pick<RunRecord, 'source' | 'pipeline'>): string {
  const program = parse(run.source, run.pipeline).program;
  for (const st of program.statements) {
    if (st.kind !== 'report') continue;
    const title = st.params.find((p) => p.key === 'title')?.value;
    if (title?.kind === 'string') return title.value.replace(/\s*\n\s*/g, ' ');
  }
  const first = program.comments.find((c) => !c.trailing);
  const text = first?.text.replace(/^#+\s*/, '').trim();
  return text || relative(process.cwd(), run.pipeline);
}
