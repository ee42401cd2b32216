/**
 * `trendc status FILE [--cache DIR] [--json]`: for each node of the pipeline, whether it is
 * cached, running now (its lock held by another live process, which is named), or still to run,
 * as `dvc status` does. Reads only; a missing store means every node is to run, and none is made.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Dag } from '../../compiler/dag.js';
import { nodeStatuses, stateCounts, type NodeStatus } from '../../runtime/executor/status.js';
import type { Store } from '../../store/store.js';
import { EXIT, json, table } from '../output.js';
import { loadPlan } from '../pipeline.js';
import { cacheDir, storeMemo, withStore } from '../store.js';

type SetCode = (c: number) => void;

/** The pipeline's node states against the store at --cache (or none where there is no store). */
export async function pipelineStatus(file: string, cache: string | undefined): Promise<{ dag: Dag; states: NodeStatus[] }> {
  if (!existsSync(cacheDir(cache))) {
    const { dag } = await loadPlan(file);
    return { dag, states: nodeStatuses(dag, undefined) };
  }
  return withStore(cache, { index: false }, async (store: Store) => {
    const { dag } = await loadPlan(file, storeMemo(store));
    return { dag, states: nodeStatuses(dag, store) };
  });
}

export function registerStatus(program: Command, setCode: SetCode): void {
  program
    .command('status')
    .description('for each node: cached, running now (held by another process), or to run')
    .argument('<file>', '.trend file')
    .option('--cache <dir>', 'cache directory')
    .option('--json', 'print as JSON')
    .action(async (file: string, o: { cache?: string; json?: boolean }) => {
      const { states } = await pipelineStatus(file, o.cache);
      const c = stateCounts(states);
      if (o.json) process.stdout.write(json({ counts: c, nodes: states }) + '\n');
      else {
        const rows = states.map((s) => [s.state + (s.owner ? ` (${s.owner})` : ''), s.op, s.id]);
        process.stdout.write(table(rows, ['state', 'op', 'node']) + '\n');
        process.stdout.write(`\n${states.length} nodes: ${c.cached} cached, ${c.running} running now, ${c['to run']} to run\n`);
      }
      setCode(EXIT.ok);
    });
}
