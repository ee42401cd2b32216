// Imported weights (docs/import.md): PyTorch-layout files written here by hand, with this test's
// own transpositions and state-dict names, load to trend's parameters; a cnn and an mlp loaded
// from them compute what a plain NCHW forward pass over the PyTorch tensors computes; every way a
// file can fail to fit is named; and a file that changed after planning stops the node.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checksumBytes, initHash } from '../../src/common/checksum.js';
import type { ImportParams } from '../../src/compiler/contract.js';
import type { Artifact } from '../../src/runtime/artifact.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { Model, modelDecls, type ModelSpec } from '../../src/runtime/models/model.js';
import type { ParamDecl } from '../../src/runtime/models/net.js';
import { parseSafetensors, readFloat32, SafetensorsError } from '../../src/runtime/models/safetensors.js';
import { describeProblem, detectLayout, fileParams, loadWeights, matchWeights, torchName } from '../../src/runtime/models/weights.js';
import { datasetOp } from '../../src/runtime/ops/dataset.js';
import { trainOp } from '../../src/runtime/ops/train.js';
import { tf } from '../../src/runtime/tf.js';
import { fakeContext } from '../helpers/runtime.js';
import { f32, i64, toOihw, toOutIn, writeSafetensors, type StTensor } from '../helpers/safetensors.js';

type Tensor = StTensor;
const safetensors = writeSafetensors;

/** Deterministic parameter values; variances positive. */
function values(decls: ParamDecl[]): Map<string, Float32Array> {
  return new Map(
    decls.map((d, k) => {
      const n = d.shape.reduce((a, b) => a * b, 1);
      const v = Float32Array.from({ length: n }, (_, i) => Math.sin(k * 7.31 + i * 1.713) * 0.5);
      return [d.name, d.name.endsWith('/var') ? v.map((x) => 0.5 + Math.abs(x)) : v];
    }),
  );
}

const BN: Record<string, string> = { gamma: 'weight', beta: 'bias', mean: 'running_mean', var: 'running_var' };

/** This test's own PyTorch state-dict names (torchvision's ResNet, a CIFAR-style VGG Sequential). */
function stateDictName(arch: string, trend: string): string {
  const [layer, p] = trend.split('/') as [string, string];
  const suffix = p === 'w' ? 'weight' : p === 'b' ? 'bias' : BN[p]!;
  if (layer === 'out') return `${{ mlp: 'fc3', cnn: 'fc', resnet18: 'fc', vgg11bn: 'classifier' }[arch]}.${suffix}`;
  if (arch === 'resnet18') {
    if (layer === 'stem') return `conv1.${suffix}`;
    if (layer === 'stem_bn') return `bn1.${suffix}`;
    const [, s, b, part] = /^s(\d)b(\d)_(\w+)$/.exec(layer)!;
    const mod = { c1: 'conv1', bn1: 'bn1', c2: 'conv2', bn2: 'bn2', sc: 'downsample.0', scbn: 'downsample.1' }[part!];
    return `layer${s}.${Number(b) - 1}.${mod}.${suffix}`;
  }
  if (arch === 'vgg11bn') {
    // 64 M 128 M 256 256 M 512 512 M 512 512 M, each conv as conv, bn, relu.
    const convAt = [0, 4, 8, 11, 15, 18, 22, 25];
    const i = Number(/\d+$/.exec(layer)![0]) - 1;
    return `features.${convAt[i]! + (layer.startsWith('bn') ? 1 : 0)}.${suffix}`;
  }
  return `${layer}.${suffix}`;
}

/** The file a PyTorch user would save for this model: names, OIHW kernels, [out, in] weights, num_batches_tracked. */
function torchFile(arch: string, decls: ParamDecl[], vals: Map<string, Float32Array>, flat: Record<string, number[]>): Uint8Array {
  const tensors: Record<string, Tensor> = {};
  for (const d of decls) {
    const v = vals.get(d.name)!;
    const name = stateDictName(arch, d.name);
    if (d.shape.length === 4) tensors[name] = f32([d.shape[3]!, d.shape[2]!, d.shape[0]!, d.shape[1]!], toOihw(v, d.shape));
    else if (d.shape.length === 2) tensors[name] = f32([d.shape[1]!, d.shape[0]!], toOutIn(v, d.shape, flat[d.name]));
    else tensors[name] = f32(d.shape, v);
    if (d.name.endsWith('/var')) tensors[name.replace(/running_var$/, 'num_batches_tracked')] = i64(3);
  }
  return safetensors(tensors, { format: 'pt' });
}

const SHAPE: [number, number, number] = [8, 8, 3];
const spec = (arch: string, width: number): ModelSpec => ({
  arch,
  width,
  shape: SHAPE,
  classes: 3,
  input: null,
  weightBits: null,
  activationBits: null,
  noise: {},
  mean: [0, 0, 0],
  std: [1, 1, 1],
});

/** Images in [0, 1], NHWC. */
const images = Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37));

function logits(m: Model): Float32Array {
  return tf.tidy(() => m.logits(tf.tensor4d(images, [2, ...SHAPE]), { training: false }).dataSync() as Float32Array);
}

/** A plain NCHW forward pass over PyTorch-layout tensors: 3x3 convs (padding 1), ReLU, 2x2 max-pools, linear. */
function torchForward(arch: 'cnn' | 'mlp', read: (n: string) => { v: Float32Array; shape: number[] }): number[] {
  const out: number[] = [];
  for (let b = 0; b < 2; b++) {
    // NHWC image -> CHW.
    let x = Float32Array.from({ length: 3 * 64 }, (_, i) => images[b * 192 + (i % 64) * 3 + Math.floor(i / 64)]!);
    let [c, h, w] = [3, 8, 8];
    const linear = (name: string, relu: boolean) => {
      const W = read(`${name}.weight`);
      const B = read(`${name}.bias`).v;
      const [o, n] = W.shape as [number, number];
      x = Float32Array.from({ length: o }, (_, j) => {
        let s = B[j]!;
        for (let k = 0; k < n; k++) s += W.v[j * n + k]! * x[k]!;
        return relu ? Math.max(0, s) : s;
      });
    };
    if (arch === 'mlp') {
      linear('fc1', true);
      linear('fc2', true);
      linear('fc3', false);
    } else {
      for (const name of ['conv1', 'conv2']) {
        const W = read(`${name}.weight`);
        const B = read(`${name}.bias`).v;
        const o = W.shape[0]!;
        const y = new Float32Array(o * h * w);
        for (let f = 0; f < o; f++)
          for (let i = 0; i < h; i++)
            for (let j = 0; j < w; j++) {
              let s = B[f]!;
              for (let ci = 0; ci < c; ci++)
                for (let di = 0; di < 3; di++)
                  for (let dj = 0; dj < 3; dj++) {
                    const [yi, xj] = [i + di - 1, j + dj - 1];
                    if (yi >= 0 && yi < h && xj >= 0 && xj < w) s += W.v[((f * c + ci) * 3 + di) * 3 + dj]! * x[(ci * h + yi) * w + xj]!;
                  }
              y[(f * h + i) * w + j] = Math.max(0, s);
            }
        const [ph, pw] = [h >> 1, w >> 1];
        x = Float32Array.from({ length: o * ph * pw }, (_, k) => {
          const [f, i, j] = [Math.floor(k / (ph * pw)), Math.floor(k / pw) % ph, k % pw];
          return Math.max(...[0, 1].flatMap((a) => [0, 1].map((d) => y[(f * h + 2 * i + a) * w + 2 * j + d]!)));
        });
        [c, h, w] = [o, ph, pw];
      }
      linear('fc', false);
    }
    out.push(...x);
  }
  return out;
}

describe('PyTorch-layout weights', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  const cases: Array<{ arch: string; width: number; flat: (d: ParamDecl[]) => Record<string, number[]> }> = [
    { arch: 'mlp', width: 1 / 8, flat: () => ({ 'fc1/w': SHAPE }) },
    { arch: 'cnn', width: 1 / 4, flat: (d) => ({ 'out/w': [2, 2, d.find((x) => x.name === 'conv2/w')!.shape[3]!] }) },
    { arch: 'resnet18', width: 1 / 16, flat: () => ({}) },
    { arch: 'vgg11bn', width: 1 / 16, flat: () => ({}) },
  ];
  for (const c of cases) {
    it(`${c.arch}: a state dict saved by hand loads to the same parameters and logits`, () => {
      const s = spec(c.arch, c.width);
      const decls = modelDecls(s);
      const vals = values(decls);
      const f = parseSafetensors(torchFile(c.arch, decls, vals, c.flat(decls)));
      expect(detectLayout(f)).toBe('pytorch');
      const params = fileParams({ arch: c.arch, shape: SHAPE }, decls, 'pytorch');
      expect(matchWeights(f, params, 'pytorch', 3)).toEqual([]);
      const loaded = loadWeights(f, params, 'pytorch');
      expect(loaded.normalize).toBeUndefined();
      for (const d of decls) expect(loaded.values.get(d.name), d.name).toEqual(vals.get(d.name));
      const direct = Model.fromValues(s, vals);
      const imported = Model.fromValues(s, loaded.values);
      try {
        expect(logits(imported)).toEqual(logits(direct));
        if (c.arch === 'cnn' || c.arch === 'mlp') {
          const read = (n: string) => ({ v: readFloat32(f, n), shape: f.tensors.get(n)!.shape });
          const ref = torchForward(c.arch, read);
          const got = [...logits(imported)];
          for (let i = 0; i < ref.length; i++) expect(got[i]!).toBeCloseTo(ref[i]!, 4);
        }
      } finally {
        direct.dispose();
        imported.dispose();
      }
    });
  }

  it('names follow torchvision and a CIFAR VGG Sequential', () => {
    expect(torchName('resnet18', 'stem/w')).toBe('conv1.weight');
    expect(torchName('resnet18', 'stem_bn/mean')).toBe('bn1.running_mean');
    expect(torchName('resnet18', 's1b1_c1/w')).toBe('layer1.0.conv1.weight');
    expect(torchName('resnet34', 's3b6_bn2/var')).toBe('layer3.5.bn2.running_var');
    expect(torchName('resnet18', 's2b1_scbn/gamma')).toBe('layer2.0.downsample.1.weight');
    expect(torchName('resnet18', 'out/w')).toBe('fc.weight');
    expect(torchName('vgg19', 'conv16/b')).toBe('features.34.bias');
    expect(torchName('vgg19bn', 'bn16/beta')).toBe('features.50.bias');
    expect(torchName('vgg19bn', 'conv16/w')).toBe('features.49.weight');
    expect(torchName('vgg11', 'out/w')).toBe('classifier.weight');
    expect(torchName('cnn', 'noise/conv1')).toBe('noise/conv1');
  });

  it('a normalisation in the file is read, and its two tensors go together', () => {
    const s = spec('cnn', 1 / 4);
    const decls = modelDecls(s);
    const base = parseSafetensors(torchFile('cnn', decls, values(decls), { 'out/w': [2, 2, 16] }));
    const tensors: Record<string, Tensor> = {};
    for (const [n, e] of base.tensors)
      tensors[n] = { dtype: e.dtype as 'F32', shape: e.shape, bytes: base.bytes.slice(base.dataStart + e.begin, base.dataStart + e.end) };
    const params = fileParams({ arch: 'cnn', shape: SHAPE }, decls, 'pytorch');
    const both = parseSafetensors(
      safetensors({ ...tensors, 'normalize.mean': f32([3], Float32Array.of(0.1, 0.2, 0.3)), 'normalize.std': f32([3], Float32Array.of(0.5, 0.25, 2)) }),
    );
    expect(matchWeights(both, params, 'pytorch', 3)).toEqual([]);
    expect(loadWeights(both, params, 'pytorch').normalize).toEqual({ mean: [0.1, 0.2, 0.3].map(Math.fround), std: [0.5, 0.25, 2] });
    const half = parseSafetensors(safetensors({ ...tensors, 'normalize.mean': f32([3], Float32Array.of(0.1, 0.2, 0.3)) }));
    expect(matchWeights(half, params, 'pytorch', 3)).toEqual([{ kind: 'missing', name: 'normalize.std', expected: [3] }]);
  });
});

describe('files that do not fit', () => {
  const s = spec('cnn', 1 / 4);
  const decls = () => modelDecls(s);
  const trendFile = (edit: (t: Record<string, Tensor>) => void) => {
    const t: Record<string, Tensor> = {};
    for (const [n, v] of values(decls())) t[n] = f32(decls().find((d) => d.name === n)!.shape, v);
    edit(t);
    return parseSafetensors(safetensors(t, { format: 'trend' }));
  };

  it('names each missing, extra, mis-shaped and non-float tensor with the shapes', () => {
    const f = trendFile((t) => {
      delete t['conv1/w'];
      t['conv9/w'] = f32([2], Float32Array.of(1, 2));
      t['out/b'] = f32([5], new Float32Array(5));
      t['conv2/b'] = i64(1);
    });
    expect(detectLayout(f)).toBe('trend');
    const problems = matchWeights(f, fileParams({ arch: 'cnn', shape: SHAPE }, decls(), 'trend'), 'trend', 3);
    expect(problems).toEqual([
      { kind: 'missing', name: 'conv1/w', trend: 'conv1/w', expected: [3, 3, 3, 8] },
      { kind: 'dtype', name: 'conv2/b', trend: 'conv2/b', dtype: 'I64' },
      { kind: 'shape', name: 'out/b', trend: 'out/b', expected: [3], actual: [5] },
      { kind: 'extra', name: 'conv9/w', actual: [2] },
    ]);
    expect(problems.map((p) => describeProblem(p, 'cnn width=1/4'))).toEqual([
      "lacks tensor 'conv1/w', which cnn width=1/4 needs with shape [3, 3, 3, 8]",
      "has tensor 'conv2/b' of dtype I64; parameters must be F32, F64, F16 or BF16",
      "has tensor 'out/b' of shape [5]; cnn width=1/4 expects [3]",
      "has tensor 'conv9/w' [2], which cnn width=1/4 does not have",
    ]);
  });

  it('a PyTorch name says which parameter of trend it is', () => {
    const p = { kind: 'shape' as const, name: 'conv1.weight', trend: 'conv1/w', expected: [8, 3, 3, 3], actual: [8, 3, 5, 5] };
    expect(describeProblem(p, 'cnn width=1/4')).toBe("has tensor 'conv1.weight' (trend's conv1/w) of shape [8, 3, 5, 5]; cnn width=1/4 expects [8, 3, 3, 3]");
  });

  it('refuses malformed files with the reason', () => {
    const good = safetensors({ a: f32([2], Float32Array.of(1, 2)) });
    expect(() => parseSafetensors(good.slice(0, 5))).toThrow(SafetensorsError);
    expect(() => parseSafetensors(good.slice(0, good.length - 4))).toThrow(/outside the file's 4 data bytes/);
    expect(() => parseSafetensors(Buffer.from('{"not": "safetensors"}'))).toThrow(/not a safetensors file/);
  });

  it('reads F64, F16 and BF16 parameters as float32', () => {
    const x = [1.5, -2, 0.333251953125, 65504];
    const f16 = new Uint8Array(new Uint16Array([0x3e00, 0xc000, 0x3555, 0x7bff]).buffer);
    const bf16 = new Uint8Array(new Uint16Array(Array.from(new Uint32Array(Float32Array.from(x).buffer), (u) => u >>> 16)).buffer);
    const f = parseSafetensors(
      safetensors({
        d: { dtype: 'F64', shape: [4], bytes: new Uint8Array(Float64Array.from(x).buffer) },
        h: { dtype: 'F16', shape: [4], bytes: f16 },
        b: { dtype: 'BF16', shape: [4], bytes: bf16 },
      }),
    );
    expect([...readFloat32(f, 'd')]).toEqual(x);
    expect([...readFloat32(f, 'h')]).toEqual(x);
    // bfloat16 keeps 8 significant bits: the values above truncated to them.
    expect([...readFloat32(f, 'b')]).toEqual([1.5, -2, 0.33203125, 65280]);
  });
});

describe('the import operation', () => {
  it('stops when the file changed after the plan hashed it, and loads it when it did not', async () => {
    await selectBackend('wasm');
    await initHash();
    const data = (await datasetOp(fakeContext({ name: 'toy', train: 40, test: 20, val: '1/4', seed: 0, shape: [8, 8, 1], classes: 2, identity: 'toy/1' })))
      .artifact as Artifact;
    const s1: ModelSpec = { ...spec('cnn', 1 / 4), shape: [8, 8, 1], classes: 2 };
    const vals = values(modelDecls(s1));
    const t: Record<string, Tensor> = {};
    for (const d of modelDecls(s1)) t[d.name] = f32(d.shape, vals.get(d.name)!);
    const bytes = safetensors(t, { format: 'trend' });
    const path = join(mkdtempSync(join(tmpdir(), 'trend-import-')), 'm.safetensors');
    writeFileSync(path, bytes);
    const params = (checksum: string): ImportParams => ({
      arch: 'cnn',
      width: '1/4',
      input: null,
      weightBits: null,
      activationBits: null,
      noise: {},
      shape: [8, 8, 1],
      classes: 2,
      weights: { checksum },
    });
    await expect(trainOp(fakeContext(params('0'.repeat(32)), { data }, { path }))).rejects.toThrow(/changed since the pipeline was planned/);
    const res = await trainOp(fakeContext(params(checksumBytes(bytes)), { data }, { path }));
    expect(res.artifact.summary.method).toBe('import');
    expect(res.artifact.tensors['p/conv1/w']!.data).toEqual(vals.get('conv1/w'));
  });
});
