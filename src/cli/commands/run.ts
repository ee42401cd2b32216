/** `trendc run`, `explain`, `runs`, `diff`: executing pipelines and comparing runs. */
import { basename, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Dag } from '../../compiler/dag.js';
import { UserError } from '../../compiler/diagnostics.js';
import { jsonSafe } from '../../compiler/jsonsafe.js';
import { OP_VERSIONS } from '../../compiler/ops.js';
import { BACKENDS } from '../../compiler/schema.js';
import { execute } from '../../runtime/executor/executor.js';
import type { OpProvider } from '../../runtime/executor/types.js';
import type { RunRecord, Store } from '../../store/store.js';
import { PACKAGE_VERSION } from '../../version.js';
import { diffRuns, diffValues, pickRuns, renderDiff, type Change } from '../diff.js';
import { describeFsError, EXIT, json, table } from '../output.js';
import { loadPlan } from '../pipeline.js';
import { pickMode, ProgressRenderer } from '../progress.js';
import { openStore } from '../store.js';

export async function loadOps(backend: string): Promise<OpProvider> {
  const custom = process.env.TREND_OPS_MODULE;
  if (custom) {
    const mod = (await import(resolve(custom))) as { createOps(b: string): OpProvider };
    return mod.createOps(backend);
  }
  const { createOps } = await import('../../runtime/ops/registry.js');
  return createOps(backend);
}

interface RunOpts {
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

export async function runCommand(file: string, o: RunOpts): Promise<number> {
  const store = await openStore(o.cache);
  try {
    const { loaded, dag } = await loadPlan(file, { get: (k) => store.memoGet(k), put: (k, v) => store.memoPut(k, v) });
    const backend = o.backend ?? loaded.checked.backend ?? process.env.TREND_BACKEND ?? 'auto';
    if (!(BACKENDS as readonly string[]).includes(backend)) throw new UserError(`unknown backend '${backend}' (expected one of: ${BACKENDS.join(', ')})`);
    const jobs = o.jobs ? Number(o.jobs) : 1;
    if (!Number.isInteger(jobs) || jobs < 1) throw new UserError(`--jobs must be a positive integer, got ${o.jobs}`);
    const mode = pickMode(o);
    const renderer = new ProgressRenderer(mode);
    const controller = new AbortController();
    const onSig = (sig: string) => {
      // The runtime yields to the event loop every ~100 ms, so the running step stops promptly.
      process.stderr.write(`\ninterrupted (${sig}): stopping the running steps; nothing partial is cached (repeat to quit at once)\n`);
      controller.abort();
    };
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    let res: Awaited<ReturnType<typeof execute>>;
    try {
      const ops = await loadOps(backend);
      res = await execute(dag, store, ops, {
        pipeline: resolve(file),
        source: loaded.source,
        ...(o.dryRun ? { dryRun: true } : {}),
        ...(o.force ? { force: o.force } : {}),
        ...(o.forceAll ? { forceAll: true } : {}),
        ...(o.only ? { only: o.only } : {}),
        jobs,
        onEvent: (e) => renderer.handle(e),
        signal: controller.signal,
      });
    } finally {
      // Also when execute throws (a backend that cannot load): restore the terminal and the signals.
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
      renderer.stop();
    }

    if (o.dryRun) {
      const rows = dag.nodes.filter((n) => res.statuses.has(n.id)).map((n) => [res.statuses.get(n.id) === 'cached' ? 'cached' : 'would run', n.op, n.id]);
      if (o.json) process.stdout.write(json({ nodes: rows.map(([s, op, id]) => ({ status: s, op, id })) }) + '\n');
      else process.stdout.write(table(rows, ['status', 'op', 'node']) + `\n\n${res.counts.cached} cached, ${res.counts.pending} would run\n`);
      return EXIT.ok;
    }

    let reportDir: string | undefined;
    let reportError: string | undefined;
    if (o.report !== false && res.status !== 'interrupted') {
      const { writeReport } = await import('../../report/report.js');
      const run = store.getRun(res.runId)!;
      const dir = resolve(o.reportDir ?? `reports/${basename(file).replace(/\.trend$/, '')}`);
      try {
        await writeReport(store, run, dir);
        reportDir = dir;
      } catch (e) {
        // The run is recorded and its results cached; only the report could not be written.
        const why = describeFsError(e);
        if (!why) throw e;
        reportError = `the report could not be written to ${dir}: ${why} (trendc report ${res.runId} --out DIR writes it elsewhere)`;
      }
      if (reportDir) store.putRun({ ...run, reportDir });
    }
    const c = res.counts;
    const summary = `${c.ran} ran, ${c.cached} cached, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''} in ${(res.ms / 1000).toFixed(1)}s${res.backend ? ` on ${res.backend}` : ''}`;
    if (o.json) process.stdout.write(JSON.stringify({ type: 'summary', runId: res.runId, status: res.status, counts: c, ms: Math.round(res.ms), backend: res.backend ?? null, report: reportDir ?? null }) + '\n');
    else {
      process.stdout.write(`run ${res.runId} ${res.status}: ${summary}\n`);
      if (reportDir) process.stdout.write(`report: ${relative(process.cwd(), reportDir) || '.'}/index.md\n`);
      for (const e of res.errors) process.stderr.write(`error: ${e.id} (${e.where}): ${e.message}\n`);
    }
    if (reportError) {
      process.stderr.write(`trendc: ${reportError}\n`);
      return EXIT.failed;
    }
    return res.status === 'ok' ? EXIT.ok : res.status === 'interrupted' ? 130 : EXIT.failed;
  } finally {
    await store.close();
  }
}

/** Why each node that would run must run, compared with the last run of this pipeline. */
export function explainNodes(dag: Dag, store: Store, last: RunRecord | undefined): Array<{ id: string; reason: string; changes: Change[] }> {
  const prev = new Map(last?.nodes.map((n) => [n.id, n]) ?? []);
  const prevKeyOfId = (id: string) => prev.get(id)?.key;
  const out: Array<{ id: string; reason: string; changes: Change[] }> = [];
  for (const n of dag.nodes) {
    if (store.has(n.key)) continue;
    const p = prev.get(n.id);
    if (!p) {
      out.push({ id: n.id, reason: last ? 'new node (not in the last run)' : 'new node (no earlier run of this pipeline)', changes: [] });
      continue;
    }
    if (p.key === n.key) {
      out.push({ id: n.id, reason: p.status === 'failed' ? `failed in the last run: ${p.error ?? ''}` : 'same key as the last run, but not in the cache (removed, or never finished)', changes: [] });
      continue;
    }
    const changes = diffValues(p.params, jsonSafe(n.params), 'params');
    const changedInputs: string[] = [];
    for (const [role, v] of Object.entries(n.inputs)) {
      for (const id of Array.isArray(v) ? v : [v]) {
        const k = dag.byId.get(id)!.key;
        if (prevKeyOfId(id) !== k) changedInputs.push(`${role}: ${id}`);
      }
    }
    const reasons: string[] = [];
    if (changes.length) reasons.push('parameters changed');
    if (changedInputs.length) reasons.push(`inputs changed (${changedInputs.join(', ')})`);
    if (last && last.packageVersion !== PACKAGE_VERSION) reasons.push(`package version ${last.packageVersion} -> ${PACKAGE_VERSION}`);
    const meta = store.meta(p.key);
    if (meta && meta.opVersion !== OP_VERSIONS[n.op]) reasons.push(`code version of '${n.op}' ${meta.opVersion} -> ${OP_VERSIONS[n.op]}`);
    if (!reasons.length) reasons.push('key changed (dataset files or salt)');
    out.push({ id: n.id, reason: reasons.join('; '), changes });
  }
  return out;
}

export function registerRunCommands(program: Command, setCode: (c: number) => void): void {
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
    .action(async (file: string, o: RunOpts) => setCode(await runCommand(file, o)));

  program
    .command('explain')
    .description('for every node that would run, say why (new, or which parameter, input or code version changed)')
    .argument('<file>', '.trend file')
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print as JSON')
    .action(async (file: string, o: { cache?: string; json?: boolean }) => {
      const store = await openStore(o.cache);
      try {
        const { dag } = await loadPlan(file, { get: (k) => store.memoGet(k), put: (k, v) => store.memoPut(k, v) });
        const runs = store.runs(resolve(file)).filter((r) => r.status !== 'running');
        const items = explainNodes(dag, store, runs.at(-1));
        if (o.json) process.stdout.write(json({ lastRun: runs.at(-1)?.id ?? null, nodes: items }) + '\n');
        else {
          if (!items.length) process.stdout.write(`nothing to run: all ${dag.nodes.length} nodes are cached\n`);
          for (const it of items) {
            process.stdout.write(`${it.id}: ${it.reason}\n`);
            for (const c of it.changes.slice(0, 20)) process.stdout.write(`    ${c.path}: ${fmt(c.before)} -> ${fmt(c.after)}\n`);
          }
          if (items.length) process.stdout.write(`\n${items.length} of ${dag.nodes.length} nodes would run\n`);
        }
        setCode(EXIT.ok);
      } finally {
        await store.close();
      }
    });

  program
    .command('runs')
    .description('the run history (of one pipeline, or all)')
    .argument('[file]', '.trend file')
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print as JSON')
    .action(async (file: string | undefined, o: { cache?: string; json?: boolean }) => {
      const store = await openStore(o.cache);
      try {
        const runs = store.runs(file ? resolve(file) : undefined);
        if (o.json) process.stdout.write(json(runs.map(({ source: _s, nodes, ...r }) => ({ ...r, counts: countStatuses(nodes) }))) + '\n');
        else if (!runs.length) process.stdout.write('no runs yet\n');
        else {
          const rows = runs.map((r) => {
            const c = countStatuses(r.nodes);
            const ms = r.endedAt ? Date.parse(r.endedAt) - Date.parse(r.startedAt) : undefined;
            return [r.id, r.status, relative(process.cwd(), r.pipeline), `${c.ran ?? 0} ran, ${c.cached ?? 0} cached, ${c.failed ?? 0} failed`, ms !== undefined ? `${(ms / 1000).toFixed(1)}s` : '-', r.backend ?? '-'];
          });
          process.stdout.write(table(rows, ['run', 'status', 'pipeline', 'nodes', 'wall', 'backend']) + '\n');
        }
        setCode(EXIT.ok);
      } finally {
        await store.close();
      }
    });

  program
    .command('diff')
    .description('compare two runs: result changes by name (accuracies, TM cells, ensembles) with sample sizes, then nodes added, removed and changed (default: the last two runs of the pipeline)')
    .argument('[runA]', 'earlier run id (or prefix), or a .trend file')
    .argument('[runB]', 'later run id (or prefix)')
    .option('--file <file>', 'take the last two runs of this pipeline')
    .option('--min-delta <x>', 'list numeric changes at least this large (smaller ones are counted)', '0.01')
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print everything as JSON')
    .action(async (a: string | undefined, b: string | undefined, o: { file?: string; minDelta: string; cache?: string; json?: boolean }) => {
      const minDelta = Number(o.minDelta);
      if (!Number.isFinite(minDelta) || minDelta < 0) throw new UserError(`--min-delta must be a non-negative number, got ${o.minDelta}`);
      const store = await openStore(o.cache);
      try {
        // `trendc diff FILE`: the last two runs of that pipeline.
        const file = o.file ?? (a && !b && /\.trend$/.test(a) ? a : undefined);
        const [ra, rb] = pickRuns(store, file === a ? undefined : a, b, file);
        const d = diffRuns(ra, rb, store, minDelta);
        if (o.json) process.stdout.write(json(d) + '\n');
        else process.stdout.write(renderDiff(d));
        setCode(EXIT.ok);
      } finally {
        await store.close();
      }
    });

  program
    .command('report')
    .description('regenerate the report of a run from the cache alone')
    .argument('[run]', 'run id or prefix (default: the last run)')
    .option('--out <dir>', 'output directory (default: the run\'s report directory)')
    .option('--cache <dir>', 'cache directory')
    .action(async (ref: string | undefined, o: { out?: string; cache?: string }) => {
      const store = await openStore(o.cache);
      try {
        const all = store.runs();
        const hits = ref ? all.filter((r) => r.id.startsWith(ref)) : all.slice(-1);
        if (hits.length !== 1) throw new UserError(ref ? `no single run matches '${ref}'` : 'no runs yet');
        const run = hits[0]!;
        const dir = resolve(o.out ?? run.reportDir ?? `reports/${basename(run.pipeline).replace(/\.trend$/, '')}`);
        const { writeReport } = await import('../../report/report.js');
        await writeReport(store, run, dir);
        process.stdout.write(`report: ${relative(process.cwd(), dir) || '.'}/index.md\n`);
        setCode(EXIT.ok);
      } finally {
        await store.close();
      }
    });
}

function countStatuses(nodes: RunRecord['nodes']): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of nodes) c[n.status] = (c[n.status] ?? 0) + 1;
  return c;
}

function fmt(v: unknown): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}
