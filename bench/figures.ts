import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

/** The package root (benchmarks run from dist/bench/). */
export const ROOT = resolve(import.meta.dirname, '..', '..');

/** Runs `trendc ARGS` in cwd as a whole process: its stdout and wall time in ms (throws if it fails). */
export function runTrendc(args: string[], cwd: string, env: Record<string, string> = {}): { stdout: string; ms: number } {
  const t = performance.now();
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'trendc.js'), ...args], { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`trendc ${args.join(' ')} failed: ${r.stderr}`);
  return { stdout: r.stdout, ms: performance.now() - t };
}

/** The wall time of `trendc ARGS` in ms. */
export const timeTrendc = (args: string[], cwd: string, env: Record<string, string> = {}): number => runTrendc(args, cwd, env).ms;

/** A benchmark figure: printed as a table row, or as one JSON object a line with --json. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

export function printFigures(figs: Figure[], json: boolean): void {
  for (const f of figs) {
    if (json) process.stdout.write(JSON.stringify({ name: f.name, value: f.value, unit: f.unit }) + '\n');
    else process.stdout.write(`${f.name.padEnd(46)} ${String(f.value).padStart(10)} ${f.unit}${f.note ? `   (${f.note})` : ''}\n`);
  }
}

/** The least mean time of `inner` calls of f over `reps` repetitions, after three warm-up calls (ms). */
export function bestMs(f: () => void, reps: number, inner: number): number {
  for (let i = 0; i < 3; i++) f();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    for (let i = 0; i < inner; i++) f();
    best = Math.min(best, (performance.now() - t) / inner);
  }
  return best;
}
