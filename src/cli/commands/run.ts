/** `trendc run`, `explain`, `runs`, `diff`, `report`: executing pipelines and comparing runs. */
import { realpathSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Dag } from '../../compiler/dag.js';
import { UserError } from '../../compiler/diagnostics.js';
import { BACKENDS } from '../../compiler/schema.js';
import { execute, type ExecuteOptions, type ExecuteResult } from '../../runtime/executor/executor.js';
import type { RunnerFactory } from '../../runtime/executor/runner.js';
import type { SlurmFlags } from '../../runtime/executor/slurm/resources.js';
import { explainNodes, type Explained } from '../../runtime/executor/explain.js';
import { countStatuses } from '../../runtime/executor/records.js';
import type { RunRecord } from '../../store/store.js';
import { defaultDiffReportDir, diffRuns, pickRuns, renderDiff, writeDiffReportTo } from '../diff.js';
import { EXIT, json, table } from '../output.js';
import { loadOps } from '../ops.js';
import { loadPlan } from '../pipeline.js';
import { pickMode, ProgressRenderer } from '../progress.js';
import { reportRun, runReportDir, writeRunReport } from '../run-report.js';
import { storeMemo, withStore } from '../store.js';

type SetCode = (c: number) => void;

interface RunOpts extends SlurmFlags {
  executor?: string;
  dryRun?: boolean;
  force?: string[];
  forceAll?: boolean;
  only?: string[];
  backend?: string;
  jobs?: string;
  cache?: string;
  quiet?: boolean;
  json?: boolean;
  reportDir?: string;
  report?: boolean;
}

export function registerRunCommands(program: Command, setCode: SetCode): void {
  registerRun(program, setCode);
  registerExplain(program, setCode);
  registerRuns(program, setCode);
  registerDiff(program, setCode);
  registerReport(program, setCode);
}

function registerRun(program: Command, setCode: SetCode): void {
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  program
    .command('run')
    .description('run a pipeline: compute the nodes not in the cache, then write the report')
    .argument('<file>', '.trend file')
    .option('--dry-run', 'list what would run, run nothing')
    .option('--force <node>', 'recompute this node even if cached (repeatable; id, id prefix ending in /, glob, or key prefix)', collect)
    .option('--force-all', 'recompute every node')
    .option('--only <node>', 'run only this node and what it needs (repeatable)', collect)
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | webgpu | wasm | cpu')
    .option('--jobs <n>', 'nodes run at once (default 1)')
    .option('--cache <dir>', 'cache directory (default $TREND_CACHE or ./cache)')
    .option('--report-dir <dir>', 'where to write the report (default reports/<pipeline>)')
    .option('--no-report', 'do not write a report')
    .option('--quiet', 'print only errors and the summary')
    .option('--json', 'print events as JSON lines')
    .option('--executor <name>', 'local (default) | slurm: where nodes run (never part of a key)')
    .option('--partition <p>', 'slurm: partition')
    .option('--account <a>', 'slurm: account')
    .option('--time <t>', 'slurm: time limit of every job, as sbatch takes it (overrides the per-operation defaults)')
    .option('--mem <m>', 'slurm: memory per job (e.g. 16G)')
    .option('--cpus <n>', 'slurm: CPUs per job')
    .option('--gpus <n>', 'slurm: GPUs per job (--gres=gpu:N)')
    .option('--op-resources <spec>', 'slurm: resources of one operation, e.g. train:cpus=8,mem=32G,time=3-00:00:00,gpus=1 (repeatable)', collect)
    .option('--sbatch-arg <arg>', 'slurm: extra sbatch argument for every job, e.g. --qos=long (repeatable)', collect)
    .option('--poll <s>', 'slurm: seconds between looks at the queue (default 2)')
    .option('--max-jobs <n>', 'slurm: jobs in flight at most (default 100)')
    .option('--group-size <n>', 'slurm: evaluations packed into one job at most (default 64)')
    .action(async (file: string, o: RunOpts) => setCode(await runCommand(file, o)));
}

export async function runCommand(file: string, o: RunOpts): Promise<number> {
  const executor = await pickExecutor(o);
  return withStore(o.cache, {}, async (store) => {
    const { loaded, dag } = await loadPlan(file, storeMemo(store));
    const backend = parseBackend(o.backend ?? loaded.checked.backend ?? process.env.TREND_BACKEND ?? 'auto');
    const opts: ExecuteOptions = {
      pipeline: resolve(file),
      source: loaded.source,
      jobs: parseJobs(o.jobs),
      ...selection(o),
      ...(executor ? { runner: executor(backend) } : {}),
    };
    const renderer = new ProgressRenderer(pickMode(o));
    const res = await interruptible(renderer, async (signal) =>
      execute(dag, store, await loadOps(backend), { ...opts, onEvent: (e) => renderer.handle(e), signal }),
    );
    if (o.dryRun) return printDryRun(dag, res, o.json);
    const report =
      o.report !== false && res.status !== 'interrupted'
        ? await writeRunReport(
            store,
            res.runId,
            o.reportDir ? resolve(o.reportDir) : runReportDir(file, { id: res.runId, status: res.status, ...(opts.only ? { only: opts.only } : {}) }),
          )
        : {};
    printSummary(res, report.reportDir, o.json);
    if (report.error) {
      process.stderr.write(`trendc: ${report.error}\n`);
      return EXIT.failed;
    }
    return res.status === 'ok' ? EXIT.ok : res.status === 'interrupted' ? 130 : EXIT.failed;
  });
}

const SLURM_FLAGS: Array<keyof SlurmFlags> = [
  'partition',
  'account',
  'time',
  'mem',
  'cpus',
  'gpus',
  'opResources',
  'sbatchArg',
  'poll',
  'maxJobs',
  'groupSize',
];

/** The Slurm runner when --executor slurm (settings checked before any store is opened). */
async function pickExecutor(o: RunOpts): Promise<((backend: string) => RunnerFactory) | undefined> {
  const name = o.executor ?? 'local';
  if (name !== 'local' && name !== 'slurm') throw new UserError(`unknown executor '${name}' (expected local or slurm)`);
  if (name === 'local') {
    const given = SLURM_FLAGS.find((k) => o[k] !== undefined);
    if (given) throw new UserError(`--${given.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} applies to --executor slurm only`);
    return undefined;
  }
  if (o.jobs !== undefined) throw new UserError('--jobs applies to --executor local; with slurm, use --max-jobs');
  const { slurmSettings } = await import('../../runtime/executor/slurm/resources.js');
  const { slurmRunner } = await import('../../runtime/executor/slurm/driver.js');
  const settings = slurmSettings(o);
  const worker = { node: process.execPath, trendc: realpathSync(process.argv[1]!), cwd: process.cwd() };
  return (backend) => slurmRunner(settings, worker, backend);
}

function parseBackend(backend: string): string {
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new UserError(`unknown backend '${backend}' (expected one of: ${BACKENDS.join(', ')})`);
  return backend;
}

function parseJobs(flag: string | undefined): number {
  const jobs = flag ? Number(flag) : 1;
  if (!Number.isInteger(jobs) || jobs < 1) throw new UserError(`--jobs must be a positive integer, got ${flag}`);
  return jobs;
}

function selection(o: RunOpts): Partial<ExecuteOptions> {
  return {
    ...(o.dryRun ? { dryRun: true } : {}),
    ...(o.force ? { force: o.force } : {}),
    ...(o.forceAll ? { forceAll: true } : {}),
    ...(o.only ? { only: o.only } : {}),
  };
}

/** Runs `fn` with a signal that SIGINT and SIGTERM abort; restores the terminal and the signals after. */
async function interruptible<T>(renderer: ProgressRenderer, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSig = (sig: string) => {
    // The runtime yields to the event loop every ~100 ms, so the running step stops promptly.
    process.stderr.write(`\ninterrupted (${sig}): stopping the running steps; nothing partial is cached (repeat to quit at once)\n`);
    controller.abort();
  };
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  try {
    return await fn(controller.signal);
  } finally {
    // Also when fn throws (a backend that cannot load).
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
    renderer.stop();
  }
}

function printDryRun(dag: Dag, res: ExecuteResult, asJson?: boolean): number {
  const rows = dag.nodes.filter((n) => res.statuses.has(n.id)).map((n) => [res.statuses.get(n.id) === 'cached' ? 'cached' : 'would run', n.op, n.id]);
  if (asJson) process.stdout.write(json({ nodes: rows.map(([s, op, id]) => ({ status: s, op, id })) }) + '\n');
  else process.stdout.write(table(rows, ['status', 'op', 'node']) + `\n\n${res.counts.cached} cached, ${res.counts.pending} would run\n`);
  return EXIT.ok;
}

function printSummary(res: ExecuteResult, reportDir: string | undefined, asJson?: boolean): void {
  const c = res.counts;
  if (asJson) {
    process.stdout.write(
      JSON.stringify({
        type: 'summary',
        runId: res.runId,
        status: res.status,
        counts: c,
        ms: Math.round(res.ms),
        backend: res.backend ?? null,
        report: reportDir ?? null,
      }) + '\n',
    );
    return;
  }
  const summary = `${c.ran} ran, ${c.cached} cached, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''} in ${(res.ms / 1000).toFixed(1)}s${res.backend ? ` on ${res.backend}` : ''}`;
  process.stdout.write(`run ${res.runId} ${res.status}: ${summary}\n`);
  if (reportDir) process.stdout.write(`report: ${relative(process.cwd(), reportDir) || '.'}/index.md\n`);
  for (const e of res.errors) process.stderr.write(`error: ${e.id} (${e.where}): ${e.message}\n`);
}

function registerExplain(program: Command, setCode: SetCode): void {
  program
    .command('explain')
    .description('for every node that would run, say why (new, or which parameter, input or code version changed)')
    .argument('<file>', '.trend file')
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print as JSON')
    .action((file: string, o: { cache?: string; json?: boolean }) =>
      withStore(o.cache, {}, async (store) => {
        const { dag } = await loadPlan(file, storeMemo(store));
        const history = store.runs(resolve(file));
        const items = explainNodes(dag, store, history);
        const last = history.filter((r) => r.status !== 'running').at(-1);
        if (o.json) process.stdout.write(json({ lastRun: last?.id ?? null, nodes: items }) + '\n');
        else printExplained(items, dag.nodes.length);
        setCode(EXIT.ok);
      }),
    );
}

function printExplained(items: Explained[], total: number): void {
  const fmt = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v));
  if (!items.length) process.stdout.write(`nothing to run: all ${total} nodes are cached\n`);
  for (const it of items) {
    process.stdout.write(`${it.id}: ${it.reason}\n`);
    for (const c of it.changes.slice(0, 20)) process.stdout.write(`    ${c.path}: ${fmt(c.before)} -> ${fmt(c.after)}\n`);
  }
  if (items.length) process.stdout.write(`\n${items.length} of ${total} nodes would run\n`);
}

function registerRuns(program: Command, setCode: SetCode): void {
  program
    .command('runs')
    .description('the run history (of one pipeline, or all)')
    .argument('[file]', '.trend file')
    .option('--cache <dir>', 'cache directory')
    .option('--run <id>', "one run's nodes: status, and where each that ran was computed (host, Slurm job, queue wait, wall time)")
    .option('--json', 'print as JSON')
    .action((file: string | undefined, o: { cache?: string; json?: boolean; run?: string }) =>
      withStore(o.cache, {}, (store) => {
        if (o.run !== undefined) {
          printRunNodes(reportRun(store, o.run), o.json);
          return setCode(EXIT.ok);
        }
        const runs = store.runs(file ? resolve(file) : undefined);
        if (o.json) process.stdout.write(json(runs.map(({ source: _s, nodes, ...r }) => ({ ...r, counts: countStatuses(nodes) }))) + '\n');
        else if (!runs.length) process.stdout.write('no runs yet\n');
        else process.stdout.write(table(runs.map(runRow), ['run', 'status', 'pipeline', 'nodes', 'wall', 'backend']) + '\n');
        setCode(EXIT.ok);
      }),
    );
}

function printRunNodes(r: RunRecord, asJson?: boolean): void {
  if (asJson) {
    process.stdout.write(json(r.nodes.map((n) => ({ id: n.id, op: n.op, status: n.status, ...(n.placement ? { placement: n.placement } : {}) }))) + '\n');
    return;
  }
  const secs = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`);
  const rows = r.nodes.map((n) => [
    n.id,
    n.status,
    n.placement?.host ?? '-',
    n.placement?.jobId ?? '-',
    secs(n.placement?.queueMs),
    secs(n.placement?.wallMs ?? n.ms),
  ]);
  process.stdout.write(
    `run ${r.id} (${r.status}, executor ${r.executor ?? 'local'}, driver on ${r.host ?? '?'})\n` +
      table(rows, ['node', 'status', 'host', 'job', 'queue wait', 'wall']) +
      '\n',
  );
}

function runRow(r: RunRecord): string[] {
  const c = countStatuses(r.nodes);
  const ms = r.endedAt ? Date.parse(r.endedAt) - Date.parse(r.startedAt) : undefined;
  return [
    r.id,
    r.status,
    relative(process.cwd(), r.pipeline),
    `${c.ran ?? 0} ran, ${c.cached ?? 0} cached, ${c.failed ?? 0} failed${c.skipped ? `, ${c.skipped} skipped` : ''}${c.pending ? `, ${c.pending} not run` : ''}`,
    ms !== undefined ? `${(ms / 1000).toFixed(1)}s` : '-',
    r.backend ?? '-',
  ];
}

interface DiffOpts {
  file?: string;
  minDelta: string;
  cache?: string;
  json?: boolean;
  reportDir?: string;
  report?: boolean;
}

function registerDiff(program: Command, setCode: SetCode): void {
  program
    .command('diff')
    .description(
      'compare two runs: result changes by name (accuracies, TM cells, ensembles) with sample sizes, then nodes added, removed and changed (default: the last two runs of the pipeline); writes a diff report',
    )
    .argument('[runA]', 'earlier run id (or prefix), or a .trend file')
    .argument('[runB]', 'later run id (or prefix)')
    .option('--file <file>', 'the pipeline: its last two runs, or with one run given, its newest run')
    .option('--min-delta <x>', 'list numeric changes at least this large (smaller ones are counted)', '0.01')
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print everything as JSON')
    .option('--report-dir <dir>', 'where to write the diff report (default reports/<pipeline>/diff-<runA>-<runB>)')
    .option('--no-report', 'do not write a diff report')
    .action((a: string | undefined, b: string | undefined, o: DiffOpts) => {
      const minDelta = Number(o.minDelta);
      if (!Number.isFinite(minDelta) || minDelta < 0) throw new UserError(`--min-delta must be a non-negative number, got ${o.minDelta}`);
      // `trendc diff FILE`: the last two runs of that pipeline.
      const file = o.file ?? (a && !b && /\.trend$/.test(a) ? a : undefined);
      return withStore(o.cache, {}, async (store) => {
        const [ra, rb] = pickRuns(store, file === a ? undefined : a, b, file);
        const d = diffRuns(ra, rb, store, minDelta);
        const report = o.report === false ? {} : await writeDiffReportTo(store, ra, rb, d, resolve(o.reportDir ?? defaultDiffReportDir(ra, rb)));
        if (o.json) process.stdout.write(json({ ...d, report: report.reportDir ?? null }) + '\n');
        else {
          process.stdout.write(renderDiff(d));
          if (report.reportDir) {
            const m = report.marked!;
            const beyond = `${m.tm} TM cell${m.tm === 1 ? '' : 's'} and ${m.accuracy} accurac${m.accuracy === 1 ? 'y' : 'ies'} changed beyond their 95% intervals`;
            process.stdout.write(`report: ${relative(process.cwd(), report.reportDir) || '.'}/index.md and index.html (${beyond})\n`);
          }
        }
        if (report.error) process.stderr.write(`trendc: ${report.error}\n`);
        setCode(report.error ? EXIT.failed : EXIT.ok);
      });
    });
}

function registerReport(program: Command, setCode: SetCode): void {
  program
    .command('report')
    .description('regenerate the report of a run from the cache alone')
    .argument('[run]', 'run id or prefix (default: the last run)')
    .option('--out <dir>', "output directory (default: the run's report directory)")
    .option('--cache <dir>', 'cache directory')
    .action((ref: string | undefined, o: { out?: string; cache?: string }) =>
      withStore(o.cache, {}, async (store) => {
        const run = reportRun(store, ref);
        const dir = resolve(o.out ?? run.reportDir ?? runReportDir(run.pipeline, run));
        const { writeReport } = await import('../../report/report.js');
        await writeReport(store, run, dir);
        process.stdout.write(`report: ${relative(process.cwd(), dir) || '.'}/index.md\n`);
        setCode(EXIT.ok);
      }),
    );
}
