// The `weights=` clause in the compiler: the path is resolved against the .trend file, training
// settings on an imported model are errors, and the import node's key holds the architecture and
// the file's checksum only (the file itself is read by the runtime: test/runtime/import-weights.test.ts).
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSource, planChecked } from '../../src/compiler/compile.js';
import { UserError } from '../../src/compiler/diagnostics.js';
import { diagnose } from '../helpers/compile.js';

const HEAD = 'dataset toy subset train=400 test=100\ntrain epochs=3 batch=50 lr=0.1\n';

async function planWith(src: string, checksums: Record<string, string>, file = 'p.trend') {
  const c = checkSource(src, file);
  if (!c.checked) throw new Error(c.diagnostics.map((d) => d.message).join('\n'));
  const abs = Object.fromEntries(Object.entries(checksums).map(([p, k]) => [resolve(dirname(file), p), k]));
  return planChecked(c.checked, '0.0.0-test', 'toy/1', abs);
}

describe('weights=', () => {
  it('resolves the path against the .trend file, not the working directory', () => {
    const c = checkSource('model m = cnn weights="../w/m.safetensors"\n', join('some', 'dir', 'p.trend'));
    expect(c.checked!.models[0]!.weights).toMatchObject({ path: resolve('some', 'w', 'm.safetensors'), written: '../w/m.safetensors' });
    expect(c.checked!.models[0]!.weights!.loc).toMatchObject({ line: 1, col: 15 });
  });

  it('refuses training settings, a method and from on an imported model (E062), at each', () => {
    const src = HEAD + 'model a = cnn\nmodel m = cnn weights="m.safetensors" epochs=2 lr=0.5 seed 3 optimizer adam train adversarial from a\n';
    const d = diagnose(src).filter((x) => x.code === 'E062');
    expect(d.map((x) => x.message.split(' ')[0]).sort()).toEqual(["'epochs'", "'from", "'lr'", "'optimizer'", "'seed'", "'train"].sort());
    expect(d.every((x) => x.loc.line === 4 && /model ft = cnn from m epochs=1/.test(x.note!))).toBe(true);
    expect(diagnose(src).filter((x) => x.severity === 'error' && x.code !== 'E062')).toEqual([]);
    // Architecture, width, quantisers and noise are allowed.
    expect(diagnose(HEAD + 'model m = cnn width=1/4 weights="m.safetensors" quant input 2bit noise input 0.1\n')).toEqual([]);
  });

  it('keys an import by architecture and checksum only, never by path or the train statement', async () => {
    const src = (head: string, path: string) =>
      head + `model m = cnn width=1/4 weights="${path}"\nmodel f = cnn width=1/4 from m epochs=1\nevaluate m against pgd\n`;
    const dag = await planWith(src(HEAD, 'w/m.safetensors'), { 'w/m.safetensors': 'c1' });
    const m = dag.byId.get('train/m')!;
    expect(Object.keys(m.params).sort()).toEqual(['activationBits', 'arch', 'classes', 'input', 'noise', 'shape', 'weightBits', 'weights', 'width']);
    expect(m.params).toMatchObject({ arch: 'cnn', weights: { checksum: 'c1' } });
    expect(m.inputs).toEqual({ data: 'dataset/toy' });
    expect(m.info.path).toBe(resolve('w', 'm.safetensors'));
    expect(dag.byId.get('train/f')!.inputs).toEqual({ data: 'dataset/toy', from: 'train/m' });
    const key = (d: typeof dag, id: string) => d.byId.get(id)!.key;
    const moved = await planWith(src('dataset toy subset train=400 test=100\ntrain epochs=7\n', 'elsewhere.safetensors'), { 'elsewhere.safetensors': 'c1' });
    expect(key(moved, 'train/m')).toBe(key(dag, 'train/m'));
    expect(key(moved, 'robust/pgd/m')).toBe(key(dag, 'robust/pgd/m'));
    const changed = await planWith(src(HEAD, 'w/m.safetensors'), { 'w/m.safetensors': 'c2' });
    for (const id of ['train/m', 'train/f', 'predict/m', 'robust/pgd/m']) expect(key(changed, id), id).not.toBe(key(dag, id));
  });

  it('cannot plan an import whose file was not read', async () => {
    const c = checkSource('model m = cnn weights="m.safetensors"\n', 'p.trend');
    await expect(planChecked(c.checked!, '0.0.0-test', 'x')).rejects.toThrow(UserError);
  });
});
