/**
 * Slurm's own commands, as the driver uses them: sbatch to submit, squeue to follow, scontrol
 * for a finished job's final state, scancel to cancel. Each is a child process with a timeout
 * (a controller that does not answer is an error, never a hang); a missing command says which.
 */
import { execFile } from 'node:child_process';

export class SlurmError extends Error {}

/** A job as squeue lists it. */
export interface QueuedJob {
  id: string;
  name: string;
  /** PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ... */
  state: string;
  reason: string;
}

/** States after which the job will not run again. */
export const FINAL_STATES = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']);

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      if (e.code === 'ENOENT')
        return reject(
          new SlurmError(`${cmd} not found: is Slurm installed and on PATH? (trendc run --executor slurm needs sbatch, squeue, scontrol, scancel)`),
        );
      if (e.killed) return reject(new SlurmError(`${cmd} did not answer within ${timeoutMs / 1000} s (is slurmctld up? try 'scontrol ping')`));
      reject(new SlurmError(`${cmd} ${args.join(' ')} failed: ${(stderr || e.message).trim()}`));
    });
  });
}

/** Submits a batch script; returns the job id. */
/** Errors of a busy or restarting controller, worth another try (as Snakemake's executor retries). */
const TRANSIENT = /Socket timed out|Unable to contact slurm controller|temporarily unavailable|Resource temporarily|try again/i;

export async function sbatch(script: string, args: string[] = [], delaysMs = [1000, 3000, 10_000]): Promise<string> {
  let out: string | undefined;
  for (let attempt = 0; out === undefined; attempt++) {
    try {
      out = await run('sbatch', ['--parsable', ...args, script]);
    } catch (e) {
      if (!(e instanceof SlurmError && TRANSIENT.test(e.message)) || attempt >= delaysMs.length) throw e;
      await new Promise((r) => setTimeout(r, delaysMs[attempt]));
    }
  }
  const id = out.trim().split(';')[0]!;
  if (!/^\d+$/.test(id)) throw new SlurmError(`sbatch printed no job id: '${out.trim()}'`);
  return id;
}

/**
 * The jobs Slurm knows (pending, running, and finished ones it has not yet forgotten), those
 * whose name starts with `prefix`. One call lists them all, however many jobs are tracked.
 */
export async function squeue(prefix: string): Promise<Map<string, QueuedJob>> {
  const out = await run('squeue', ['--noheader', '--states=all', '--format=%i|%j|%T|%r']);
  const jobs = new Map<string, QueuedJob>();
  for (const line of out.split('\n')) {
    const [id, name, state, reason] = line.trim().split('|');
    if (!id || !name?.startsWith(prefix)) continue;
    jobs.set(id, { id, name, state: state ?? '', reason: reason ?? '' });
  }
  return jobs;
}

/** A job's state from scontrol (undefined once Slurm has forgotten it). */
export async function jobState(id: string): Promise<{ state: string; reason: string; exitCode: string } | undefined> {
  let out: string;
  try {
    out = await run('scontrol', ['show', 'job', '-o', id]);
  } catch (e) {
    if (e instanceof SlurmError && /Invalid job id/i.test(e.message)) return undefined;
    throw e;
  }
  const field = (k: string) => new RegExp(`\\b${k}=(\\S*)`).exec(out)?.[1] ?? '';
  return { state: field('JobState'), reason: field('Reason'), exitCode: field('ExitCode') };
}

/** Cancels jobs (those already gone are ignored). */
export async function scancel(ids: string[]): Promise<void> {
  if (!ids.length) return;
  try {
    await run('scancel', ids);
  } catch (e) {
    if (!(e instanceof SlurmError && /Invalid job id|already completing or completed/i.test(e.message))) throw e;
  }
}

/** A job's final state from the accounting database (sacct); undefined where there is none. */
export async function accountedState(id: string): Promise<string | undefined> {
  try {
    const out = await run('sacct', ['--noheader', '--parsable2', '--allocations', '--format=State', '--jobs', id]);
    // "CANCELLED by 0" -> CANCELLED
    return out.trim().split('\n')[0]?.split(/\s/)[0] || undefined;
  } catch {
    return undefined; // accounting disabled ("Slurm accounting storage is disabled"), or no sacct
  }
}

/** Whether a Slurm controller answers here: 'up', 'down', or 'missing' (no scontrol). */
export async function slurmAnswers(): Promise<'up' | 'down' | 'missing'> {
  try {
    return /is UP/.test(await run('scontrol', ['ping'], 10_000)) ? 'up' : 'down';
  } catch (e) {
    return e instanceof SlurmError && /not found/.test(e.message) ? 'missing' : 'down';
  }
}
