/** parse + check + plan of a generated pipeline with about 10,000 DAG nodes (target: < 1 s). */
import { checkSource, planChecked } from '../src/compiler/compile.js';
import type { Figure } from './figures.js';

/** n models transferred from * to *: n^2 transfer nodes + 3n + matrix + dataset, plus evaluations. */
export function generatedPipeline(n: number, evaluated = 0): string {
  const lines = ['dataset mnist subset train=1000 test=100', 'train epochs=1'];
  for (let i = 0; i < n; i++) lines.push(`model m${i} = cnn seed ${i + 1}${i % 3 === 0 ? ' quant input 2bit' : ''}`);
  lines.push('transfer pgd eps=0.1 from * to *');
  for (let i = 0; i < evaluated; i++) lines.push(`evaluate m${i} against fgsm eps=0.1`);
  return lines.join('\n') + '\n';
}

export async function benchCompiler(quick: boolean): Promise<Figure[]> {
  const src = generatedPipeline(98, 96);
  let best = Infinity;
  let nodes = 0;
  for (let r = 0; r < (quick ? 3 : 7); r++) {
    const t = performance.now();
    const c = checkSource(src, 'generated.trend');
    const dag = await planChecked(c.checked!, '0.0.0', 'bench');
    best = Math.min(best, performance.now() - t);
    nodes = dag.nodes.length;
  }
  return [
    { name: 'compiler.plan_10k.nodes', value: nodes, unit: 'nodes' },
    { name: 'compiler.plan_10k.ms', value: Math.round(best), unit: 'ms' },
  ];
}
