/**
 * The Slurm tests run against a real Slurm. When none answers, and this is root (CI, a fresh
 * Debian machine), the project's start script brings up a local one; otherwise the tests fail
 * with a message naming the script. Never a silent skip.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './cli.js';

export const START_SCRIPT = join(ROOT, 'scripts', 'slurm', 'start-local-slurm.sh');

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

const answers = async () => /is UP/.test((await run('scontrol', ['ping'], 10_000)).out);

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
