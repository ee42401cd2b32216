import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'trendc.js');
export const FAKE_OPS = join(ROOT, 'test', 'fixtures', 'fake-ops.mjs');

if (!existsSync(join(ROOT, 'dist', 'src', 'cli', 'main.js'))) {
  throw new Error('CLI tests run the built CLI: run `npm run build` (npm test does it) first');
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function trendc(args: string[], opts: { cwd: string; env?: Record<string, string>; input?: string }): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, TREND_CACHE: '', FORCE_COLOR: '0', ...opts.env },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Starts trendc in the background (for kill and concurrency tests). */
export function trendcAsync(args: string[], opts: { cwd: string; env?: Record<string, string> }) {
  return spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...process.env, TREND_CACHE: '', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** trendc in a child process, awaited: a long synchronous spawn would stall the test worker. */
export function trendcAwait(args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<CliResult> {
  const child = trendcAsync(args, { ...opts, env: { FORCE_COLOR: '0', ...opts.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}

export function workdir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'trend-test-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

export const TOY = `# toy pipeline for executor tests
dataset toy subset train=400 test=100
train epochs=1 batch=50
model a = mlp width=0.25
model b = mlp width=0.25 seed 2
model c = mlp width=0.25 seed 3
transfer pgd eps=0.2 steps=3 step=0.1 from * to *
ensemble trend k=2
`;

export function summaryCounts(stdout: string): Record<string, number> {
  const m = /(\d+) ran, (\d+) cached, (\d+) failed(?:, (\d+) skipped)?/.exec(stdout);
  if (!m) throw new Error(`no summary line in: ${stdout}`);
  return { ran: +m[1]!, cached: +m[2]!, failed: +m[3]!, skipped: +(m[4] ?? 0) };
}
