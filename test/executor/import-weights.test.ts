// `model m = ARCH weights="file.safetensors"` through the CLI: a model trained here, exported
// with `trendc export` and imported back (and the same weights rewritten by hand in PyTorch's
// layout) predicts exactly as the original, is attacked, transferred to and from, ensembled and
// fine-tuned; its key follows the file's bytes, not its path; and a file that does not fit its
// architecture stops the command with exit 2, naming each tensor, before any store exists.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { trendcAwait, workdir, type CliResult } from '../helpers/cli.js';
import { f32, readSafetensorsF32, toOihw, toOutIn, writeSafetensors, type StTensor } from '../helpers/safetensors.js';

const HEAD = `dataset mnist subset train=300 test=100
train epochs=1 batch=50
model a = cnn width=1/8
`;

/** The exported cnn (width 1/8: 4 and 8 channels, a 7x7x8 map into the dense layer) as a PyTorch state dict. */
function torchLayout(trendFile: Uint8Array, edit: (t: Record<string, StTensor>) => void = () => {}): Uint8Array {
  const t = readSafetensorsF32(trendFile);
  const tensors: Record<string, StTensor> = {
    'conv1.weight': f32([4, 1, 3, 3], toOihw(t['conv1/w']!.v, t['conv1/w']!.shape)),
    'conv1.bias': f32([4], t['conv1/b']!.v),
    'conv2.weight': f32([8, 4, 3, 3], toOihw(t['conv2/w']!.v, t['conv2/w']!.shape)),
    'conv2.bias': f32([8], t['conv2/b']!.v),
    'fc.weight': f32([10, 392], toOutIn(t['out/w']!.v, t['out/w']!.shape, [7, 7, 8])),
    'fc.bias': f32([10], t['out/b']!.v),
  };
  edit(tensors);
  return writeSafetensors(tensors, { format: 'pt' });
}

const trendc = (args: string[], opts: { cwd: string }): Promise<CliResult> => trendcAwait(args, opts);

async function planKeys(dir: string, file: string): Promise<Record<string, string>> {
  const r = await trendc(['plan', file, '--json'], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  return Object.fromEntries((JSON.parse(r.stdout) as { nodes: Array<{ id: string; key: string }> }).nodes.map((n) => [n.id, n.key]));
}

async function exported(dir: string, key: string, what: string): Promise<Buffer> {
  const out = join(dir, 'x', key);
  const r = await trendc(['export', key, '--out', out], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  return readFileSync(join(out, what));
}

describe('imported weights, end to end', () => {
  const dir = workdir({ 'a.trend': HEAD });
  let exportedModel: Uint8Array;

  beforeAll(async () => {
    const r = await trendc(['run', 'a.trend', '--quiet', '--no-report'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect((await trendc(['export', 'train/a', '--out', 'exp'], { cwd: dir })).code).toBe(0);
    exportedModel = readFileSync(join(dir, 'exp', 'model.safetensors'));
    writeFileSync(join(dir, 'torch.safetensors'), torchLayout(exportedModel));
  }, 300_000);

  it('trend and PyTorch layouts predict as the original, and can be attacked, transferred, ensembled and fine-tuned', async () => {
    mkdirSync(join(dir, 'pipes'));
    // Paths are relative to the .trend file, which is not in the working directory.
    writeFileSync(
      join(dir, 'pipes', 'b.trend'),
      HEAD +
        `model b = cnn width=1/8 weights="../exp/model.safetensors"
model t = cnn width=1/8 weights="../torch.safetensors"
model f = cnn width=1/8 from t epochs=1
ensemble e = a, b, t
transfer pgd eps=0.1 steps=2 step=0.05 from a, b, t to a, b, t, e with images=50
evaluate a, b, t, f against pgd eps=0.1 steps=2 step=0.05 with images=50
evaluate e against agd eps=0.1 steps=2 step=0.05 with images=50
`,
    );
    const r = await trendc(['run', 'pipes/b.trend', '--quiet', '--no-report'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const keys = await planKeys(dir, 'pipes/b.trend');
    expect(keys['train/b']).not.toBe(keys['train/t']);
    const pred = (m: string) => exported(dir, keys[`predict/${m}`]!, 'pred.npy');
    expect((await pred('b')).equals(await pred('a'))).toBe(true);
    expect((await pred('t')).equals(await pred('a'))).toBe(true);
    // The same weights give the same adversarial examples and accuracy under attack.
    const robust = async (m: string) => JSON.parse((await exported(dir, keys[`robust/pgd/${m}`]!, 'summary.json')).toString()).summary;
    expect(await robust('b')).toEqual(await robust('a'));
    expect(await robust('t')).toEqual(await robust('a'));
    const imported = JSON.parse((await exported(dir, keys['train/t']!, 'summary.json')).toString()).summary;
    const original = JSON.parse(readFileSync(join(dir, 'exp', 'summary.json'), 'utf8')).summary;
    expect(imported.method).toBe('import');
    expect(imported.testAccuracy).toBe(original.testAccuracy);
    // a, b and t are one function: whatever a's examples fool, they fool b and t too (TM 1).
    const tm = (await exported(dir, keys['matrix/transfer1']!, 'tm_pgd.csv')).toString().trim().split('\n');
    const cols = tm[0]!.split(',');
    const cell = (target: string, source: string) => tm.find((l) => l.startsWith(`${target},`))!.split(',')[cols.indexOf(source)];
    for (const [target, source] of [
      ['b', 'a'],
      ['t', 'a'],
      ['a', 't'],
      ['b', 't'],
    ])
      expect(cell(target!, source!), `${source}->${target}`).toBe('1');
    expect(tm).toHaveLength(5);
    expect(keys['train/f']).toBeDefined();
    expect(keys['robust/agd/e']).toBeDefined();
  }, 300_000);

  it('an export carries its input normalisation: imported into a pipeline with another training split, it predicts as the original', async () => {
    const f = readSafetensorsF32(exportedModel);
    expect(f['normalize/mean']!.shape).toEqual([1]);
    expect(f['normalize/std']!.shape).toEqual([1]);
    // Another subset gives other statistics, which the imported model must not take.
    const other = HEAD.replace('train=300', 'train=120') + 'model b = cnn width=1/8 weights="exp/model.safetensors"\n';
    writeFileSync(join(dir, 'other.trend'), other);
    expect((await trendc(['run', 'other.trend', '--quiet', '--no-report'], { cwd: dir })).code).toBe(0);
    const keys = await planKeys(dir, 'other.trend');
    const spec = async (m: string) => JSON.parse((await exported(dir, keys[`train/${m}`]!, 'summary.json')).toString()).summary.spec;
    const [trainedHere, importedSpec] = [await spec('a'), await spec('b')];
    const original = JSON.parse(readFileSync(join(dir, 'exp', 'summary.json'), 'utf8')).summary;
    expect(trainedHere.mean).not.toEqual(original.spec.mean);
    // Stored as float32, as the weights are.
    expect(importedSpec.mean[0]).toBe(Math.fround(original.spec.mean[0]));
    expect(importedSpec.std[0]).toBe(Math.fround(original.spec.std[0]));
    const imported = JSON.parse((await exported(dir, keys['train/b']!, 'summary.json')).toString()).summary;
    expect(imported.testAccuracy).toBe(original.testAccuracy);
  }, 300_000);

  it("the key follows the file's bytes: a moved copy keeps it, a changed byte changes it and everything downstream", async () => {
    const pipe = (path: string) => HEAD + `model b = cnn width=1/8 weights="${path}"\nevaluate b against pgd eps=0.1 steps=2 step=0.05 with images=20\n`;
    writeFileSync(join(dir, 'k1.trend'), pipe('exp/model.safetensors'));
    mkdirSync(join(dir, 'moved', 'deeper'), { recursive: true });
    copyFileSync(join(dir, 'exp', 'model.safetensors'), join(dir, 'moved', 'deeper', 'renamed.safetensors'));
    writeFileSync(join(dir, 'k2.trend'), pipe('moved/deeper/renamed.safetensors'));
    const changed = Buffer.from(exportedModel);
    changed[changed.length - 1] ^= 1; // the last byte of out/b
    writeFileSync(join(dir, 'changed.safetensors'), changed);
    writeFileSync(join(dir, 'k3.trend'), pipe('changed.safetensors'));
    const [k1, k2, k3] = await Promise.all(['k1.trend', 'k2.trend', 'k3.trend'].map((f) => planKeys(dir, f)));
    for (const id of ['train/b', 'predict/b', 'robust/pgd/b']) {
      expect(k2![id], id).toBe(k1![id]);
      expect(k3![id], id).not.toBe(k1![id]);
    }
    expect(k3!['train/a']).toBe(k1!['train/a']);
  });
});

describe('weights that do not fit: exit 2 before anything runs', () => {
  const dir = workdir();
  // A file in PyTorch's layout for this architecture (values do not matter here).
  const good = () => {
    const z = (shape: number[]) => f32(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
    return {
      'conv1.weight': z([4, 1, 3, 3]),
      'conv1.bias': z([4]),
      'conv2.weight': z([8, 4, 3, 3]),
      'conv2.bias': z([8]),
      'fc.weight': z([10, 392]),
      'fc.bias': z([10]),
    };
  };
  const cases: Array<{ what: string; edit?: (t: Record<string, StTensor>) => void; path?: string; expect: RegExp[] }> = [
    {
      what: 'a missing tensor',
      edit: (t) => delete t['conv2.weight'],
      expect: [
        /m\.trend:4:25: error\[E064\]: model m: weights file 'w\.safetensors' lacks tensor 'conv2\.weight' \(trend's conv2\/w\), which cnn width=1\/8 needs with shape \[8, 4, 3, 3\]/,
      ],
    },
    {
      what: 'an extra tensor',
      edit: (t) => (t['fc2.weight'] = f32([2, 3], new Float32Array(6))),
      expect: [/m\.trend:4:25: error\[E065\]: .*has tensor 'fc2\.weight' \[2, 3\], which cnn width=1\/8 does not have/],
    },
    {
      what: 'tensors of the wrong shape',
      edit: (t) => {
        t['fc.bias'] = f32([5], new Float32Array(5));
        t['conv1.weight'] = f32([4, 1, 5, 5], new Float32Array(100));
      },
      expect: [
        /error\[E066\]: .*'conv1\.weight' \(trend's conv1\/w\) of shape \[4, 1, 5, 5\]; cnn width=1\/8 expects \[4, 1, 3, 3\]/,
        /error\[E066\]: .*'fc\.bias' \(trend's out\/b\) of shape \[5\]; cnn width=1\/8 expects \[10\]/,
      ],
    },
    {
      what: 'a missing file',
      path: 'nowhere/w.safetensors',
      expect: [
        /m\.trend:4:25: error\[E063\]: model m: weights file 'nowhere\/w\.safetensors' cannot be read: no such file \(ENOENT\)/,
        /nowhere\/w\.safetensors/,
      ],
    },
  ];
  for (const c of cases) {
    it(c.what, async () => {
      const t = good();
      c.edit?.(t);
      writeFileSync(join(dir, 'w.safetensors'), writeSafetensors(t));
      writeFileSync(join(dir, 'm.trend'), HEAD + `model m = cnn width=1/8 weights="${c.path ?? 'w.safetensors'}"\nevaluate m against pgd\n`);
      for (const args of [
        ['run', 'm.trend', '--cache', 'cache'],
        ['check', 'm.trend'],
      ]) {
        const r = await trendc(args, { cwd: dir });
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2);
        for (const re of c.expect) expect(r.stderr).toMatch(re);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
      expect(existsSync(join(dir, 'cache'))).toBe(false);
    });
  }

  it('a good file passes the same checks', async () => {
    writeFileSync(join(dir, 'w.safetensors'), writeSafetensors(good()));
    writeFileSync(join(dir, 'm.trend'), HEAD + 'model m = cnn width=1/8 weights="w.safetensors"\n');
    expect((await trendc(['check', 'm.trend'], { cwd: dir })).code).toBe(0);
  });
});
