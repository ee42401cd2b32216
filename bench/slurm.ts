/**
 * The fake-operation pipeline of about 1,000 nodes (31 models, a 31x31 transfer matrix) through
 * the local Slurm with grouping, as one `trendc run --executor slurm` process.
 *
 * What the driver adds: U is the union of the intervals during which at least one of the run's
 * jobs was in Slurm's hands (from its submission, by the driver's clock, to the end its status
 * file gives). Outside U the run waited on the driver alone: start-up, planning, the aggregates it
 * runs itself, noticing a finished job (the poll interval) and submitting the next. The figure is
 * (wall - U) / U, with the target below 10%; per node it is (wall - U) / nodes.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { slurmAnswers } from '../src/runtime/executor/slurm/commands.js';
import { generatedPipeline } from './compiler.js';
import { ROOT, runTrendc, type Figure } from './figures.js';

/** The total length of a union of intervals. */
export function unionLength(intervals: Array<[number, number]>): number {
  const s = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [lo, hi] = [-Infinity, -Infinity];
  for (const [a, b] of s) {
    if (a > hi) {
      if (hi > lo) total += hi - lo;
      [lo, hi] = [a, b];
    } else hi = Math.max(hi, b);
  }
  if (hi > lo) total += hi - lo;
  return total;
}

export async function benchSlurm(): Promise<Figure[]> {
  if ((await slurmAnswers()) !== 'up') throw new Error('no Slurm answers: start one with scripts/slurm/start-local-slurm.sh');
  const dir = mkdtempSync(join(tmpdir(), 'trend-bench-slurm-'));
  writeFileSync(join(dir, 'p.trend'), generatedPipeline(31));
  const fake = { TREND_OPS_MODULE: join(ROOT, 'test', 'fixtures', 'fake-ops.mjs') };
  const args = ['run', 'p.trend', '--executor', 'slurm', '--cpus', '1', '--mem', '100M', '--poll', '0.5', '--quiet', '--no-report'];
  const { ms: wall } = runTrendc(args, dir, fake);
  const jobsDir = join(dir, 'cache', 'slurm', 'jobs');
  const intervals: Array<[number, number]> = [];
  for (const name of readdirSync(jobsDir)) {
    const job = JSON.parse(readFileSync(join(jobsDir, name, 'job.json'), 'utf8')) as { submittedAt: string };
    const st = JSON.parse(readFileSync(join(jobsDir, name, 'status.json'), 'utf8')) as { end: number };
    intervals.push([Date.parse(job.submittedAt), st.end * 1000]);
  }
  const nodes = JSON.parse(runTrendc(['plan', 'p.trend', '--json'], dir).stdout).nodes.length as number;
  const inSlurm = unionLength(intervals);
  const driver = Math.max(0, wall - inSlurm);
  return [
    { name: 'slurm.pipeline.nodes', value: nodes, unit: 'nodes' },
    { name: 'slurm.pipeline.jobs', value: intervals.length, unit: 'jobs' },
    { name: 'slurm.pipeline.wall_s', value: +(wall / 1000).toFixed(1), unit: 's' },
    { name: 'slurm.pipeline.in_slurm_s', value: +(inSlurm / 1000).toFixed(1), unit: 's' },
    { name: 'slurm.driver_overhead.pct', value: +((100 * driver) / inSlurm).toFixed(1), unit: '%' },
    { name: 'slurm.driver_overhead.per_node_ms', value: +(driver / nodes).toFixed(1), unit: 'ms' },
  ];
}
