/**
 * A Slurm job's files, in the shared store directory (`<store>/slurm/jobs/<name>/`), which the
 * driver and the job both see:
 *
 *   job.json            what the job computes: the run, the pipeline text, the node keys
 *   job.sh              the batch script (sbatch's input)
 *   slurm-<id>.out      the job's log (stdout and stderr)
 *   nodes/<key>.json    one outcome per node, written by `trendc exec-node` as each finishes
 *   status.json         written by the batch script when the job ends: exit code, signal, host,
 *                       times. Temp file + rename, and SIGTERM (scancel, time limit) is trapped,
 *                       so the driver knows how a job ended without Slurm's accounting.
 *
 * The job name is the directory's name (`trend-<keys hash>-<random>`), so a restarted driver
 * finds a job's nodes from squeue's job names alone.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { digest } from '../../../compiler/hash.js';
import { mkdirs } from '../../../store/fsx.js';

export const JOB_PREFIX = 'trend-';

/** job.json */
export interface JobSpec {
  name: string;
  runId: string;
  /** The pipeline's path (node locations and relative data paths resolve against it). */
  pipeline: string;
  /** The pipeline's text when the run started (the file may change while jobs wait). */
  source: string;
  /**
   * The dataset identity the driver planned with (part of every key): the job plans with it
   * rather than hashing the dataset's files again, so its keys are the driver's; a dataset step
   * in the job still checks the bytes it reads against it. Absent in jobs of older drivers.
   */
  datasetIdentity?: string;
  keys: string[];
  ids: string[];
  /** Keys to recompute even if stored (`run --force`). */
  forced?: string[];
  /** The backend the run asked for (`auto` picks per host: a GPU node uses its GPU). */
  backend?: string;
  submittedAt: string;
  driver: { host: string; pid: number };
}

/** nodes/<key>.json */
export interface NodeOutcome {
  key: string;
  id: string;
  status: 'ran' | 'cached' | 'failed';
  error?: string;
  ms?: number;
  /** A node that ran: its payload checksum, and the other stored bytes it replaced (RunNode). */
  checksum?: string;
  replaced?: { checksum: string; backend: string };
  host: string;
  startedAt: string;
  endedAt: string;
}

/** status.json */
export interface JobStatus {
  jobId: string;
  exit: number;
  /** Set when the job was sent SIGTERM (scancel, time limit, preemption). */
  signal?: string;
  host: string;
  /** Unix seconds (the batch script's clock). */
  start: number;
  end: number;
}

export const jobsDir = (storeRoot: string) => join(storeRoot, 'slurm', 'jobs');
export const jobDir = (storeRoot: string, name: string) => join(jobsDir(storeRoot), name);
export const logPath = (dir: string, jobId: string) => join(dir, `slurm-${jobId}.out`);

export function jobName(keys: readonly string[]): string {
  return `${JOB_PREFIX}${digest([...keys].sort().join(',')).slice(0, 10)}-${randomBytes(3).toString('hex')}`;
}

/** Writes a file whole or not at all (temp file in the same directory, then rename). */
export function writeJson(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${hostname()}-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 1) + '\n');
  renameSync(tmp, path);
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** How the batch script starts the worker: this node binary, this trendc. */
export interface WorkerCommand {
  node: string;
  trendc: string;
  cwd: string;
  storeRoot: string;
}

/** Creates the job's directory with job.json and job.sh; returns the script's path. */
export function writeJob(dir: string, spec: JobSpec, cmd: WorkerCommand, sbatchArgs: string[]): string {
  mkdirs(join(dir, 'nodes'));
  writeJson(join(dir, 'job.json'), spec);
  const script = join(dir, 'job.sh');
  writeFileSync(script, batchScript(dir, spec.name, cmd, sbatchArgs), { mode: 0o755 });
  return script;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The batch script. The worker runs in the background so that the script, not bash's default
 * action, handles SIGTERM: it passes the signal on, waits for the worker to stop, and writes
 * status.json with the signal named. Any other end (exit code, crash) is written too; only a
 * SIGKILL or a lost node leaves no status, which the driver reads as failure.
 */
function batchScript(dir: string, name: string, cmd: WorkerCommand, sbatchArgs: string[]): string {
  // sbatch splits a directive at blanks unless quoted: a store or working directory with a space
  // in its path would make every job's submission fail.
  const directives = [`--job-name=${name}`, `--output="${join(dir, 'slurm-%j.out')}"`, `--chdir="${cmd.cwd}"`, ...sbatchArgs];
  return `#!/bin/bash
${directives.map((d) => `#SBATCH ${d}`).join('\n')}
# Written by trendc run --executor slurm; runs the nodes in job.json (next to this script).
dir=${q(dir)}
start=$(date +%s.%N)
sig=""
status() {
  printf '{"jobId":"%s","exit":%d,%s"host":"%s","start":%s,"end":%s}\\n' "$SLURM_JOB_ID" "$1" "$([ -n "$sig" ] && printf '"signal":"%s",' "$sig")" "$(hostname)" "$start" "$(date +%s.%N)" > "$dir/status.json.tmp.$SLURM_JOB_ID"
  mv -f "$dir/status.json.tmp.$SLURM_JOB_ID" "$dir/status.json"
}
trap 'sig=TERM; kill -TERM "$child" 2>/dev/null' TERM
${q(cmd.node)} ${q(cmd.trendc)} exec-node --cache ${q(cmd.storeRoot)} --job "$dir" &
child=$!
wait "$child"; rc=$?
# A trapped signal ends the first wait early: wait again for the worker's own exit code.
[ -n "$sig" ] && { wait "$child"; rc=$?; }
status "$rc"
exit "$rc"
`;
}
