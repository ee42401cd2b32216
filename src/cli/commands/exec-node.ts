/**
 * `trendc exec-node --job DIR`: the command a Slurm job runs. It plans the pipeline text saved
 * in the job's job.json, runs the job's nodes from the store (without the LMDB index: workers on
 * other hosts never write it), and writes an outcome per node into DIR/nodes/. Exit 0 when all
 * nodes are stored, 1 when any failed, 130/143 when interrupted.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../compiler/diagnostics.js';
import { readJson, type JobSpec } from '../../runtime/executor/slurm/job.js';
import { runJob } from '../../runtime/executor/slurm/worker.js';
import { EXIT } from '../output.js';
import { loadOps } from '../ops.js';
import { loadPlan } from '../pipeline.js';
import { ProgressRenderer } from '../progress.js';
import { withStore } from '../store.js';

export function registerExecNode(program: Command, setCode: (c: number) => void): void {
  program
    .command('exec-node')
    .description('run the nodes of one cluster job (what a Slurm job of `run --executor slurm` runs)')
    .requiredOption('--job <dir>', "the job's directory (holds job.json)")
    .option('--cache <dir>', 'cache directory (the shared store)')
    .action(async (o: { job: string; cache?: string }) => setCode(await execNode(resolve(o.job), o.cache)));
}

async function execNode(dir: string, cache: string | undefined): Promise<number> {
  const spec = readJson<JobSpec>(join(dir, 'job.json'));
  if (!spec) throw new UserError(`${join(dir, 'job.json')}: missing or not a job description`);
  return withStore(cache, { create: false, index: false }, async (store) => {
    const { dag } = await loadPlan(spec.pipeline, undefined, spec.source, spec.datasetIdentity);
    const controller = new AbortController();
    let code = 0;
    // Slurm signals every process of the job and the batch script passes its SIGTERM on: the
    // same stop arrives twice. Every signal is handled (a second one must not kill the worker
    // before it has written its outcomes and released its locks); Slurm's SIGKILL ends it if
    // it does not stop in time.
    const onSig = (sig: NodeJS.Signals) => {
      if (controller.signal.aborted) return;
      process.stderr.write(`exec-node: ${sig}: stopping; nothing partial is stored\n`);
      code = sig === 'SIGINT' ? 130 : 143;
      controller.abort();
    };
    process.on('SIGINT', onSig);
    process.on('SIGTERM', onSig);
    const renderer = new ProgressRenderer('plain');
    try {
      const ops = await loadOps(spec.backend ?? 'auto');
      const failed = await runJob(dag, store, ops, spec, dir, { signal: controller.signal, emit: (e) => renderer.handle(e) });
      return code || (failed ? EXIT.failed : EXIT.ok);
    } finally {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
      renderer.stop();
    }
  });
}
