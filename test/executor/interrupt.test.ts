import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN, summaryCounts, trendc, trendcAsync, workdir } from '../helpers/cli.js';

// Interrupting a real run (wasm runtime, MNIST subset): SIGINT and SIGTERM stop it within 2 s even
// in the middle of an epoch or of an attack batch, exit 130, cache nothing partial, record the run
// as interrupted; progress events keep coming (at least one a second) while it computes.

interface Ev {
  t: number;
  type: string;
  id?: string;
  status?: string;
  progress?: { phase: string; done: number; total: number; unit?: string; metrics?: Record<string, number>; rate?: number; eta?: number };
  [k: string]: unknown;
}

class Run {
  readonly events: Ev[] = [];
  readonly exited: Promise<{ code: number | null; signal: string | null; t: number }>;
  stderr = '';
  private waiters: Array<() => void> = [];

  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      const t = performance.now();
      for (const line of lines) if (line.trim()) this.events.push({ ...(JSON.parse(line) as Ev), t });
      this.waiters.forEach((w) => w());
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, t: performance.now() })));
  }

  /** Resolves with the first event matching `pred` (waiting at most `ms`). */
  async waitFor(pred: (e: Ev, all: Ev[]) => boolean, ms: number, what: string): Promise<Ev> {
    const deadline = performance.now() + ms;
    for (;;) {
      const hit = this.events.find((e) => pred(e, this.events));
      if (hit) return hit;
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr:\n${this.stderr}`);
      const exited = await Promise.race([
        new Promise<boolean>((r) => {
          this.waiters.push(() => r(false));
          setTimeout(() => r(false), 200);
        }),
        this.exited.then(() => true),
      ]);
      this.waiters = [];
      if (exited && !this.events.find((e) => pred(e, this.events))) throw new Error(`the run ended before ${what}; stderr:\n${this.stderr}`);
    }
  }

  progressOf(id: string): Ev[] {
    return this.events.filter((e) => e.type === 'node-progress' && e.id === id);
  }

  /** Sends `sig`, then waits at most `ms` for the process to end (killing it after that). */
  async interrupt(sig: NodeJS.Signals, ms = 2000): Promise<{ code: number | null; afterMs: number }> {
    const t = performance.now();
    this.child.kill(sig);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms + 8000);
    const end = await this.exited;
    clearTimeout(timer);
    return { code: end.code, afterMs: end.t - t };
  }
}

/** Progress of `id` over the last `windowMs` before now: events per second and the longest gap. */
function cadence(events: Ev[], windowMs: number): { perSecond: number; maxGapMs: number } {
  const end = events.at(-1)!.t;
  const inWindow = events.filter((e) => e.t >= end - windowMs);
  let maxGap = 0;
  for (let i = 1; i < inWindow.length; i++) maxGap = Math.max(maxGap, inWindow[i]!.t - inWindow[i - 1]!.t);
  return { perSecond: inWindow.length / (windowMs / 1000), maxGapMs: maxGap };
}

function expectNotCached(dir: string, id: string): void {
  const show = trendc(['cache', 'show', id], { cwd: dir });
  expect(show.code, `${id} should not be in the store: ${show.stdout}`).toBe(2);
  expect(trendc(['cache', 'verify'], { cwd: dir }).code).toBe(0);
}

function lastRunStatus(dir: string): string {
  const runs = JSON.parse(trendc(['runs', '--json'], { cwd: dir }).stdout) as Array<{ status: string }>;
  return runs.at(-1)!.status;
}

const start = (dir: string, args: string[]) => new Run(trendcAsync(['run', 'p.trend', '--json', '--backend', 'wasm', ...args], { cwd: dir }));

// 50 epochs of an mlp on 900 images: 10-30 s on this machine, each epoch a few tenths of a second.
const TRAIN = `dataset mnist subset train=1000 test=200
train epochs=50 batch=50 lr=0.05
model a = mlp
`;

describe('interrupting training', () => {
  const dir = workdir({ 'p.trend': TRAIN });

  it('SIGINT mid-training: exit 130 within 2 s, nothing cached, run recorded as interrupted, progress every second before it', async () => {
    const run = start(dir, []);
    const first = await run.waitFor((e) => e.type === 'node-progress' && e.id === 'train/a', 120_000, 'training progress');
    await run.waitFor((e) => e.type === 'node-progress' && e.id === 'train/a' && e.t - first.t >= 3000, 60_000, '3 s of training progress');
    const progress = run.progressOf('train/a');
    const c = cadence(progress, 3000);
    expect.soft(c.perSecond).toBeGreaterThanOrEqual(2);
    expect.soft(c.maxGapMs).toBeLessThan(1000);
    // Each event carries images/s, the loss and an ETA for the whole node.
    const p = progress.at(-1)!.progress!;
    expect.soft(p.unit).toBe('images');
    expect.soft(p.rate).toBeGreaterThan(0);
    expect.soft(p.eta).toBeGreaterThan(0);
    expect.soft(typeof p.metrics?.loss).toBe('number');

    const { code, afterMs } = await run.interrupt('SIGINT');
    expect.soft(afterMs).toBeLessThan(2000);
    expect.soft(code).toBe(130);
    const summary = run.events.find((e) => e.type === 'summary')!;
    expect.soft(summary.status).toBe('interrupted');
    expect.soft(run.events.some((e) => e.type === 'node-start' && e.id === 'predict/a')).toBe(false); // nothing after train/a started
    expect.soft(run.stderr).toMatch(/interrupted/);
    expect.soft(run.stderr).not.toMatch(/internal error|^\s+at /m);
    expectNotCached(dir, 'train/a');
    expect.soft(lastRunStatus(dir)).toBe('interrupted');
  });

  it('SIGTERM on the rerun: it computes train/a again (dataset cached) and stops the same way', async () => {
    const run = start(dir, []);
    await run.waitFor((e) => e.type === 'node-end' && e.id === 'dataset/mnist' && e.status === 'cached', 60_000, 'the cached dataset');
    const first = await run.waitFor((e) => e.type === 'node-progress' && e.id === 'train/a', 120_000, 'training progress');
    await run.waitFor((e) => e.type === 'node-progress' && e.id === 'train/a' && e.t - first.t >= 2000, 60_000, '2 s of training progress');
    expect.soft(cadence(run.progressOf('train/a'), 2000).perSecond).toBeGreaterThanOrEqual(2);
    const { code, afterMs } = await run.interrupt('SIGTERM');
    expect.soft(afterMs).toBeLessThan(2000);
    expect.soft(code).toBe(130);
    expectNotCached(dir, 'train/a');
    expect.soft(lastRunStatus(dir)).toBe('interrupted');
  });

  it('a rerun to the end computes and caches train/a', () => {
    const r = trendc(['run', 'p.trend', '--quiet', '--backend', 'wasm'], { cwd: dir });
    expect.soft(r.code).toBe(0);
    expect.soft(summaryCounts(r.stdout)).toEqual({ ran: 2, cached: 1, failed: 0, skipped: 0 });
    expect.soft(trendc(['cache', 'show', 'train/a'], { cwd: dir }).code).toBe(0);
  });
});

// One attack batch of 500 images and 2,000 PGD steps: a minute or more in a single batch.
const ATTACK = `dataset mnist subset train=1000 test=500
train epochs=1 batch=50 lr=0.05
model a = mlp
transfer pgd eps=0.1 steps=2000 step=0.01 images=500 batch=500 from a to a
`;

describe('interrupting an attack', () => {
  const dir = workdir({ 'p.trend': ATTACK });

  it('SIGINT inside an attack batch: exit 130 within 2 s, progress every second before it, nothing cached', async () => {
    const run = start(dir, ['--only', 'adv/pgd/a']);
    const first = await run.waitFor((e) => e.type === 'node-progress' && e.id === 'adv/pgd/a', 60_000, 'attack progress');
    await run.waitFor((e) => e.type === 'node-progress' && e.id === 'adv/pgd/a' && e.t - first.t >= 3000, 20_000, '3 s of attack progress');
    const progress = run.progressOf('adv/pgd/a');
    const c = cadence(progress, 3000);
    expect.soft(c.perSecond).toBeGreaterThanOrEqual(1);
    expect.soft(c.maxGapMs).toBeLessThan(1000);
    const p = progress.at(-1)!.progress!;
    expect.soft(p.unit).toBe('images');
    expect.soft(p.done).toBeLessThan(500); // still inside the one batch
    expect.soft(p.rate).toBeGreaterThan(0);
    expect.soft(p.eta).toBeGreaterThan(0);
    const { code, afterMs } = await run.interrupt('SIGINT');
    expect.soft(afterMs).toBeLessThan(2000);
    expect.soft(code).toBe(130);
    expectNotCached(dir, 'adv/pgd/a');
    expect.soft(trendc(['cache', 'show', 'train/a'], { cwd: dir }).code).toBe(0);
    expect.soft(lastRunStatus(dir)).toBe('interrupted');
  });

  it('SIGTERM on the rerun, which computes the attack again', async () => {
    const run = start(dir, ['--only', 'adv/pgd/a']);
    await run.waitFor((e) => e.type === 'node-end' && e.id === 'train/a' && e.status === 'cached', 60_000, 'the cached model');
    const first = await run.waitFor((e) => e.type === 'node-progress' && e.id === 'adv/pgd/a', 60_000, 'attack progress');
    await run.waitFor((e) => e.type === 'node-progress' && e.id === 'adv/pgd/a' && e.t - first.t >= 1500, 20_000, 'attack progress');
    const { code, afterMs } = await run.interrupt('SIGTERM');
    expect.soft(afterMs).toBeLessThan(2000);
    expect.soft(code).toBe(130);
    expectNotCached(dir, 'adv/pgd/a');
  });
});

describe('the terminal progress bar', () => {
  it('is redrawn during training, at least once a second, with images/s and an ETA', async () => {
    // Long enough to see several redraws (over 2 s): 12 epochs took 1.9 s once the kernels got faster.
    const dir = workdir({ 'p.trend': TRAIN.replace('epochs=50', 'epochs=30') });
    // `script` gives trendc a terminal (stderr.isTTY), as in an interactive shell.
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} run p.trend --backend wasm --no-report`;
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], {
      cwd: dir,
      env: { ...process.env, TREND_CACHE: '', COLUMNS: '200', LINES: '40' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect.soft(code).toBe(0);
    const ran = /ran train\/a \(([\d.]+)s\)/.exec(out);
    expect.soft(ran, out.slice(-2000)).not.toBeNull();
    const seconds = Number(ran![1]);
    expect.soft(seconds).toBeGreaterThan(2);
    // Frames of the bar: "train/a epoch 3/30 450/900 images | 2345.6/s ETA 4s | loss=..."
    const frames = [...out.matchAll(/train\/a epoch (\d+)\/30 (\d+)\/(\d+) images \| ([\d.]+)\/s ETA (\S+) \| loss=/g)];
    const distinct = new Set(frames.map((f) => `${f[1]} ${f[2]}`));
    expect.soft(distinct.size, out.slice(-3000)).toBeGreaterThanOrEqual(Math.floor(seconds));
    expect.soft(frames.some((f) => Number(f[4]) > 0)).toBe(true);
  });
});
