/**
 * A no-op `trendc run` of a fully cached pipeline with about 1,000 nodes, and `trendc explain`
 * on it, each timed as a whole process (target: < 0.5 s and < 1 s). The cache is filled first
 * with the fake operation set used by the tests (no training involved).
 */
import { spawnSync } from 'node:child_process';
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

/**
 * CLI start-up, each the best of several whole processes: Node alone (`node -e 0`, the floor),
 * `trendc --version`, and `trendc check` of the quickstart (targets: < 100 ms each).
 */
export function benchStartup(quick: boolean): Figure[] {
  const reps = quick ? 5 : 11;
  const best = (f: () => number) => Math.min(...Array.from({ length: reps }, f));
  const node = best(() => {
    const t = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    return performance.now() - t;
  });
  const version = best(() => timeTrendc(['--version'], ROOT));
  const check = best(() => timeTrendc(['check', join('pipelines', 'quickstart.trend')], ROOT));
  return [
    { name: 'cli.node_alone.wall_ms', value: Math.round(node), unit: 'ms' },
    { name: 'cli.version.wall_ms', value: Math.round(version), unit: 'ms' },
    { name: 'cli.check_quickstart.wall_ms', value: Math.round(check), unit: 'ms' },
  ];
}
