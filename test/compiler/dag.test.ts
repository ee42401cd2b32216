import { describe, expect, it } from 'vitest';
import type { Dag } from '../../src/compiler/dag.js';
import { canonical, digest, initHash } from '../../src/compiler/hash.js';
import { Rational } from '../../src/compiler/rational.js';
import { ATTACK_VERSIONS } from '../../src/compiler/ops.js';
import { keysById, plan, QUICKSTART } from '../helpers/compile.js';

function dependents(dag: Dag, rootId: string): Set<string> {
  const out = new Set<string>([rootId]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of dag.nodes) {
      if (out.has(n.id)) continue;
      const ins = Object.values(n.inputs).flat();
      if (ins.some((i) => out.has(i))) {
        out.add(n.id);
        grew = true;
      }
    }
  }
  return out;
}

describe('DAG', () => {
  it('has one training node per model, one batch per (attack, source), one evaluation per (attack, source, target)', async () => {
    const dag = await plan(QUICKSTART);
    const count = (op: string) => dag.nodes.filter((n) => n.op === op).length;
    expect(count('train')).toBe(7);
    expect(count('adversarial')).toBe(7 + 2); // pgd from 7 sources, cw from 2
    expect(count('transfer')).toBe(49 + 4);
    expect(count('matrix')).toBe(2);
    expect(count('select')).toBe(1);
    expect(count('predict')).toBe(8); // 7 models + the ensemble
    // Inputs always come before the nodes that use them.
    const seen = new Set<string>();
    for (const n of dag.nodes) {
      for (const i of Object.values(n.inputs).flat()) expect(seen.has(i)).toBe(true);
      seen.add(n.id);
    }
  });

  it('keys ignore comments, whitespace, statement order and how a number is written', async () => {
    const a = keysById(await plan(QUICKSTART));
    const reordered = QUICKSTART.split('\n')
      .filter((l) => l.startsWith('model') || l.startsWith('transfer') || l.startsWith('ensemble') || l.startsWith('dataset') || l.startsWith('train'))
      .reverse()
      .map((l) => l.replace(/ +/g, '   ') + '   # note')
      .join('\n\n')
      .replace('eps=8/255', 'eps=16/510');
    const b = keysById(await plan(reordered));
    expect(new Set(b.values())).toEqual(new Set(a.values()));
  });

  it('changing one model changes exactly the keys of the nodes that depend on it', async () => {
    const before = await plan(QUICKSTART);
    const after = await plan(QUICKSTART.replace('model q2     = cnn quant input 2bit', 'model q2     = cnn quant input 3bit'));
    const a = keysById(before);
    const b = keysById(after);
    const changed = new Set([...a.keys()].filter((id) => a.get(id) !== b.get(id)));
    expect(changed).toEqual(dependents(before, 'train/q2'));
    expect(changed.has('train/fp')).toBe(false);
    expect(changed.has('matrix/transfer1')).toBe(true);
    expect(changed.has('adv/cw/fp')).toBe(false);
  });

  it('renaming a model changes no key', async () => {
    const a = new Set((await plan(QUICKSTART)).nodes.map((n) => n.key));
    const b = new Set((await plan(QUICKSTART.replaceAll('adam', 'adamw').replace('optimizer adamw', 'optimizer adam'))).nodes.map((n) => n.key));
    expect(b).toEqual(a);
  });

  it('includes the dataset identity and package version in the keys', async () => {
    const a = await plan(QUICKSTART, 'q.trend', 'id-1');
    const b = await plan(QUICKSTART, 'q.trend', 'id-2');
    expect(a.nodes.every((n, i) => n.key !== b.nodes[i]!.key)).toBe(true);
  });

  it('tells apart attacks of one statement that share a name by the parameters that differ; keys ignore labels', async () => {
    const head = 'model a = cnn\nmodel b = cnn seed 2\n';
    const dag = await plan(head + 'transfer cw kappa=0, cw kappa=30, deepfool from a to b\n');
    const ids = dag.nodes.filter((n) => n.op === 'adversarial').map((n) => n.id);
    expect(ids).toEqual(['adv/cw[kappa=0]/a', 'adv/cw[kappa=30]/a', 'adv/deepfool/a']);
    // The same attack written alone gets the same key as in the pair.
    const alone = await plan(head + 'transfer cw kappa=30 from a to b\n');
    const key = (d: Dag, id: string) => d.nodes.find((n) => n.id === id)!.key;
    expect(key(alone, 'adv/cw/a')).toBe(key(dag, 'adv/cw[kappa=30]/a'));
    // Evaluating the same attack at two budgets is a sweep over eps.
    const ev = await plan(head + 'evaluate a against pgd eps=0.1, pgd eps=0.2\n');
    expect(ev.nodes.filter((n) => n.op === 'robust').map((n) => n.info.sweep)).toEqual([{ eps: '1/10' }, { eps: '1/5' }]);
  });

  it('computes identical declarations once and records every name they were declared under', async () => {
    const dag = await plan('model a = cnn\nmodel twin = cnn\nsmooth sw = a sd=[0, 0.5] m=8\nsmooth s = a sd=0.5 m=8\nevaluate s against pgd\n');
    const trains = dag.nodes.filter((n) => n.op === 'train');
    expect(trains.map((n) => [n.id, n.info.aliases])).toEqual([['train/a', ['twin']]]);
    const smoothed = dag.nodes.filter((n) => n.op === 'predict' && n.id.startsWith('predict/sw'));
    expect(smoothed.map((n) => [n.id, n.info.aliases])).toEqual([
      ['predict/sw.1', undefined],
      ['predict/sw.2', ['s']],
    ]);
    // The evaluation of s keeps s as its target name (the report finds its clean accuracy by alias).
    const r = dag.nodes.find((n) => n.op === 'robust')!;
    expect(r.info.target).toBe('s');
  });

  it('expands sweeps and families into explicit nodes', async () => {
    const dag = await plan('model r = cnn seed 1..3\ntransfer pgd eps=[0.01, 0.02] from r to r\n');
    expect(dag.nodes.filter((n) => n.op === 'train').map((n) => n.id)).toEqual(['train/r.1', 'train/r.2', 'train/r.3']);
    expect(dag.nodes.filter((n) => n.op === 'adversarial')).toHaveLength(6);
    expect(dag.nodes.filter((n) => n.op === 'transfer')).toHaveLength(18);
    const m = dag.nodes.find((n) => n.op === 'matrix')!;
    expect(m.info.labels!.attacks).toEqual(['pgd[eps=0.01]', 'pgd[eps=0.02]']);
  });
});

describe('canonical encoding', () => {
  it('is unambiguous and independent of key order', async () => {
    await initHash();
    expect(canonical({ b: 1, a: 'x' })).toBe(canonical({ a: 'x', b: 1 }));
    expect(canonical(['ab', 'c'])).not.toBe(canonical(['a', 'bc']));
    expect(canonical(Rational.of(8, 255))).toBe(canonical(Rational.of(16, 510)));
    expect(canonical({ a: undefined, b: 2 })).toBe(canonical({ b: 2 }));
    expect(() => canonical(0.1)).toThrow(/integers only/);
    expect(digest('x')).toMatch(/^[0-9a-f]{32}$/);
    expect(digest('x')).not.toBe(digest('y'));
  });

  it('lets EOT and score-based attacks on a smoothed classifier see its noise, and only them', async () => {
    const dag = await plan(
      [
        'model m = cnn',
        'model n = cnn noise input 0.25',
        'smooth s = m sd=0.5 m=8',
        'evaluate s, n against pgd eps=0.1, apgd eps=0.1, apgd eps=0.1 eot=4, autoattack eps=0.1, autoattack version=rand eps=0.1, square eps=0.1, nattack eps=0.1',
      ].join('\n'),
    );
    const noisy = (id: string) => (dag.nodes.find((x) => x.id === id)!.params as { noisy?: boolean }).noisy ?? false;
    const robust = dag.nodes.filter((x) => x.op === 'robust').map((x) => x.id);
    expect(robust.filter((id) => id.endsWith('/s') && noisy(id)).sort()).toEqual(
      ['robust/apgd[eot=4]/s', 'robust/autoattack[version=rand]/s', 'robust/nattack/s', 'robust/square/s'].sort(),
    );
    // A noise-injection model draws its own noise: nothing to add, and its keys stay as they were.
    expect(robust.filter((id) => id.endsWith('/n') && noisy(id))).toEqual([]);
    expect(noisy('robust/pgd/s')).toBe(false);
  });

  it("an attack's code version changes the keys of the nodes that use it and their dependants, and no other", async () => {
    const src = [
      'attack t = pgd eps=0.1 steps=2',
      'model a = cnn',
      'model b = cnn train adversarial attack=t',
      'attack f = fgsm eps=0.1',
      'model c = cnn train adversarial attack=f',
      'transfer fgsm eps=0.1 from a to a',
      'evaluate a, c against t, apgd eps=0.1',
    ].join('\n');
    const before = await plan(src);
    ATTACK_VERSIONS.pgd = 2;
    let after: Dag;
    try {
      after = await plan(src);
    } finally {
      delete ATTACK_VERSIONS.pgd;
    }
    const keys = keysById(after);
    const changed = before.nodes.filter((n) => keys.get(n.id) !== n.key).map((n) => n.id);
    // pgd's own uses, then what depends on them (b's training feeds b's clean predictions).
    const holdsPgd = (v: unknown): boolean =>
      typeof v === 'object' && v !== null && ((v as { attack?: unknown }).attack === 'pgd' || Object.values(v).some(holdsPgd));
    const uses = before.nodes.filter((n) => holdsPgd(n.params)).map((n) => n.id);
    expect(uses.sort()).toEqual(['robust/t/a', 'robust/t/c', 'train/b'].sort());
    const expected = new Set(uses.flatMap((id) => [...dependents(before, id)]));
    expect(changed.sort()).toEqual([...expected].sort());
    expect(after.nodes.find((n) => n.id === 'robust/t/a')!.params).toMatchObject({ attack: { attack: 'pgd', version: 2 } });
    // Version 1 is left out of keys: planning again gives the old keys back.
    expect(keysById(await plan(src))).toEqual(keysById(before));
  });

  it("a version can follow the code path an attack's parameters select (AutoAttack's l_1 standard version only)", async () => {
    const dag = await plan('model a = cnn\nevaluate a against autoattack norm=l1 eps=5, autoattack norm=linf eps=0.1, autoattack norm=l1 version=rand eps=5');
    const versions = dag.nodes
      .filter((n) => n.op === 'robust')
      .map((n) => {
        const a = (n.params as unknown as { attack: { params: { norm: string; version: string }; version?: number } }).attack;
        return [a.params.norm, a.params.version, a.version];
      });
    expect(versions).toEqual([
      ['l1', 'standard', 2],
      ['linf', 'standard', undefined],
      ['l1', 'rand', undefined],
    ]);
  });

  it("a TREND ensemble over a transfer whose matrix is another transfer's (same models under other names) finds its candidates", async () => {
    const src = `dataset toy subset train=40 test=20
train epochs=1
model a = mlp seed 1
model b = mlp seed 2
model c = mlp seed 3
model x = mlp seed 1
model y = mlp seed 2
model z = mlp seed 3
transfer fgsm from a, b, c to a, b, c
attack f2 = fgsm
transfer f2 from x, y, z to x, y, z
ensemble e2 = trend k=2 from x, y, z using f2
ensemble e1 = trend k=2 from a, b, c using fgsm
`;
    const dag = await plan(src);
    // 'using fgsm' matches both transfers (f2 is an fgsm): the models named in 'from' decide,
    // and e1's selection is e2's (one key, one node).
    expect(dag.nodes.filter((n) => n.op === 'select')).toHaveLength(1);
    const sel = dag.byId.get('select/e2')!;
    const cands = (sel.params as { candidates: Array<{ col: number; row: number }> }).candidates;
    const names = sel.info.labels!.candidates!;
    const matrix = dag.nodes.filter((n) => n.op === 'matrix');
    expect(matrix).toHaveLength(1); // one node: both transfers have the same key
    const labels = matrix[0]!.info.labels!;
    // x, y, z are a, b, c under other names: each candidate sits where its twin does.
    const twin: Record<string, string> = { x: 'a', y: 'b', z: 'c' };
    expect(names.map((_n, i) => [labels.sources![cands[i]!.col], labels.targets![cands[i]!.row]])).toEqual(names.map((n) => [twin[n], twin[n]]));
  });
});
