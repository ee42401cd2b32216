// Two runs of a small pipeline that differ (one model's seed), with the result fixture (no TF.js):
// what the diff report and report page tests compare and open.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT, trendc, workdir } from './cli.js';

const ops = { TREND_OPS_MODULE: join(ROOT, 'test', 'fixtures', 'result-ops.mjs') };

/** Four models; run B changes b's seed, so every cell with b as source or target moves. */
export const DIFF_PIPELINE = (seedB: number) => `# diff report test
dataset toy subset train=400 test=100
train epochs=1 batch=50
model a = mlp width=0.25
model b = mlp width=0.25 seed ${seedB}
model c = mlp width=0.25 seed 3
model d = mlp width=0.25 seed 4
transfer pgd eps=0.2 steps=3 step=0.1 from * to *
ensemble trend k=2
evaluate trend_k2 against agd eps=0.2 steps=3 step=0.1 images=50
evaluate a, b against pgd eps=[0.1, 0.2] steps=3 step=0.05 images=50
`;

/** Two runs of DIFF_PIPELINE (b's seed 2, then 15) in a fresh directory, with the result fixture. */
export function twoRuns(): { dir: string; r1: string; r2: string; labels: Labels } {
  const dir = workdir({ 'p.trend': DIFF_PIPELINE(2) });
  const run = () => {
    const r = trendc(['run', 'p.trend', '--quiet'], { cwd: dir, env: ops });
    expect(r.code, r.stderr).toBe(0);
    return /^run (\S+) ok/m.exec(r.stdout)![1]!;
  };
  const labels = planLabels(dir);
  const r1 = run();
  writeFileSync(join(dir, 'p.trend'), DIFF_PIPELINE(15));
  const r2 = run();
  return { dir, r1, r2, labels: { ...labels, after: planLabels(dir).before } };
}

export interface Labels {
  before: { sources: string[]; targets: string[] };
  after: { sources: string[]; targets: string[] };
}
function planLabels(dir: string): Labels {
  const plan = JSON.parse(trendc(['plan', 'p.trend', '--json'], { cwd: dir }).stdout) as {
    nodes: Array<{ id: string; info: { labels?: Record<string, string[]> } }>;
  };
  const l = plan.nodes.find((n) => n.id === 'matrix/transfer1')!.info.labels!;
  return { before: { sources: l.sources!, targets: l.targets! }, after: { sources: [], targets: [] } };
}
