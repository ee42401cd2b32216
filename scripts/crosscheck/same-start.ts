/**
 * `npx tsx scripts/crosscheck/same-start.ts --case DIR --norm linf|l2 --eps E --out DIR2`: trend's
 * side of same-start.py. Reads the start point, image indices and APGD-T targets that
 * same-start.py wrote to DIR2, and runs trend's apgdRunSteps (one APGD run, the reference's
 * attack_single_run) from that start on the CE, DLR and targeted DLR losses, printing per run
 * the fooled flags and best losses as JSON, in same-start.py's shape.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, type Artifact } from '../../src/runtime/artifact.js';
import { apgdRunSteps, type ApgdLoss } from '../../src/runtime/attacks/apgd.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { modelTarget } from '../../src/runtime/eval/classifier.js';
import { Model } from '../../src/runtime/models/model.js';
import { runSteps } from '../../src/runtime/pace.js';
import { rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { readNpy } from './npy.js';

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) throw new Error(`missing --${name}`);
  return v;
}

function loadModel(dir: string): Model {
  const info = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { spec: unknown; params: Array<{ name: string; file: string }> };
  const tensors: Artifact['tensors'] = {};
  for (const p of info.params) {
    const { data, shape } = readNpy(join(dir, p.file));
    tensors[`p/${p.name}`] = tensor('float32', shape, data);
  }
  return Model.fromArtifact({ summary: { spec: info.spec } as unknown as Artifact['summary'], tensors });
}

async function main(): Promise<void> {
  const dir = arg('case');
  const out = arg('out');
  const norm = arg('norm').toLowerCase() as 'linf' | 'l2';
  const eps = Number(arg('eps'));
  await selectBackend('wasm');
  const model = loadModel(dir);
  const t = modelTarget(model);
  const xs = readNpy(join(dir, 'x.npy')).data as Float32Array;
  const ys = readNpy(join(dir, 'y.npy')).data as Int32Array;
  const idx = readNpy(join(out, 'idx.npy')).data as Int32Array;
  const target = readNpy(join(out, 'target.npy')).data as Int32Array;
  const start = readNpy(join(out, 'start.npy'));
  const n = idx.length;
  const rows = new Float32Array(n * 784);
  idx.forEach((i, j) => rows.set(xs.subarray(i * 784, (i + 1) * 784), j * 784));
  const x0 = tf.tensor4d(rows, [n, 28, 28, 1]);
  const y = Int32Array.from(idx, (i) => ys[i]!);
  const res: { side: string; n: number; runs: Record<string, { fooled: string; lossBest: number[] }> } = { side: 'trend', n, runs: {} };
  for (const loss of ['ce', 'dlr', 'dlr-targeted'] as ApgdLoss[]) {
    const init = tf.tensor4d(start.data as Float32Array, [n, 28, 28, 1]);
    const run = { x0, y, loss, eps, norm, steps: 100, rho: 0.75, ...(loss === 'dlr-targeted' ? { target } : {}) };
    const r = runSteps(apgdRunSteps(t, run, rng(0), init));
    res.runs[loss] = { fooled: Array.from(r.fooled).join(''), lossBest: Array.from(r.lossBest) };
    process.stderr.write(`${loss}: fooled ${r.fooled.reduce((a, b) => a + b, 0)} of ${n}\n`);
    for (const v of [init, r.best, r.adv]) v.dispose();
  }
  console.log(JSON.stringify(res));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
