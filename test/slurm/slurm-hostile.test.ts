// Hostile cases for the Slurm executor, each a bug it once had: settings that hide a job from
// the driver, another driver's Ctrl-C, jobs Slurm will never start.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { slurmSettings } from '../../src/runtime/executor/slurm/resources.js';
import { FAKE_OPS, trendcAsync, workdir } from '../helpers/cli.js';
import { ensureSlurm } from '../helpers/slurm.js';

const FAKE_TOY = `dataset toy subset train=400 test=100
train epochs=1 batch=50
model a = mlp width=0.25
model b = mlp width=0.25 seed 2
model c = mlp width=0.25 seed 3
transfer pgd eps=0.2 steps=3 step=0.1 from * to *
ensemble trend k=2
`;
const SLURM = ['--executor', 'slurm', '--cpus', '1', '--mem', '200M', '--poll', '0.2', '--no-report'];

interface Done {
  code: number;
  stdout: string;
  stderr: string;
}

function start(dir: string, args: string[], env: Record<string, string> = {}) {
  const p = trendcAsync(args, { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS, ...env } });
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d) => (stdout += d));
  p.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Done>((resolve) => p.on('close', (code, sig) => resolve({ code: code ?? (sig === 'SIGKILL' ? 137 : -1), stdout, stderr })));
  return { p, done, out: () => stdout + stderr };
}

const run = (dir: string, args: string[], env?: Record<string, string>) => start(dir, args, env).done;
beforeAll(ensureSlurm, 600_000);

describe('the Slurm executor, under hostile use', () => {
  it('rejects --sbatch-arg options that would hide a job from the driver or move its log', async () => {
    // With --job-name overridden, squeue (filtered by the trend- prefix) no longer showed the job:
    // after 10 s the driver declared a running job failed ("ended without writing its status file").
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    for (const arg of ['--job-name=mine', '-J mine', '-Jmine', '--output=x.log', '-o x.log', '--error=e.log', '--chdir=/tmp', '--array=1-3', '--wait']) {
      const r = await run(dir, ['run', 'toy.trend', ...SLURM, `--sbatch-arg=${arg}`]);
      expect(r.code, `${arg}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`--sbatch-arg '${arg}': trendc sets --[a-z-]+ itself`));
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(existsSync(join(dir, 'cache'))).toBe(false);
    // Options that merely start alike are the user's.
    expect(slurmSettings({ sbatchArg: ['--wait-all-nodes=1', '--open-mode=append', '--exclusive', '--qos=long'] }).sbatchArgs).toHaveLength(4);
  }, 60_000);
});
