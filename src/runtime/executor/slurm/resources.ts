/**
 * What a Slurm job asks for, per operation: how each operation is placed (in the driver, packed
 * with others into one job, or a job of its own) and its default resources, which the user
 * overrides globally (--cpus, --mem, --time, --gpus) or per operation (--op-resources). None of
 * this is part of any key: where a node runs does not change what it computes.
 */
import { UserError } from '../../../compiler/diagnostics.js';
import type { OpName } from '../../../compiler/contract.js';
import { OP_VERSIONS } from '../../../compiler/ops.js';

/**
 * How an operation is placed. `driver`: aggregates over stored results (a matrix, a selection)
 * and the dataset step run in the submitting process; `group`: many small evaluations, packed
 * into shared jobs; `single`: a job of its own (training, attacks).
 */
export type Placing = 'driver' | 'group' | 'single';

export const PLACING: Record<OpName, Placing> = {
  dataset: 'driver',
  train: 'single',
  predict: 'group',
  adversarial: 'single',
  transfer: 'group',
  matrix: 'driver',
  select: 'driver',
  robust: 'single',
  union: 'driver',
};

export interface Resources {
  cpus: number;
  /** Memory per job, as sbatch takes it (`4G`, `512M`). */
  mem: string;
  /** Time limit, as sbatch takes it (`2:00:00`, `30` minutes, `1-00:00:00`). */
  time: string;
  /** GPUs per job (`--gres=gpu:N`); 0: none. */
  gpus: number;
}

/** Built-in defaults: training is heavy, an attack less so, an evaluation is light. */
export const DEFAULT_RESOURCES: Record<OpName, Resources> = {
  dataset: { cpus: 1, mem: '4G', time: '1:00:00', gpus: 0 },
  train: { cpus: 4, mem: '16G', time: '2-00:00:00', gpus: 0 },
  predict: { cpus: 2, mem: '4G', time: '2:00:00', gpus: 0 },
  adversarial: { cpus: 4, mem: '8G', time: '12:00:00', gpus: 0 },
  transfer: { cpus: 2, mem: '4G', time: '2:00:00', gpus: 0 },
  matrix: { cpus: 1, mem: '2G', time: '1:00:00', gpus: 0 },
  select: { cpus: 1, mem: '2G', time: '1:00:00', gpus: 0 },
  robust: { cpus: 4, mem: '8G', time: '12:00:00', gpus: 0 },
  union: { cpus: 1, mem: '2G', time: '1:00:00', gpus: 0 },
};

/** The settings of `trendc run --executor slurm`. */
export interface SlurmSettings {
  partition?: string;
  account?: string;
  /** Extra sbatch arguments, added to every job as given. */
  sbatchArgs: string[];
  /** Resources per operation, after the user's overrides. */
  resources: Record<OpName, Resources>;
  /** How often the driver asks Slurm and reads status files. */
  pollMs: number;
  /** At most this many jobs submitted and not finished at once. */
  maxJobs: number;
  /** At most this many nodes in one grouped job. */
  groupSize: number;
  /** How long a job may be gone from Slurm before its missing status file means it failed. */
  vanishMs: number;
}

/** What the user gave on the command line (all strings, as commander has them). */
export interface SlurmFlags {
  partition?: string;
  account?: string;
  time?: string;
  mem?: string;
  cpus?: string;
  gpus?: string;
  sbatchArg?: string[];
  opResources?: string[];
  poll?: string;
  maxJobs?: string;
  groupSize?: string;
}

export function slurmSettings(f: SlurmFlags): SlurmSettings {
  const global: Partial<Resources> = {
    ...(f.cpus !== undefined ? { cpus: positiveInt('--cpus', f.cpus) } : {}),
    ...(f.mem !== undefined ? { mem: memory('--mem', f.mem) } : {}),
    ...(f.time !== undefined ? { time: timeLimit('--time', f.time) } : {}),
    ...(f.gpus !== undefined ? { gpus: nonNegativeInt('--gpus', f.gpus) } : {}),
  };
  const resources = {} as Record<OpName, Resources>;
  for (const op of Object.keys(DEFAULT_RESOURCES) as OpName[]) resources[op] = { ...DEFAULT_RESOURCES[op], ...global };
  for (const spec of f.opResources ?? []) applyOpResources(resources, spec);
  return {
    ...(f.partition ? { partition: f.partition } : {}),
    ...(f.account ? { account: f.account } : {}),
    sbatchArgs: (f.sbatchArg ?? []).map(sbatchArg),
    resources,
    pollMs: pollSeconds(f.poll ?? '2') * 1000,
    maxJobs: positiveInt('--max-jobs', f.maxJobs ?? '100'),
    groupSize: positiveInt('--group-size', f.groupSize ?? '64'),
    vanishMs: 10_000,
  };
}

/**
 * The sbatch options trendc sets itself or follows the job by, with their short forms: a renamed
 * job is invisible to the driver (it finds jobs by name) and is declared failed while it runs;
 * another log path makes the log named in errors wrong; --wait makes sbatch answer only once the
 * job ends (past the driver's timeout, the job submitted but its nodes failed); --array runs the
 * same nodes many times.
 */
const OWN_SBATCH_OPTIONS: Record<string, [short: string, why: string]> = {
  'job-name': ['J', 'the driver finds its jobs by their names'],
  output: ['o', "errors name the job's log"],
  error: ['e', "errors name the job's log"],
  chdir: ['D', 'the job runs where the driver was started'],
  array: ['a', 'one job computes one set of nodes'],
  wait: ['W', 'the driver needs the job id at once'],
};

function sbatchArg(a: string): string {
  const arg = a.trim();
  for (const [long, [short, why]] of Object.entries(OWN_SBATCH_OPTIONS)) {
    if (new RegExp(`^(--${long}(=|\\s|$)|-${short})`).test(arg)) {
      throw new UserError(`--sbatch-arg '${a}': trendc sets --${long} itself (${why}); leave it out`);
    }
  }
  return a;
}

/** `train:cpus=8,mem=32G,time=3-00:00:00,gpus=1`: overrides for one operation. */
function applyOpResources(resources: Record<OpName, Resources>, spec: string): void {
  const m = /^([a-z]+):(.+)$/.exec(spec);
  const ops = Object.keys(OP_VERSIONS);
  if (!m) throw new UserError(`--op-resources takes OP:key=value,... (e.g. train:cpus=8,mem=32G), got '${spec}'`);
  const op = m[1] as OpName;
  if (!ops.includes(op)) throw new UserError(`--op-resources: unknown operation '${m[1]}' (expected one of: ${ops.join(', ')})`);
  for (const kv of m[2]!.split(',')) {
    const [k, v] = kv.split('=') as [string, string | undefined];
    if (v === undefined || v === '') throw new UserError(`--op-resources ${spec}: '${kv}' is not key=value`);
    const flag = `--op-resources ${op}:${k}`;
    if (k === 'cpus') resources[op].cpus = positiveInt(flag, v);
    else if (k === 'mem') resources[op].mem = memory(flag, v);
    else if (k === 'time') resources[op].time = timeLimit(flag, v);
    else if (k === 'gpus') resources[op].gpus = nonNegativeInt(flag, v);
    else throw new UserError(`--op-resources ${spec}: unknown key '${k}' (expected cpus, mem, time or gpus)`);
  }
}

/** The sbatch options for one job with these resources. */
export function resourceArgs(s: SlurmSettings, r: Resources): string[] {
  return [
    ...(s.partition ? [`--partition=${s.partition}`] : []),
    ...(s.account ? [`--account=${s.account}`] : []),
    `--cpus-per-task=${r.cpus}`,
    `--mem=${r.mem}`,
    `--time=${r.time}`,
    ...(r.gpus > 0 ? [`--gres=gpu:${r.gpus}`] : []),
    ...s.sbatchArgs,
  ];
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${flag} must be a positive integer, got '${v}'`);
  return n;
}

function nonNegativeInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UserError(`${flag} must be a non-negative integer, got '${v}'`);
  return n;
}

function positiveNumber(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`${flag} must be a positive number of seconds, got '${v}'`);
  return n;
}

/**
 * --poll: from a tenth of a second (less would keep squeue running without a pause, a load on
 * the controller) to an hour (more than a timer can hold: Node fired it at once, every millisecond).
 */
function pollSeconds(v: string): number {
  const n = positiveNumber('--poll', v);
  if (n < 0.1 || n > 3600) throw new UserError(`--poll must be between 0.1 and 3600 seconds, got '${v}'`);
  return Math.round(n * 1000) / 1000;
}

function memory(flag: string, v: string): string {
  if (!/^\d+[KMGT]?$/i.test(v)) throw new UserError(`${flag} takes a size as sbatch does (e.g. 512M, 16G), got '${v}'`);
  return v.toUpperCase();
}

/** The time formats sbatch accepts: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S. */
function timeLimit(flag: string, v: string): string {
  if (!/^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})$/.test(v)) {
    throw new UserError(`${flag} takes a time as sbatch does (minutes, H:MM:SS or D-HH:MM:SS), got '${v}'`);
  }
  return v;
}
