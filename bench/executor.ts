/**
 * A no-op `trendc run` of a fully cached pipeline with about 1,000 nodes, and `trendc explain`
 * on it, each timed as a whole process (target: < 0.5 s and < 1 s). The cache is filled first
 * with the fake operation set used by the tests (no training involved).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatedPipeline } from './compiler.js';
import { ROOT, runTrendc, timeTrendc, type Figure } from './figures.js';

export async function benchExecutor(quick: boolean): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'trend-bench-'));
  writeFileSync(join(dir, 'p.trend'), generatedPipeline(31));
  const fake = { TREND_OPS_MODULE: join(ROOT, 'test', 'fixtures', 'fake-ops.mjs') };
  timeTrendc(['run', 'p.trend', '--quiet', '--no-report'], dir, fake);
  const reps = quick ? 3 : 7;
  let run = Infinity;
  let explain = Infinity;
  for (let i = 0; i < reps; i++) {
    run = Math.min(run, timeTrendc(['run', 'p.trend', '--quiet', '--no-report'], dir));
    explain = Math.min(explain, timeTrendc(['explain', 'p.trend'], dir));
  }
  const nodes = JSON.parse(runTrendc(['plan', 'p.trend', '--json'], dir).stdout).nodes.length as number;
  return [
    { name: 'executor.cached_run.nodes', value: nodes, unit: 'nodes' },
    { name: 'executor.cached_run.wall_ms', value: Math.round(run), unit: 'ms' },
    { name: 'executor.explain.wall_ms', value: Math.round(explain), unit: 'ms' },
  ];
}
