// Hostile cases for the Slurm executor, each a bug it once had: settings that hide a job from
// the driver, another driver's Ctrl-C, jobs Slurm will never start.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { slurmSettings } from '../../src/runtime/executor/slurm/resources.js';
import { summaryCounts, workdir } from '../helpers/cli.js';
import { ensureSlurm, executions, FAKE_TOY, jobsOf, runTrendc as run, scancel, SLURM, start, trendJobs, until } from '../helpers/slurm.js';

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

  it("another driver's Ctrl-C does not fail the nodes this driver waited for from its jobs", async () => {
    // B adopted A's training jobs; A was interrupted and cancelled them. B failed its run with
    // "interrupted (slurm job ...)" though B was never interrupted; now B submits them again.
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const log = join(dir, 'exec.log');
    const env = { TREND_FAKE_SLEEP_MS: '60000', TREND_FAKE_SLEEP_ONLY: 'train/', TREND_FAKE_LOG: log };
    const a = start(dir, ['run', 'toy.trend', ...SLURM], env);
    await until("A's training jobs running", async () => (await jobsOf(join(dir, 'cache'))).filter((j) => j.state === 'RUNNING').length === 3);
    const b = start(dir, ['run', 'toy.trend', ...SLURM], { ...env, TREND_FAKE_SLEEP_MS: '1000' });
    await until("B waiting for A's jobs", () => (b.out().match(/waiting for slurm job/g) ?? []).length === 3);
    a.p.kill('SIGINT');
    expect((await a.done).code).toBe(130);
    const r = await b.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/train\/a: slurm job \d+ of another driver ended without computing it \(.*\); submitting it again/);
    expect(summaryCounts(r.stdout)).toMatchObject({ failed: 0, skipped: 0 });
    // Only the training A's jobs had begun is computed again; everything else once.
    const counts = executions(log);
    expect(counts.size).toBe(22);
    expect([...counts.entries()].filter(([id, n]) => n !== (id.startsWith('train/') ? 2 : 1))).toEqual([]);
  }, 180_000);

  it('a job Slurm will never start fails its node at once instead of leaving the run waiting', async () => {
    // More CPUs than the partition has: Slurm accepts the job and leaves it PENDING
    // (PartitionConfig) for ever; the driver used to wait in silence.
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const t0 = Date.now();
    const r = await run(dir, ['run', 'toy.trend', ...SLURM, '--op-resources', 'train:cpus=4096', '--only', 'train/a']);
    expect(r.code, r.stderr).toBe(1);
    expect(Date.now() - t0).toBeLessThan(30_000);
    const m =
      /^error: train\/a \(toy\.trend:3\): Slurm will never start its job \(pending with reason \w+\): .*cpus=4096.*--op-resources train:\.\.\. \(slurm job (\d+)\)$/m.exec(
        r.stderr,
      );
    expect(m, r.stderr).toBeTruthy();
    // The job is cancelled, not left in the queue.
    const job = (await trendJobs()).get(m![1]!);
    expect(job?.state ?? 'CANCELLED').toMatch(/CANCELLED|COMPLETING/);
  }, 60_000);

  it('Ctrl-C while jobs are still pending ends at once', async () => {
    // A job cancelled before it ran writes no status file; the driver waited 10 s for one.
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const d = start(dir, ['run', 'toy.trend', ...SLURM, '--sbatch-arg=--begin=now+1hour']);
    await until('training jobs pending', async () => (await jobsOf(join(dir, 'cache'))).filter((j) => j.state === 'PENDING').length === 3);
    const t0 = Date.now();
    d.p.kill('SIGINT');
    const r = await d.done;
    expect(r.code).toBe(130);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(r.stderr.match(/^error: train\/\w \(toy\.trend:\d\): interrupted: the job was cancelled \(slurm job \d+, log /gm)).toHaveLength(3);
    for (const j of await jobsOf(join(dir, 'cache'))) expect(j.state).toBe('CANCELLED');
  }, 60_000);

  it('--poll outside 0.1 s to an hour is a user error', async () => {
    // --poll 3000000 overflowed Node's timer: a TimeoutOverflowWarning per look and squeue every
    // millisecond; --poll 0.0000001 polled without a pause.
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    for (const poll of ['3000000', '0.0000001', '0.05']) {
      const r = await run(dir, ['run', 'toy.trend', ...SLURM, '--poll', poll, '--only', 'train/a']);
      expect(r.code, `--poll ${poll}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`--poll must be between 0.1 and 3600 seconds, got '${poll}'`);
    }
    expect(existsSync(join(dir, 'cache'))).toBe(false);
    expect(slurmSettings({ poll: '3600' }).pollMs).toBe(3_600_000);
    expect(slurmSettings({ poll: '0.1' }).pollMs).toBe(100);
  }, 60_000);

  it('a cancelled job stops its worker cleanly: it releases its lock, and the error says scancel', async () => {
    // Slurm's SIGTERM and the batch script's forwarded one both reached the worker; the second
    // killed it outright (no outcome, its node lock left behind). When it did survive, the
    // driver reported its outcome "interrupted" instead of why the job ended.
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    // The fake operation ignores the stop and ends its 3 s of work (within Slurm's KillWait).
    const d = start(dir, ['run', 'toy.trend', ...SLURM], { TREND_FAKE_SLEEP_MS: '3000', TREND_FAKE_SLEEP_ONLY: 'train/' });
    const cache = join(dir, 'cache');
    const jobs = await until('training nodes running', async () => {
      const running = (await jobsOf(cache)).filter((j) => j.state === 'RUNNING');
      const working = running.filter((j) =>
        readdirSync(join(cache, 'slurm', 'jobs', j.name)).some(
          (f) => f.endsWith('.out') && /\] train\/\w \.\.\./.test(readFileSync(join(cache, 'slurm', 'jobs', j.name, f), 'utf8')),
        ),
      );
      return working.length === 3 ? working : undefined;
    });
    await scancel(jobs.map((j) => j.id));
    const r = await d.done;
    expect(r.code).toBe(1);
    for (const n of ['a', 'b', 'c'])
      expect(r.stderr).toMatch(
        new RegExp(`error: train/${n} \\(toy\\.trend:\\d\\): the job was cancelled \\(scancel\\) before the node finished \\(slurm job`),
      );
    for (const j of jobs) {
      const log = readFileSync(join(cache, 'slurm', 'jobs', j.name, `slurm-${j.id}.out`), 'utf8');
      expect(log).toMatch(/FAILED train\/\w \(.*\): interrupted/);
    }
    // Only process registrations may remain in locks/, no node lock.
    expect(readdirSync(join(cache, 'locks')).filter((f) => !f.startsWith('proc-'))).toEqual([]);
  }, 120_000);

  it('runs from a directory whose path has a space in it', async () => {
    // The job's --output and --chdir directives were unquoted: sbatch rejected every job
    // ("Invalid directive found in batch script").
    const dir = join(workdir(), 'my runs');
    mkdirSync(dir);
    writeFileSync(join(dir, 'toy.trend'), FAKE_TOY);
    const r = await run(dir, ['run', 'toy.trend', ...SLURM, '--only', 'train/a']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryCounts(r.stdout)).toMatchObject({ ran: 2, failed: 0 });
    const log = /log (.+slurm-\d+\.out)\)/.exec(r.stdout + r.stderr)![1]!;
    expect(readFileSync(log, 'utf8')).toMatch(/ran train\/a/);
  }, 60_000);
});
