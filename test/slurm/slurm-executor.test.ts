// The Slurm executor against a real Slurm (test/helpers/slurm.ts starts a local one when none
// answers): same bytes as the local executor, failures, cancellations, time limits, a killed
// driver, two drivers, workers without the LMDB index, Ctrl-C.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { summaryCounts, workdir } from '../helpers/cli.js';
import { ensureSlurm, executions, FAKE_TOY, jobsOf, runTrendc as run, scancel, SLURM, start, until } from '../helpers/slurm.js';

const REAL = `dataset mnist subset train=300 test=60
train epochs=1 batch=50
model a = mlp width=0.25
model b = cnn width=0.125 seed 2
transfer pgd eps=0.2 steps=2 step=0.1 from * to *
`;

/** key -> payload checksum, from the store's node records. */
function payloads(cache: string): Map<string, string> {
  const m = new Map<string, string>();
  const nodes = join(cache, 'nodes');
  for (const d of readdirSync(nodes)) {
    for (const f of readdirSync(join(nodes, d))) {
      const r = JSON.parse(readFileSync(join(nodes, d, f), 'utf8')) as { key: string; checksum?: string; addr?: string; object?: string };
      m.set(r.key, JSON.stringify([r.checksum, r.addr, r.object]));
    }
  }
  return m;
}

beforeAll(ensureSlurm, 600_000);

describe('trendc run --executor slurm', () => {
  it('stores the same bytes as the local executor, and records where each node ran', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const s = await run(dir, ['run', 'toy.trend', ...SLURM, '--cache', 'slurm-cache']);
    expect(s.code, s.stderr).toBe(0);
    expect(summaryCounts(s.stdout)).toMatchObject({ ran: 22, failed: 0 });
    const l = await run(dir, ['run', 'toy.trend', '--no-report', '--cache', 'local-cache']);
    expect(l.code, l.stderr).toBe(0);
    const [a, b] = [payloads(join(dir, 'slurm-cache')), payloads(join(dir, 'local-cache'))];
    expect(a.size).toBe(22);
    expect([...a.entries()].sort()).toEqual([...b.entries()].sort());
    const runs = JSON.parse((await run(dir, ['runs', '--json', '--cache', 'slurm-cache'])).stdout) as Array<{ id: string; executor: string }>;
    expect(runs[0]!.executor).toBe('slurm');
    const rec = JSON.parse(readFileSync(join(dir, 'slurm-cache', 'runs', `${runs[0]!.id}.json`), 'utf8')) as {
      nodes: Array<{ id: string; op: string; placement?: { host: string; executor: string; jobId?: string; queueMs?: number; wallMs?: number } }>;
    };
    for (const n of rec.nodes) {
      expect(n.placement?.executor).toBe('slurm');
      expect(n.placement?.host).toBeTruthy();
      // Aggregates and the dataset run in the driver; the rest in jobs, with their queue wait.
      if (['dataset', 'matrix', 'select'].includes(n.op)) expect(n.placement?.jobId).toBeUndefined();
      else expect(n.placement).toMatchObject({ jobId: expect.stringMatching(/^\d+$/), queueMs: expect.any(Number), wallMs: expect.any(Number) });
    }
    // Evaluations were packed: fewer jobs than nodes placed in jobs.
    const jobIds = new Set(rec.nodes.map((n) => n.placement?.jobId).filter(Boolean));
    expect(jobIds.size).toBeLessThan(rec.nodes.filter((n) => n.placement?.jobId).length);
    // `runs --run` shows the same placement.
    const shown = (await run(dir, ['runs', '--cache', 'slurm-cache', '--run', runs[0]!.id])).stdout;
    const trainRow = shown.split('\n').find((l) => l.startsWith('train/a '))!;
    const train = rec.nodes.find((n) => n.id === 'train/a')!;
    expect(trainRow.split(/\s+/).slice(1, 4)).toEqual(['ran', train.placement!.host, train.placement!.jobId]);
    // A second run submits nothing.
    const again = await run(dir, ['run', 'toy.trend', ...SLURM, '--cache', 'slurm-cache']);
    expect(summaryCounts(again.stdout)).toMatchObject({ ran: 0, cached: 22 });
    expect(again.stdout + again.stderr).not.toMatch(/submitted/);
    // --force reaches the job: the worker recomputes the node instead of taking it from the store.
    const forced = await run(dir, ['run', 'toy.trend', ...SLURM, '--cache', 'slurm-cache', '--force', 'train/a']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(summaryCounts(forced.stdout)).toMatchObject({ ran: 1, cached: 21 });
  }, 180_000);

  it("with the real operations (TF.js in every job), the artifacts are the local executor's bytes", async () => {
    const dir = workdir({ 'real.trend': REAL });
    const real = { TREND_OPS_MODULE: '' };
    const s = await run(dir, ['run', 'real.trend', ...SLURM, '--mem', '1G', '--cache', 'slurm-cache'], real);
    expect(s.code, s.stderr).toBe(0);
    const l = await run(dir, ['run', 'real.trend', '--no-report', '--cache', 'local-cache'], real);
    expect(l.code, l.stderr).toBe(0);
    const [a, b] = [payloads(join(dir, 'slurm-cache')), payloads(join(dir, 'local-cache'))];
    expect(a.size).toBe(12);
    expect([...a.entries()].sort()).toEqual([...b.entries()].sort());
  }, 180_000);

  it('a failing node names its node, file:line, job and log; its dependants are skipped; nothing is cached', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const r = await run(dir, ['run', 'toy.trend', ...SLURM], { TREND_FAKE_FAIL: 'adv/pgd/b' });
    expect(r.code).toBe(1);
    const line = r.stderr.split('\n').find((l) => l.startsWith('error: adv/pgd/b'));
    expect(line).toMatch(/^error: adv\/pgd\/b \(toy\.trend:6\): fake failure in adv\/pgd\/b \(slurm job (\d+), log (\S+slurm-\d+\.out)\)$/);
    const log = /log (\S+)\)$/.exec(line!)![1]!;
    expect(readFileSync(log, 'utf8')).toContain('fake failure in adv/pgd/b');
    // b's three transfers, the matrix, the selection and the ensemble's predictions are skipped;
    // the other branches finished.
    expect(summaryCounts(r.stdout)).toEqual({ ran: 15, cached: 0, failed: 1, skipped: 6 });
    const again = await run(dir, ['run', 'toy.trend', ...SLURM]);
    expect(again.code, again.stderr).toBe(0);
    expect(summaryCounts(again.stdout)).toEqual({ ran: 7, cached: 15, failed: 0, skipped: 0 });
  }, 180_000);

  it('a job cancelled from outside fails its node and caches nothing', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const d = start(dir, ['run', 'toy.trend', ...SLURM], { TREND_FAKE_SLEEP_MS: '60000', TREND_FAKE_SLEEP_ONLY: 'train/b' });
    const job = await until('train/b running', async () => {
      const jobs = await jobsOf(join(dir, 'cache'));
      return jobs.find((j) => j.state === 'RUNNING' && readFileSync(join(dir, 'cache', 'slurm', 'jobs', j.name, 'job.json'), 'utf8').includes('"train/b"'));
    });
    await scancel([job.id]);
    const r = await d.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`error: train/b \\(toy\\.trend:4\\): the job was cancelled \\(scancel\\) before the node finished \\(slurm job ${job.id}, log `),
    );
    const status = await run(dir, ['run', 'toy.trend', '--dry-run', '--json', '--executor', 'slurm', '--poll', '0.2']);
    const rows = (JSON.parse(status.stdout.trim().split('\n').pop()!) as { nodes: Array<{ status: string; id: string }> }).nodes;
    expect(rows.find((n) => n.id === 'train/b')!.status).toBe('would run');
    expect(rows.find((n) => n.id === 'train/a')!.status).toBe('cached');
  }, 180_000);

  it('a job killed by its time limit is reported as such', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const r = await run(dir, ['run', 'toy.trend', ...SLURM, '--op-resources', 'train:time=1', '--only', 'train/a'], {
      TREND_FAKE_SLEEP_MS: '300000',
      TREND_FAKE_SLEEP_ONLY: 'train/a',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /error: train\/a \(toy\.trend:3\): killed by its time limit \(--time 1; raise it with --time or --op-resources train:time=\.\.\.\) \(slurm job \d+, log /,
    );
  }, 300_000);

  it('after the driver is killed, a rerun waits for the running jobs instead of resubmitting, and loses nothing', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const log = join(dir, 'exec.log');
    const env = { TREND_FAKE_SLEEP_MS: '2000', TREND_FAKE_LOG: log };
    const first = start(dir, ['run', 'toy.trend', ...SLURM], env);
    await until('training jobs running', async () => (await jobsOf(join(dir, 'cache'))).filter((j) => j.state === 'RUNNING').length >= 3);
    first.p.kill('SIGKILL');
    await first.done;
    const second = await run(dir, ['run', 'toy.trend', ...SLURM], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout + second.stderr).toMatch(/waiting for slurm job \d+/);
    const counts = executions(log);
    expect(counts.size).toBe(22);
    expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  }, 240_000);

  it('two drivers on one store compute each node once', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const log = join(dir, 'exec.log');
    const env = { TREND_FAKE_SLEEP_MS: '1500', TREND_FAKE_LOG: log };
    const [a, b] = await Promise.all([run(dir, ['run', 'toy.trend', ...SLURM], env), run(dir, ['run', 'toy.trend', ...SLURM], env)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const counts = executions(log);
    expect(counts.size).toBe(22);
    expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    // The run records agree: each node 'ran' in exactly one of the two runs ('cached' in the
    // other, which waited for the first's job or lock).
    const ran = summaryCounts(a.stdout).ran + summaryCounts(b.stdout).ran;
    expect(ran).toBe(22);
  }, 240_000);

  it('says when Slurm is not installed, and creates no store', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const r = await run(dir, ['run', 'toy.trend', ...SLURM], { PATH: '/nonexistent' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Slurm's commands are not installed here \(no scontrol on PATH\)/);
    expect(existsSync(join(dir, 'cache'))).toBe(false);
  });

  it('workers never open the LMDB index', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    // The store exists, its index is not a database at all; the driver keeps its index elsewhere.
    mkdirSync(join(dir, 'cache', 'data.mdb'), { recursive: true });
    writeFileSync(join(dir, 'cache', 'FORMAT'), 'trend-store 2\n');
    const before = statSync(join(dir, 'cache', 'data.mdb')).mtimeMs;
    const r = await run(dir, ['run', 'toy.trend', ...SLURM], { TREND_INDEX_DIR: join(dir, 'driver-index') });
    expect(r.code, r.stderr).toBe(0);
    expect(summaryCounts(r.stdout).ran).toBe(22);
    const logs = readdirSync(join(dir, 'cache', 'slurm', 'jobs')).flatMap((j) =>
      readdirSync(join(dir, 'cache', 'slurm', 'jobs', j))
        .filter((f) => f.endsWith('.out'))
        .map((f) => readFileSync(join(dir, 'cache', 'slurm', 'jobs', j, f), 'utf8')),
    );
    expect(logs.length).toBeGreaterThan(5);
    for (const l of logs) expect(l).not.toMatch(/index|mdb|warning/i);
    expect(statSync(join(dir, 'cache', 'data.mdb')).isDirectory()).toBe(true);
    expect(readdirSync(join(dir, 'cache', 'data.mdb'))).toEqual([]);
    expect(statSync(join(dir, 'cache', 'data.mdb')).mtimeMs).toBe(before);
    expect(existsSync(join(dir, 'cache', 'lock.mdb'))).toBe(false);
  }, 180_000);

  it('Ctrl-C on the driver cancels its jobs', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    const d = start(dir, ['run', 'toy.trend', ...SLURM], { TREND_FAKE_SLEEP_MS: '120000', TREND_FAKE_SLEEP_ONLY: 'train/' });
    await until('training jobs running', async () => (await jobsOf(join(dir, 'cache'))).filter((j) => j.state === 'RUNNING').length === 3);
    d.p.kill('SIGINT');
    const r = await d.done;
    expect(r.code).toBe(130);
    const jobs = await jobsOf(join(dir, 'cache'));
    expect(jobs.length).toBe(3);
    for (const j of jobs) expect(['CANCELLED', 'COMPLETING']).toContain(j.state);
    expect(r.stderr).toMatch(/interrupted: the job was cancelled/);
    const runs = JSON.parse((await run(dir, ['runs', '--json'])).stdout) as Array<{ status: string }>;
    expect(runs[0]!.status).toBe('interrupted');
  }, 180_000);

  it('rejects bad executor settings before any store is made', async () => {
    const dir = workdir({ 'toy.trend': FAKE_TOY });
    for (const [args, msg] of [
      [['--partition', 'gpu'], /--partition applies to --executor slurm only/],
      [['--executor', 'pbs'], /unknown executor 'pbs'/],
      [['--executor', 'slurm', '--mem', 'lots'], /--mem takes a size/],
      [['--executor', 'slurm', '--op-resources', 'trian:cpus=2'], /unknown operation 'trian'/],
      [['--executor', 'slurm', '--time', '1h'], /--time takes a time/],
      [['--executor', 'slurm', '--jobs', '2'], /--jobs applies to --executor local/],
    ] as const) {
      const r = await run(dir, ['run', 'toy.trend', ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(existsSync(join(dir, 'cache'))).toBe(false);
  });
});
