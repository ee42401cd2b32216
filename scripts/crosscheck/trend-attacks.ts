/**
 * `npx tsx scripts/crosscheck/trend-attacks.ts --case DIR --norm linf|l2|l1 --eps E [--attacks
 * apgd-ce,apgd-t,fab-t,square,square-resc,apgd-dlr,standard,rand] [--seed 0] [--n 0]
 * [--input-noise 0]`: runs trend's attacks (ATTACK_IMPLS)
 * on a cross-check case (export-case.ts) with AutoAttack's 'standard' settings, all N images in
 * one batch (under l1, set_version's l_1 settings: APGD-CE 5 restarts and APGD-T 5 targets, both
 * with largereps), and prints one JSON object in reference.py's shape: robust accuracy per attack and,
 * per image, a 0/1 string (1 = robust). `standard` is trend's `autoattack` when the registry has
 * one, else the composite of the four (an image is robust when every attack left it robust, as
 * AutoAttack's cascade counts it). `rand` is trend's `autoattack` with version 'rand' (APGD-CE,
 * APGD-DLR, eot 20). `--input-noise SD` makes the model randomised: N(0, SD^2) added to the
 * normalised input on every forward pass (trend's fixed input noise); the clean and final
 * predictions are then single noisy passes (stream rng(0)). Attacks not (yet) in the registry are
 * reported as missing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, type Artifact } from '../../src/runtime/artifact.js';
import { norms, type AttackParams } from '../../src/runtime/attacks/base.js';
import { autoattackCounts } from '../../src/runtime/attacks/autoattack.js';
import { ATTACK_IMPLS } from '../../src/runtime/attacks/index.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { modelTarget } from '../../src/runtime/eval/classifier.js';
import { Model, type ModelSpec } from '../../src/runtime/models/model.js';
import { rng } from '../../src/runtime/rng.js';
import { tf } from '../../src/runtime/tf.js';
import { readNpy } from './npy.js';

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`missing --${name}`);
  return v;
}

/** The reference's names, trend's attacks and AutoAttack's standard settings for each. */
function settings(norm: 'linf' | 'l2' | 'l1', eps: number): Record<string, { attack: string; params: AttackParams & { resc_schedule?: boolean } }> {
  const l1 = norm === 'l1';
  return {
    'apgd-ce': { attack: 'apgd', params: { eps, norm, steps: 100, restarts: l1 ? 5 : 1, loss: 'ce', rho: 0.75, ...(l1 ? { largereps: true } : {}) } },
    'apgd-t': { attack: 'apgdt', params: { eps, norm, steps: 100, restarts: 1, targets: l1 ? 5 : 9, rho: 0.75, ...(l1 ? { largereps: true } : {}) } },
    'fab-t': { attack: 'fabt', params: { eps, norm, steps: 100, restarts: 1, targets: 9, alpha_max: 0.1, eta: 1.05, beta: 0.9 } },
    // AutoAttack runs Square with resc_schedule=False; `square-resc` is SquareAttack's own default.
    square: { attack: 'square', params: { eps, norm, queries: 5000, p_init: 0.8, restarts: 1, resc_schedule: false } },
    'square-resc': { attack: 'square', params: { eps, norm, queries: 5000, p_init: 0.8, restarts: 1, resc_schedule: true } },
    // APGD-DLR alone (AutoAttack runs it only in its `plus` and `rand` versions), 1 restart.
    'apgd-dlr': { attack: 'apgd', params: { eps, norm, steps: 100, restarts: 1, loss: 'dlr', rho: 0.75 } },
    standard: { attack: 'autoattack', params: { eps, norm } },
    // AutoAttack's `rand` version: APGD-CE then APGD-DLR, 1 restart each, eot_iter 20.
    rand: { attack: 'autoattack', params: { eps, norm, version: 'rand' } },
  };
}

/** The case's model; `inputNoise` > 0 adds N(0, sd^2) noise to the normalised input on every pass. */
function loadModel(dir: string, inputNoise: number): Model {
  const info = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { spec: ModelSpec; params: Array<{ name: string; file: string }> };
  if (inputNoise > 0) info.spec = { ...info.spec, noise: { ...info.spec.noise, input: { learned: false, sd: inputNoise } } };
  const tensors: Artifact['tensors'] = {};
  for (const p of info.params) {
    const { data, shape } = readNpy(join(dir, p.file));
    tensors[`p/${p.name}`] = tensor('float32', shape, data);
  }
  return Model.fromArtifact({ summary: { spec: info.spec } as unknown as Artifact['summary'], tensors });
}

const count = (f: ArrayLike<number>): number => Array.from(f).reduce((a, b) => a + b, 0);

interface Result {
  robust: number;
  flags: string;
  overBudget: number;
  seconds: number;
  /** Composites: images robust when clean, then after each stage. */
  stages?: { clean: number; after: Array<{ name: string; robust: number }> };
}

async function main(): Promise<void> {
  const dir = arg('case');
  const norm = arg('norm').toLowerCase() as 'linf' | 'l2' | 'l1';
  const eps = Number(arg('eps'));
  const seed = Number(arg('seed', '0'));
  const names = arg('attacks', 'apgd-ce,apgd-t,fab-t,square,square-resc,standard').split(',');
  const inputNoise = Number(arg('input-noise', '0'));
  await selectBackend('wasm');
  const model = loadModel(dir, inputNoise);
  const target = modelTarget(model);
  const xs = readNpy(join(dir, 'x.npy'));
  const ys = readNpy(join(dir, 'y.npy')).data as Int32Array;
  const n = Number(arg('n', '0')) || ys.length;
  const x = tf.tensor4d((xs.data as Float32Array).subarray(0, n * 784), [n, 28, 28, 1]);
  const y = ys.subarray(0, n);
  const clean = target.predict(x, rng(0)).map((p, i) => (p === y[i] ? 1 : 0));
  const table = settings(norm, eps);
  const out: {
    side: string;
    case: string;
    norm: string;
    eps: number;
    n: number;
    seed: number;
    inputNoise: number;
    clean: number;
    attacks: Record<string, Result>;
    missing: string[];
  } = {
    side: 'trend',
    case: dir,
    norm,
    eps,
    n,
    seed,
    inputNoise,
    clean: count(clean) / n,
    attacks: {},
    missing: [],
  };
  for (const name of names) {
    const s = table[name];
    if (!s) throw new Error(`unknown attack ${name}`);
    const impl = ATTACK_IMPLS[s.attack];
    if (!impl) {
      if (name === 'standard') continue; // composed below
      out.missing.push(`${name} (${s.attack})`);
      continue;
    }
    const t0 = performance.now();
    const adv = impl(target, x, y, s.params, rng(seed, `crosscheck/${s.attack}`));
    const pred = target.predict(adv, rng(0));
    const size = norms(adv, x)[norm];
    const stages = autoattackCounts.get(adv);
    adv.dispose();
    let over = 0;
    const flags = Array.from(pred, (p, i) => {
      const outside = size[i]! > eps * (1 + 1e-5);
      if (outside) over++;
      return clean[i] && (p === y[i] || outside) ? 1 : 0;
    });
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    out.attacks[name] = { robust: count(flags) / n, flags: flags.join(''), overBudget: over, seconds, ...(stages ? { stages } : {}) };
    process.stderr.write(`${name}: robust ${out.attacks[name]!.robust.toFixed(3)} (${seconds} s)\n`);
  }
  if (names.includes('standard') && !ATTACK_IMPLS.autoattack) {
    const parts = ['apgd-ce', 'apgd-t', 'fab-t', 'square'].filter((k) => out.attacks[k]);
    if (parts.length > 0) {
      const flags = Array.from(clean, (c, i) => (c && parts.every((k) => out.attacks[k]!.flags[i] === '1') ? 1 : 0));
      out.attacks.standard = { robust: count(flags) / n, flags: flags.join(''), overBudget: 0, seconds: 0 };
      if (parts.length < 4) out.missing.push(`standard: composed of ${parts.join(', ')} only`);
    }
  }
  x.dispose();
  model.dispose();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
