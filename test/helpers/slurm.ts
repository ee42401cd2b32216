/**
 * The Slurm tests run against a real Slurm. When none answers, and this is root (CI, a fresh
 * Debian machine), the project's start script brings up a local one; otherwise the tests fail
 * with a message naming the script. Never a silent skip.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { slurmAnswers } from '../../src/runtime/executor/slurm/commands.js';
import { FAKE_OPS, ROOT, TOY, trendcAsync } from './cli.js';

export const START_SCRIPT = join(ROOT, 'scripts', 'slurm', 'start-local-slurm.sh');

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

const answers = async () => (await slurmAnswers()) === 'up';

export async function ensureSlurm(): Promise<void> {
  if (await answers()) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`the Slurm tests need a running Slurm and none answers ('scontrol ping'); start one as root with: sudo bash ${START_SCRIPT}`);
  }
  const r = await run('bash', [START_SCRIPT], 600_000);
  if (r.code !== 0 || !(await answers())) throw new Error(`could not start the local Slurm with ${START_SCRIPT} (exit ${r.code}):\n${r.out}`);
}

/** The jobs Slurm lists (any state) whose name starts with trend-: id -> [name, state]. */
export async function trendJobs(): Promise<Map<string, { name: string; state: string }>> {
  const r = await run('squeue', ['--noheader', '--states=all', '--format=%i|%j|%T'], 30_000);
  const m = new Map<string, { name: string; state: string }>();
  for (const line of r.out.split('\n')) {
    const [id, name, state] = line.trim().split('|');
    if (id && name?.startsWith('trend-')) m.set(id, { name, state: state ?? '' });
  }
  return m;
}

export const scancel = (ids: string[]) => run('scancel', ids, 30_000);

/** The executor tests' toy pipeline (22 nodes) without its comment line: statements from line 1. */
export const FAKE_TOY = TOY.slice(TOY.indexOf('\n') + 1);

/** `trendc run` options for small jobs on the local Slurm. */
export const SLURM = ['--executor', 'slurm', '--cpus', '1', '--mem', '200M', '--poll', '0.2', '--no-report'];

export interface Done {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts trendc with the fake operations (env adds to them); `done` settles when it exits. */
export function start(dir: string, args: string[], env: Record<string, string> = {}) {
  const p = trendcAsync(args, { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS, ...env } });
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d) => (stdout += d));
  p.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Done>((resolve) => p.on('close', (code, sig) => resolve({ code: code ?? (sig === 'SIGKILL' ? 137 : -1), stdout, stderr })));
  return { p, done, out: () => stdout + stderr };
}

export const runTrendc = (dir: string, args: string[], env?: Record<string, string>) => start(dir, args, env).done;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls f until it gives something truthy (or fails after ms). */
export async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Our jobs in Slurm: those whose job directory is in this store. */
export async function jobsOf(cache: string) {
  const names = new Set(existsSync(join(cache, 'slurm', 'jobs')) ? readdirSync(join(cache, 'slurm', 'jobs')) : []);
  return [...(await trendJobs()).entries()].filter(([, j]) => names.has(j.name)).map(([id, j]) => ({ id, ...j }));
}

/** "<pid> <node id>" lines the fake operations append, as node id -> count. */
export function executions(file: string): Map<string, number> {
  const m = new Map<string, number>();
  if (!existsSync(file)) return m;
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const id = line.split(' ')[1]!;
    m.set(id, (m.get(id) ?? 0) + 1);
  }
  return m;
}
