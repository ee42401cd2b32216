/** `trendc cache ls|show|stats|verify|gc` and `trendc export`. */
import type { Command } from 'commander';
import { UserError } from '../../compiler/diagnostics.js';
import type { Store } from '../../store/store.js';
import { EXIT, json, table } from '../output.js';
import { resolveRef } from '../resolve.js';
import { withStore as withOpenStore } from '../store.js';

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new UserError(`bad size '${s}' (expected e.g. 500M, 2G, 1048576)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}

export function human(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

/** A key, key prefix or node id (the node of the newest run, or of run `runRef`): see ../resolve.ts. */
export function resolveKey(store: Store, ref: string, runRef?: string): string {
  const r = resolveRef(store, ref, runRef);
  if (r.note) process.stderr.write(`trendc: note: ${r.note}\n`);
  return r.key;
}

/** Store commands act on an existing store only: a missing one is "no store at DIR" (exit 2). */
function withStore<T>(dir: string | undefined, f: (s: Store) => Promise<T> | T, readOnly = true): Promise<T> {
  return withOpenStore(dir, { create: false, readOnly }, f);
}

type SetCode = (c: number) => void;

export function registerCacheCommands(program: Command, setCode: SetCode): void {
  const cache = program.command('cache').description('inspect and maintain the artifact cache');
  registerCacheLs(cache, setCode);
  registerCacheShow(cache, setCode);
  registerCacheStats(cache, setCode);
  registerCacheVerify(cache, setCode);
  registerCacheGc(cache, setCode);
  registerExport(program, setCode);
}

function registerCacheLs(cache: Command, setCode: SetCode): void {
  cache
    .command('ls')
    .description('list cached nodes')
    .option('--op <op>', 'only this operation')
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print as JSON')
    .action((o: { op?: string; cache?: string; json?: boolean }) =>
      withStore(o.cache, (s) => {
        const metas = [...s.nodes()].filter((m) => !o.op || m.op === o.op).sort((a, b) => (a.endedAt < b.endedAt ? -1 : 1));
        if (o.json) process.stdout.write(json(metas.map(({ params: _p, summary: _s, ...m }) => m)) + '\n');
        else
          process.stdout.write(
            table(
              metas.map((m) => [m.key.slice(0, 12), m.op, m.id ?? '-', human(m.bytes), m.backend, m.endedAt.slice(0, 19)]),
              ['key', 'op', 'node', 'size', 'backend', 'finished'],
            ) + '\n',
          );
        setCode(EXIT.ok);
      }),
    );
}

function registerCacheShow(cache: Command, setCode: SetCode): void {
  cache
    .command('show')
    .description('metadata and result summary of one cached node')
    .argument('<key>', 'key, key prefix or node id (a node id means that node in the newest run)')
    .option('--run <run>', 'take the node id from this run (id or prefix)')
    .option('--cache <dir>', 'cache directory')
    .action((ref: string, o: { cache?: string; run?: string }) =>
      withStore(o.cache, (s) => {
        const m = s.meta(resolveKey(s, ref, o.run))!;
        process.stdout.write(JSON.stringify(m, null, 2) + '\n');
        setCode(EXIT.ok);
      }),
    );
}

function registerCacheStats(cache: Command, setCode: SetCode): void {
  cache
    .command('stats')
    .description('counts and sizes')
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print as JSON')
    .action((o: { cache?: string; json?: boolean }) =>
      withStore(o.cache, (s) => {
        const st = s.stats();
        if (o.json) process.stdout.write(json({ ...st, root: s.root }) + '\n');
        else {
          process.stdout.write(
            `${s.root}\n${st.nodes} nodes, ${st.runs} runs; payloads ${human(st.payloadBytes)}; index data.mdb ${human(st.dbBytes)}${st.index.status === 'ok' ? '' : ` (${st.index.status})`}; ${human(st.storeBytes)} in all\n`,
          );
          process.stdout.write(
            table(
              Object.entries(st.byOp).map(([op, v]) => [op, String(v.count), human(v.bytes)]),
              ['op', 'nodes', 'bytes'],
            ) + '\n',
          );
        }
        setCode(EXIT.ok);
      }),
    );
}

function registerCacheVerify(cache: Command, setCode: SetCode): void {
  cache
    .command('verify')
    .description('check the index, every record and every payload against its checksum (exit 1 if anything is broken)')
    .option('--repair', 'drop broken entries so the next run recomputes them, and rebuild a damaged index from the records')
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print as JSON')
    .action((o: { repair?: boolean; cache?: string; json?: boolean }) =>
      withStore(
        o.cache,
        async (s) => {
          const r = await s.verify(!!o.repair);
          const indexBad = r.index.status === 'damaged' && !r.index.rebuilt;
          if (o.json) process.stdout.write(json(r) + '\n');
          else {
            const ix = r.index;
            const indexLine =
              ix.status === 'damaged'
                ? `index ${s.root}/data.mdb: DAMAGED (${ix.detail})`
                : ix.status === 'ok'
                  ? `index: ok${ix.stale ? ` (${ix.stale} entries out of date)` : ''}`
                  : `index: ${ix.status}${ix.detail ? ` (${ix.detail})` : ''}`;
            process.stdout.write(`${indexLine}${ix.rebuilt ? '; rebuilt from the records' : ''}${ix.notRebuilt ? `; not rebuilt: ${ix.notRebuilt}` : ''}\n`);
            process.stdout.write(
              `checked ${r.checked} nodes: ${r.broken.length} broken${r.orphanObjects ? `, ${r.orphanObjects} unreferenced payload files (trendc cache gc removes them)` : ''}\n`,
            );
            for (const b of r.broken) process.stdout.write(`  ${b.key.slice(0, 12)} ${b.op}: ${b.why}${o.repair ? ' (dropped)' : ''}\n`);
            process.stdout.write(`checked ${r.runsChecked} runs: ${r.brokenRuns.length} broken\n`);
            for (const b of r.brokenRuns) process.stdout.write(`  run ${b.id}: ${b.why}${o.repair ? ' (dropped)' : ''}\n`);
            if (o.repair && (r.tempFiles || r.staleLocks))
              process.stdout.write(`removed ${r.tempFiles} temporary files and ${r.staleLocks} stale locks left by dead processes\n`);
            if ((r.broken.length || r.brokenRuns.length || indexBad) && !o.repair)
              process.stdout.write(
                'run `trendc cache verify --repair` to drop broken entries and rebuild the index; the next run recomputes what was dropped\n',
              );
          }
          if (indexBad && o.repair) process.stderr.write(`trendc: the index could not be rebuilt: ${r.index.notRebuilt ?? 'unknown reason'}\n`);
          setCode((r.broken.length || r.brokenRuns.length) && !o.repair ? EXIT.failed : indexBad ? EXIT.failed : EXIT.ok);
        },
        !o.repair,
      ),
    );
}

function registerCacheGc(cache: Command, setCode: SetCode): void {
  cache
    .command('gc')
    .description('remove what no kept run reaches, and return the disk space')
    .option('--keep-runs <n>', 'keep the newest N complete runs of each pipeline, and any run after them (default: all)')
    .option('--max-size <size>', "drop older runs until the kept payloads fit (e.g. 2G); never a pipeline's newest complete run")
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print as JSON')
    .action((o: { keepRuns?: string; maxSize?: string; cache?: string; json?: boolean }) => {
      if (o.keepRuns !== undefined && !/^\d+$/.test(o.keepRuns.trim())) throw new UserError(`--keep-runs must be a whole number of runs, got '${o.keepRuns}'`);
      const keepRuns = o.keepRuns !== undefined ? Number(o.keepRuns) : undefined;
      const maxSize = o.maxSize ? parseSize(o.maxSize) : undefined;
      return withStore(
        o.cache,
        async (s) => {
          const r = await s.gc({ ...(keepRuns !== undefined ? { keepRuns } : {}), ...(maxSize !== undefined ? { maxSize } : {}) });
          if (o.json) process.stdout.write(json(r) + '\n');
          else
            process.stdout.write(
              `removed ${r.runsRemoved} runs, ${r.nodesRemoved} nodes, ${r.objectsRemoved} payload files; ${human(r.bytesBefore)} -> ${human(r.bytesAfter)}${r.compacted ? ' (index compacted)' : ''}\n` +
                (r.overSize
                  ? `the store is still over ${o.maxSize}: gc keeps the newest complete run of each pipeline and what came after it (remove a pipeline's runs with --keep-runs 0)\n`
                  : ''),
            );
          setCode(EXIT.ok);
        },
        false,
      );
    });
}

function registerExport(program: Command, setCode: SetCode): void {
  program
    .command('export')
    .description('export a cached artifact: weights as safetensors + JSON (and ONNX), batches and datasets as .npy, tables as CSV + JSON')
    .argument('<key>', 'key, key prefix or node id (a node id means that node in the newest run)')
    .requiredOption('--out <path>', 'output directory')
    .option('--format <format>', 'trend (default) | onnx: also model.onnx, for a trained model (docs/export.md)')
    .option('--without-noise', "with --format onnx: export a noise-injecting model's graph without its noise")
    .option('--run <run>', 'take the node id from this run (id or prefix)')
    .option('--cache <dir>', 'cache directory')
    .action((ref: string, o: { out: string; cache?: string; run?: string; format?: string; withoutNoise?: boolean }) => {
      const format = o.format ?? 'trend';
      if (format !== 'trend' && format !== 'onnx') throw new UserError(`unknown export format '${format}' (expected trend or onnx)`);
      if (o.withoutNoise && format !== 'onnx') throw new UserError('--without-noise applies to --format onnx only');
      return withStore(o.cache, async (s) => {
        const key = resolveKey(s, ref, o.run);
        const { exportArtifact } = await import('../../runtime/export.js');
        const files = await exportArtifact(s, key, o.out, { format, ...(o.withoutNoise ? { withoutNoise: true } : {}) });
        for (const f of files) process.stdout.write(`${f}\n`);
        setCode(EXIT.ok);
      });
    });
}
