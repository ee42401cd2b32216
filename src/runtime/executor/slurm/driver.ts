/**
 * The Slurm driver (as Snakemake's and Nextflow's Slurm executors): this process keeps the DAG
 * and submits a node when its inputs are stored; jobs are followed by polling squeue and reading
 * the status file each job writes (job.ts). No `--dependency` is used: a node is submitted only
 * once its inputs are in the store, so a dependency on a job Slurm has already forgotten (which
 * Slurm counts as satisfied) cannot arise.
 *
 * Placement (resources.ts): aggregates and the dataset run here; training and attacks are a job
 * each; evaluations (predict, transfer) that become ready in the same scheduling pass are packed,
 * in DAG order, into jobs of at most --group-size nodes of one operation.
 *
 * Faults: a node that failed in its job, or whose job ended without its outcome (time limit,
 * out of memory, scancel, a lost node), fails with its Slurm job id and log path; the graph's
 * policy skips its dependants. A restarted driver, or a second one on the same store, finds the
 * live jobs by name (squeue) and waits for them instead of submitting again; the per-node lock
 * each worker takes makes a node computed once even when two drivers submitted it at once.
 * Interrupting the driver cancels the jobs it submitted.
 */
import { join } from 'node:path';
import type { DagNode } from '../../../compiler/dag.js';
import { UserError } from '../../../compiler/diagnostics.js';
import type { RunHeader } from '../records.js';
import type { NodeContext } from '../run-node.js';
import { runHere, type NodeRunner, type RunnerFactory } from '../runner.js';
import { accountedState, FINAL_STATES, jobState, sbatch, scancel, SlurmError, slurmAnswers, squeue, type QueuedJob } from './commands.js';
import { JOB_PREFIX, jobDir, jobName, logPath, readJson, writeJob, type JobSpec, type JobStatus, type NodeOutcome, type WorkerCommand } from './job.js';
import { PLACING, resourceArgs, type SlurmSettings } from './resources.js';
import { currentHost } from '../../../store/owner.js';

interface Waiter {
  n: DagNode;
  resolve: () => void;
}

interface Tracked {
  id: string;
  name: string;
  dir: string;
  keys: Set<string>;
  submittedMs: number;
  /** Submitted by another driver (or an earlier run of this one): never cancelled by us. */
  adopted: boolean;
  waiters: Map<string, Waiter>;
  state?: string;
  reason?: string;
  started?: boolean;
  goneSince?: number;
}

export function slurmRunner(settings: SlurmSettings, worker: Omit<WorkerCommand, 'storeRoot'>, backend: string): RunnerFactory {
  return async (ctx, run) => {
    const answer = await slurmAnswers();
    if (answer === 'missing')
      throw new UserError("Slurm's commands are not installed here (no scontrol on PATH); run on a cluster's submit host, or use --executor local");
    if (answer !== 'up') {
      throw new UserError(
        "no Slurm controller answers on this host ('scontrol ping'); start one (scripts/slurm/start-local-slurm.sh for a local test cluster) or use --executor local",
      );
    }
    const d = new SlurmDriver(ctx, run, settings, { ...worker, storeRoot: ctx.store.root }, backend);
    await d.adopt();
    return d;
  };
}

class SlurmDriver implements NodeRunner {
  readonly name = 'slurm' as const;
  readonly capacity = Number.MAX_SAFE_INTEGER;
  private readonly jobs = new Map<string, Tracked>();
  private readonly byKey = new Map<string, Tracked>();
  private pending: Waiter[] = [];
  private readonly queue: Waiter[][] = [];
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** A poll was asked for while one ran. */
  private pollAgain = false;
  private submitting = Promise.resolve();
  private interrupted = false;
  private closed = false;
  private warnedPoll = false;
  /** Jobs already settled (squeue still lists them while COMPLETING: never adopt them again). */
  private readonly ended = new Set<string>();
  /** Nodes submitted again after another driver's job ended without computing them. */
  private readonly resubmitted = new Set<string>();

  constructor(
    private readonly ctx: NodeContext,
    private readonly head: RunHeader,
    private readonly s: SlurmSettings,
    private readonly worker: WorkerCommand,
    private readonly backend: string,
  ) {
    ctx.signal?.addEventListener('abort', () => void this.interrupt(), { once: true });
    const d = ctx.dag.nodes.find((n) => n.op === 'dataset')?.params as { identity?: unknown } | undefined;
    this.datasetIdentity = typeof d?.identity === 'string' ? d.identity : undefined;
  }

  /** The dataset identity this run was planned with (sent to the jobs). */
  private readonly datasetIdentity: string | undefined;

  run(n: DagNode): Promise<void> {
    if (PLACING[n.op] === 'driver') return runHere(this.ctx, n, 'slurm');
    return new Promise((resolve) => {
      const w = { n, resolve };
      if (this.interrupted) return this.settleFailed(w, 'interrupted before it was submitted');
      const live = this.byKey.get(n.key);
      if (live) {
        live.waiters.set(n.key, w);
        this.ctx.emit({ type: 'node-log', id: n.id, message: `waiting for slurm job ${live.id} (${live.name}), which computes it` });
        return this.schedulePoll();
      }
      this.enqueue(w);
    });
  }

  /** Queues a node for the next scheduling pass. */
  private enqueue(w: Waiter): void {
    this.pending.push(w);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flush());
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** Finds live jobs of this store by their names, so their nodes are waited for, not resubmitted. */
  async adopt(): Promise<void> {
    let queued: Map<string, QueuedJob>;
    try {
      queued = await squeue(JOB_PREFIX);
    } catch (e) {
      throw new UserError(`cannot list Slurm jobs: ${(e as Error).message}`);
    }
    for (const q of queued.values()) {
      if (FINAL_STATES.has(q.state) || this.jobs.has(q.id) || this.ended.has(q.id)) continue;
      const dir = jobDir(this.worker.storeRoot, q.name);
      const spec = readJson<JobSpec>(join(dir, 'job.json'));
      if (!spec) continue; // a job of another store
      const t: Tracked = {
        id: q.id,
        name: q.name,
        dir,
        keys: new Set(spec.keys),
        submittedMs: Date.parse(spec.submittedAt),
        adopted: true,
        waiters: new Map(),
        state: q.state,
      };
      this.track(t);
    }
    if (this.jobs.size) this.schedulePoll();
  }

  private track(t: Tracked): void {
    this.jobs.set(t.id, t);
    for (const k of t.keys) this.byKey.set(k, t);
  }

  /** Packs the nodes made ready in one pass of the graph into jobs and queues them. */
  private async flush(): Promise<void> {
    try {
      await this.adopt().catch(() => {}); // another driver may have submitted some meanwhile
    } finally {
      this.flushing = false;
    }
    const ready = this.pending.splice(0);
    const groups = new Map<string, Waiter[]>();
    for (const w of ready) {
      const live = this.byKey.get(w.n.key);
      if (live) {
        live.waiters.set(w.n.key, w);
        continue;
      }
      if (this.interrupted) {
        this.settleFailed(w, 'interrupted before it was submitted');
        continue;
      }
      if (PLACING[w.n.op] === 'single') {
        this.queue.push([w]);
        continue;
      }
      const g = groups.get(w.n.op) ?? [];
      groups.set(w.n.op, g);
      g.push(w);
      if (g.length === this.s.groupSize) {
        this.queue.push(g);
        groups.delete(w.n.op);
      }
    }
    for (const g of groups.values()) this.queue.push(g);
    this.pump();
    this.schedulePoll();
  }

  private ownInFlight(): number {
    let n = 0;
    for (const t of this.jobs.values()) if (!t.adopted) n++;
    return n;
  }

  /** Submits queued jobs while fewer than --max-jobs of ours are in flight (one sbatch at a time). */
  private pump(): void {
    this.submitting = this.submitting.then(async () => {
      while (this.queue.length && !this.interrupted && this.ownInFlight() < this.s.maxJobs) await this.submit(this.queue.shift()!);
    });
  }

  private async submit(batch: Waiter[]): Promise<void> {
    const keys = batch.map((w) => w.n.key);
    const name = jobName(keys);
    const dir = jobDir(this.worker.storeRoot, name);
    const spec: JobSpec = {
      name,
      runId: this.head.id,
      pipeline: this.head.pipeline,
      source: this.head.source,
      ...(this.datasetIdentity !== undefined ? { datasetIdentity: this.datasetIdentity } : {}),
      keys,
      ids: batch.map((w) => w.n.id),
      backend: this.backend,
      ...(batch.some((w) => this.ctx.forced.has(w.n.id)) ? { forced: batch.filter((w) => this.ctx.forced.has(w.n.id)).map((w) => w.n.key) } : {}),
      submittedAt: new Date().toISOString(),
      driver: { host: currentHost(), pid: process.pid },
    };
    let id: string;
    try {
      const script = writeJob(dir, spec, this.worker, resourceArgs(this.s, this.s.resources[batch[0]!.n.op]));
      id = await sbatch(script);
    } catch (e) {
      for (const w of batch) this.settleFailed(w, `could not submit its Slurm job: ${(e as Error).message}`);
      return;
    }
    const t: Tracked = {
      id,
      name,
      dir,
      keys: new Set(keys),
      submittedMs: Date.parse(spec.submittedAt),
      adopted: false,
      waiters: new Map(batch.map((w) => [w.n.key, w])),
    };
    this.track(t);
    // A poll that ended while sbatch ran saw no job to follow and armed no timer: arm one now.
    this.schedulePoll();
    const what = batch.length > 1 ? ` with ${batch.length - 1} other node${batch.length > 2 ? 's' : ''}` : '';
    for (const w of batch) this.ctx.emit({ type: 'node-log', id: w.n.id, message: `submitted as slurm job ${id}${what} (log ${logPath(dir, id)})` });
  }

  private schedulePoll(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.poll();
    }, this.s.pollMs);
  }

  /** One look at Slurm and at the status files of the jobs we follow. */
  private async poll(): Promise<void> {
    if (this.closed) return;
    if (this.polling) {
      // The timer fired during a poll: that poll looks again when it ends.
      this.pollAgain = true;
      return;
    }
    this.pollAgain = false;
    this.polling = true;
    try {
      let queued: Map<string, QueuedJob> | undefined;
      try {
        queued = await squeue(JOB_PREFIX);
      } catch (e) {
        if (!this.warnedPoll) this.ctx.emit({ type: 'node-log', id: '-', message: `squeue failed (${(e as SlurmError).message}); reading status files only` });
        this.warnedPoll = true;
      }
      for (const t of [...this.jobs.values()]) await this.look(t, queued);
    } finally {
      this.polling = false;
    }
    this.pump();
    if (this.pollAgain || this.jobs.size || this.queue.length || this.pending.length) this.schedulePoll();
  }

  private async look(t: Tracked, queued: Map<string, QueuedJob> | undefined): Promise<void> {
    const q = queued?.get(t.id);
    if (q) {
      t.state = q.state;
      // Seen live again (requeued after a node failure): no longer counting down to "vanished".
      if (!FINAL_STATES.has(q.state)) t.goneSince = undefined;
      if (q.state === 'PENDING' && q.reason !== t.reason && (await this.pendingFor(t, q.reason))) return;
      t.reason = q.reason;
      if (q.state === 'RUNNING' && !t.started) {
        t.started = true;
        for (const w of t.waiters.values()) this.ctx.emit({ type: 'node-start', id: w.n.id, op: w.n.op, label: w.n.id });
      }
    }
    const st = readJson<JobStatus>(join(t.dir, 'status.json'));
    if (st && st.jobId === t.id) return this.finish(t, st);
    if (queued && (!q || FINAL_STATES.has(q.state))) {
      // A job we cancelled before it was seen running writes no status file: nothing to wait for.
      if (this.interrupted && !t.adopted && !t.started && q?.state === 'CANCELLED') return this.finish(t, undefined);
      // Gone, or ended without a status file yet: give a shared file system time to show it.
      t.goneSince ??= Date.now();
      if (Date.now() - t.goneSince >= this.s.vanishMs) await this.finish(t, undefined);
    }
  }

  /**
   * A pending job's reason, when it changes. One Slurm will never start (it asks for more than
   * the partition or the account allows) is cancelled and fails its nodes, instead of leaving
   * the run waiting in silence; another unusual reason (a node down, a hold) is said.
   */
  private async pendingFor(t: Tracked, reason: string): Promise<boolean> {
    if (!NEVER_STARTS.test(reason)) {
      if (!WAITING.test(reason))
        for (const w of t.waiters.values()) this.ctx.emit({ type: 'node-log', id: w.n.id, message: `slurm job ${t.id} is pending: ${reason}` });
      return false;
    }
    if (!t.adopted) await scancel([t.id]).catch(() => {});
    this.jobs.delete(t.id);
    this.ended.add(t.id);
    for (const k of t.keys) if (this.byKey.get(k) === t) this.byKey.delete(k);
    for (const w of t.waiters.values())
      this.settleFailed(w, `Slurm will never start its job (pending with reason ${reason}): ${this.neverWhy(reason, w.n)} (slurm job ${t.id})`);
    t.waiters.clear();
    return true;
  }

  private neverWhy(reason: string, n: DagNode): string {
    if (/Account|QOS/.test(reason) && !/PerJob/.test(reason)) return 'its account or QOS is not valid here (--account, --sbatch-arg --qos=...)';
    if (/Dependency/.test(reason)) return 'its dependency (--sbatch-arg --dependency=...) will never be met';
    const r = this.s.resources[n.op];
    const asked = `cpus=${r.cpus}, mem=${r.mem}, time=${r.time}${r.gpus ? `, gpus=${r.gpus}` : ''}${this.s.partition ? `, partition ${this.s.partition}` : ''}`;
    return `it asks for more than the cluster allows (${asked}); see 'scontrol show partition', and lower --cpus, --mem, --time or --gpus, or set --op-resources ${n.op}:...`;
  }

  /** A job ended: settle the nodes waited for from it, from their outcome files. */
  private async finish(t: Tracked, st: JobStatus | undefined): Promise<void> {
    this.jobs.delete(t.id);
    this.ended.add(t.id);
    for (const k of t.keys) if (this.byKey.get(k) === t) this.byKey.delete(k);
    if (!t.waiters.size) return;
    if (!st || st.signal || st.exit !== 0) t.state = (await finalState(t.id)) ?? t.state;
    for (const w of t.waiters.values()) this.settleFromJob(t, st, w);
  }

  private settleFromJob(t: Tracked, st: JobStatus | undefined, w: Waiter): void {
    const out = readJson<NodeOutcome>(join(t.dir, 'nodes', `${w.n.key}.json`));
    const log = this.ctx.log;
    const where = `slurm job ${t.id}, log ${logPath(t.dir, t.id)}`;
    if (out && out.status !== 'failed' && t.adopted) {
      // Another driver's job computed it (as a lock wait does locally): taken from the store here.
      log.set(w.n.id, 'cached');
      this.ctx.emit({ type: 'node-end', id: w.n.id, status: 'cached' });
      w.resolve();
      return;
    }
    if (out && out.status !== 'failed') {
      if (out.status === 'ran') log.ran(w.n.id, out.ms ?? 0);
      else log.set(w.n.id, 'cached');
      if (out.status === 'ran' && out.checksum) log.outputs.set(w.n.id, { checksum: out.checksum, ...(out.replaced ? { replaced: out.replaced } : {}) });
      log.placements.set(w.n.id, {
        host: out.host,
        executor: 'slurm',
        jobId: t.id,
        ...(st ? { queueMs: Math.max(0, Math.round(st.start * 1000 - t.submittedMs)) } : {}),
        ...(out.ms !== undefined ? { wallMs: out.ms } : {}),
      });
      this.ctx.emit({ type: 'node-end', id: w.n.id, status: out.status, ...(out.ms !== undefined ? { ms: out.ms } : {}) });
      w.resolve();
      return;
    }
    // A node stopped because Slurm ended its job (scancel, time limit) says why the job ended.
    const stopped = out && /^interrupted/.test(out.error ?? '') && (st?.signal !== undefined || SLURM_ENDED.has(t.state ?? ''));
    const why = out && !stopped ? (out.error ?? 'failed') : this.jobEnd(t, st, w.n);
    if (this.resubmit(t, out, w, why)) return;
    this.settleFailed(w, `${why} (${where})`);
  }

  /**
   * Another driver's job that ended without computing the node because it was stopped (that
   * driver's Ctrl-C, an scancel) is no failure of this run: the node is submitted again, once.
   */
  private resubmit(t: Tracked, out: NodeOutcome | undefined, w: Waiter, why: string): boolean {
    const stopped = out ? /^interrupted/.test(out.error ?? '') : t.state === 'CANCELLED' || t.state === 'PREEMPTED';
    if (!t.adopted || !stopped || this.interrupted || this.resubmitted.has(w.n.key)) return false;
    this.resubmitted.add(w.n.key);
    this.ctx.emit({ type: 'node-log', id: w.n.id, message: `slurm job ${t.id} of another driver ended without computing it (${why}); submitting it again` });
    this.enqueue(w);
    return true;
  }

  /** Why a job ended without an outcome for node n. */
  private jobEnd(t: Tracked, st: JobStatus | undefined, n: DagNode): string {
    const r = this.s.resources[n.op];
    switch (t.state) {
      case 'TIMEOUT':
        return `killed by its time limit (--time ${r.time}; raise it with --time or --op-resources ${n.op}:time=...)`;
      case 'OUT_OF_MEMORY':
        return `out of memory: the job exceeded its memory limit (--mem ${r.mem}; raise it with --mem or --op-resources ${n.op}:mem=...)`;
      case 'CANCELLED':
        return this.interrupted && !t.adopted ? 'interrupted: the job was cancelled' : 'the job was cancelled (scancel) before the node finished';
      case 'NODE_FAIL':
        return 'the cluster node running the job failed';
      case 'PREEMPTED':
        return 'the job was preempted';
    }
    if (!st) return `the job ended without writing its status file (Slurm state ${t.state ?? 'unknown'})`;
    if (st.signal) return `the job was sent SIG${st.signal} (Slurm state ${t.state ?? 'unknown'})`;
    return `the job ended with exit code ${st.exit} before the node finished`;
  }

  private settleFailed(w: Waiter, message: string): void {
    this.ctx.log.failed(w.n, message);
    this.ctx.emit({ type: 'node-end', id: w.n.id, status: 'failed', error: message, where: `${w.n.loc.file}:${w.n.loc.line}` });
    w.resolve();
  }

  /** Ctrl-C: nothing more is submitted, our jobs are cancelled, and their nodes settle as they end. */
  private async interrupt(): Promise<void> {
    this.interrupted = true;
    for (const w of this.pending.splice(0)) this.settleFailed(w, 'interrupted before it was submitted');
    for (const b of this.queue.splice(0)) for (const w of b) this.settleFailed(w, 'interrupted before it was submitted');
    await this.submitting;
    const own = [...this.jobs.values()].filter((t) => !t.adopted);
    await scancel(own.map((t) => t.id)).catch((e) => this.ctx.emit({ type: 'node-log', id: '-', message: `scancel failed: ${(e as Error).message}` }));
    // Jobs of others are not ours to cancel: stop waiting for them.
    for (const t of this.jobs.values()) {
      if (!t.adopted) continue;
      for (const w of t.waiters.values()) this.settleFailed(w, `interrupted while waiting for slurm job ${t.id} of another driver`);
      t.waiters.clear();
    }
    this.schedulePoll();
  }
}

/** Final states in which Slurm, not the job, ended the job. */
const SLURM_ENDED = new Set(['CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'DEADLINE']);

/** Pending reasons that Slurm will not lift by itself: the job asks for what it cannot get. */
const NEVER_STARTS = /^(PartitionConfig|PartitionTimeLimit|BadConstraints|InvalidAccount|InvalidQOS|DependencyNeverSatisfied|(Assoc|QOS)Max\w*PerJob\w*)$/;
/** Ordinary reasons to wait: other jobs first, resources busy, a queue-wide limit. */
const WAITING = /^(None|Priority|Resources|Dependency|BeginTime|Cleaning|Prolog|\w*Grp\w*|\w*MaxJobs\w*|\w*MaxSubmit\w*|\w*PerUser\w*|\w*PerAccount\w*)?$/;

/**
 * A finished job's final state (TIMEOUT, CANCELLED, OUT_OF_MEMORY, ...). Right after its status
 * file appears the job may still be COMPLETING: ask again for a few seconds.
 */
async function finalState(id: string): Promise<string | undefined> {
  let last: string | undefined;
  for (let i = 0; i < 40; i++) {
    const now = await jobState(id).catch(() => undefined);
    // Forgotten by the controller: the accounting database, where there is one, still knows.
    if (!now) return (await accountedState(id)) ?? last;
    last = now.state;
    if (FINAL_STATES.has(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}
