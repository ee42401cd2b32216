/**
 * `trendc plan FILE [--json] [--dot] [--cache DIR]`: the DAG with node keys and edges, each node
 * marked cached / running / to run against the store (where one exists; none is made).
 */
import type { Dag } from '../../compiler/dag.js';
import { EXIT, json, table } from '../output.js';

export async function planCommand(file: string, o: { json?: boolean; dot?: boolean; cache?: string }): Promise<number> {
  // The store is opened (and its modules loaded) only here, so `check` and `fmt` never load it.
  const { pipelineStatus } = await import('./status.js');
  const { stateCounts } = await import('../../runtime/executor/status.js');
  const { dag, states } = await pipelineStatus(file, o.cache);
  const state = new Map(states.map((s) => [s.id, s.state as string]));
  if (o.json) process.stdout.write(json(dagJson(dag, state)) + '\n');
  else if (o.dot) process.stdout.write(toDot(dag));
  else {
    const rows = dag.nodes.map((n) => [n.key.slice(0, 12), state.get(n.id)!, n.op, n.id, `${n.loc.file}:${n.loc.line}`]);
    process.stdout.write(table(rows, ['key', 'state', 'op', 'node', 'statement']) + '\n');
    const c = stateCounts(states);
    process.stdout.write(`\n${c.cached} cached, ${c.running} running now, ${c['to run']} to run\n`);
    const counts = new Map<string, number>();
    for (const n of dag.nodes) counts.set(n.op, (counts.get(n.op) ?? 0) + 1);
    process.stdout.write(`\n${dag.nodes.length} nodes: ${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')}\n`);
  }
  return EXIT.ok;
}

export function dagJson(dag: Dag, state?: Map<string, string>): unknown {
  return {
    file: dag.file,
    salt: dag.salt,
    nodes: dag.nodes.map((n) => ({
      id: n.id,
      op: n.op,
      key: n.key,
      inputs: n.inputs,
      params: n.params,
      line: n.loc.line,
      info: n.info,
      ...(state ? { state: state.get(n.id) } : {}),
    })),
  };
}

const COLORS: Record<string, string> = {
  dataset: '#dddddd',
  train: '#a6cee3',
  predict: '#b2df8a',
  adversarial: '#fb9a99',
  transfer: '#fdbf6f',
  matrix: '#cab2d6',
  select: '#ffff99',
  robust: '#fb9a99',
  union: '#cab2d6',
};

export function toDot(dag: Dag): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = ['digraph trend {', '  rankdir=LR;', '  node [shape=box, style=filled, fontname="Helvetica"];'];
  for (const n of dag.nodes) lines.push(`  ${q(n.id)} [label=${q(`${n.id}\n${n.key.slice(0, 12)}`)}, fillcolor=${q(COLORS[n.op] ?? '#ffffff')}];`);
  for (const n of dag.nodes) {
    for (const [role, v] of Object.entries(n.inputs)) {
      for (const src of Array.isArray(v) ? v : [v]) lines.push(`  ${q(src)} -> ${q(n.id)} [label=${q(role)}];`);
    }
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
