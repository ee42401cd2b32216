// `trendc diff` compares results by what they mean (model, attack, source and target names),
// not by array position: matrix rows follow content keys and permute when a model changes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAKE_OPS, ROOT, TOY, trendc, workdir } from '../helpers/cli.js';

const ops = { TREND_OPS_MODULE: join(ROOT, 'test', 'fixtures', 'result-ops.mjs') };

const pipeline = (seedB: number) => `dataset toy subset train=400 test=100
train epochs=1 batch=50
model a = mlp width=0.25
model b = mlp width=0.25 seed ${seedB}
model c = mlp width=0.25 seed 3
transfer pgd eps=0.2 steps=3 step=0.1 from * to *
ensemble trend k=2
evaluate trend_k2 against agd eps=0.2 steps=3 step=0.1 images=50
`;

interface Cell {
  tm: number | null;
  transferred: number;
  eligible: number;
}
interface Result {
  id: string;
  kind: string;
  names: Record<string, string>;
  before: number | null;
  after: number | null;
  delta: number | null;
  n?: { before?: number; after?: number };
  counts?: { before?: { transferred: number; eligible: number }; after?: { transferred: number; eligible: number } };
  flag: boolean;
}

function run(dir: string, file = 'p.trend'): string {
  const r = trendc(['run', file, '--no-report'], { cwd: dir, env: ops });
  expect(r.code, r.stderr).toBe(0);
  return /^run (\S+) ok/m.exec(r.stdout)![1]!;
}

function planMatrix(dir: string, file: string): { sources: string[]; targets: string[] } {
  const plan = JSON.parse(trendc(['plan', file, '--json'], { cwd: dir }).stdout) as {
    nodes: Array<{ id: string; info: { labels?: Record<string, string[]> } }>;
  };
  const l = plan.nodes.find((n) => n.id === 'matrix/transfer1')!.info.labels!;
  return { sources: l.sources!, targets: l.targets! };
}

function matrixByName(dir: string, runId: string, labels: { sources: string[]; targets: string[] }): Map<string, Cell> {
  const m = JSON.parse(trendc(['cache', 'show', 'matrix/transfer1', '--run', runId], { cwd: dir }).stdout) as {
    summary: { attacks: Array<{ tm: Array<Array<number | null>>; transferred: number[][]; eligible: number[][] }> };
  };
  const a = m.summary.attacks[0]!;
  const out = new Map<string, Cell>();
  labels.targets.forEach((t, ti) =>
    labels.sources.forEach((s, si) => out.set(`${s}->${t}`, { tm: a.tm[ti]![si]!, transferred: a.transferred[ti]![si]!, eligible: a.eligible[ti]![si]! })),
  );
  return out;
}

describe('diff by meaning', () => {
  it('a changed model permutes the matrix rows; only cells that really changed are reported, by name', () => {
    const dir = workdir({ 'p.trend': pipeline(2) });
    const before = planMatrix(dir, 'p.trend');
    const r1 = run(dir);
    writeFileSync(join(dir, 'p.trend'), pipeline(15));
    const after = planMatrix(dir, 'p.trend');
    const r2 = run(dir);
    // The premise: the rows and columns are in a different order in the two runs.
    expect(after.targets).not.toEqual(before.targets);
    expect([...after.targets].sort()).toEqual([...before.targets].sort());

    const A = matrixByName(dir, r1, before);
    const B = matrixByName(dir, r2, after);
    const moved = [...B.keys()].filter((k) => A.get(k)!.tm !== B.get(k)!.tm);
    const still = [...B.keys()].filter((k) => A.get(k)!.tm === B.get(k)!.tm);
    expect(moved.length).toBeGreaterThan(0);
    expect(still.length).toBeGreaterThan(0);
    // Only cells with b changed (the fixture's results depend on exactly their inputs).
    for (const k of moved) expect(k.split('->')).toContain('b');

    const d = trendc(['diff', '--json', '--min-delta', '0'], { cwd: dir });
    expect(d.code, d.stderr).toBe(0);
    const diff = JSON.parse(d.stdout) as { a: string; b: string; results: Result[]; changed: Array<{ id: string }> };
    expect([diff.a, diff.b]).toEqual([r1, r2]);
    const tm = diff.results.filter((r) => r.kind === 'tm');
    const reported = tm.map((r) => `${r.names.source}->${r.names.target}`).sort();
    expect(reported).toEqual([...moved].sort());
    for (const r of tm) {
      const k = `${r.names.source}->${r.names.target}`;
      expect(r.names.attack).toBe('pgd');
      expect(r.before).toBe(A.get(k)!.tm);
      expect(r.after).toBe(B.get(k)!.tm);
      expect(r.counts).toEqual({
        before: { transferred: A.get(k)!.transferred, eligible: A.get(k)!.eligible },
        after: { transferred: B.get(k)!.transferred, eligible: B.get(k)!.eligible },
      });
      expect(r.n).toEqual({ before: A.get(k)!.eligible, after: B.get(k)!.eligible });
    }
    // Accuracies by model: b moved, a and c did not.
    const acc = diff.results.filter((r) => r.kind === 'accuracy');
    expect(acc.map((r) => r.names.classifier)).toContain('b');
    expect(acc.map((r) => r.names.classifier)).not.toContain('a');
    expect(acc.map((r) => r.names.classifier)).not.toContain('c');
    expect(acc.find((r) => r.names.classifier === 'b')!.n).toEqual({ before: 100, after: 100 });
    expect(diff.changed.map((c) => c.id)).toContain('train/b');

    // The human output leads with accuracies and TM cells by name, with sample sizes; the
    // parameter diff comes after.
    const text = trendc(['diff', '--min-delta', '0'], { cwd: dir }).stdout;
    const lines = text.split('\n');
    expect(lines[0]).toBe(`diff ${r1} -> ${r2} (p.trend)`);
    expect(lines[1]).toBe('clean accuracy:');
    expect(text.indexOf('transfer-matrix cells')).toBeLessThan(text.indexOf('changed nodes'));
    expect(text.indexOf('clean accuracy')).toBeLessThan(text.indexOf('params.train.seed: 2 -> 15'));
    for (const k of moved) {
      const [s, t] = k.split('->');
      const a = A.get(k)!;
      const b = B.get(k)!;
      expect(text).toMatch(new RegExp(`pgd: ${s} -> ${t}\\s+.*${a.transferred}/${a.eligible} -> ${b.transferred}/${b.eligible} images`));
    }
    for (const k of still) {
      const [s, t] = k.split('->');
      expect(text).not.toMatch(new RegExp(`pgd: ${s} -> ${t}\\s`));
    }
  });

  it('bare diff picks the last two runs of the pipeline; with several pipelines it asks which (exit 2)', () => {
    const dir = workdir({ 'p.trend': pipeline(2) });
    expect(trendc(['diff'], { cwd: dir }).code).toBe(2);
    const r1 = run(dir);
    const one = trendc(['diff'], { cwd: dir });
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/p\.trend has only one run; diff needs two/);
    writeFileSync(join(dir, 'p.trend'), pipeline(15));
    const r2 = run(dir);
    writeFileSync(join(dir, 'p.trend'), pipeline(16));
    const r3 = run(dir);
    const last2 = JSON.parse(trendc(['diff', '--json'], { cwd: dir }).stdout) as { a: string; b: string };
    expect([last2.a, last2.b]).toEqual([r2, r3]);
    mkdirSync(join(dir, 'q'));
    writeFileSync(join(dir, 'q', 'other.trend'), pipeline(7));
    run(dir, 'q/other.trend');
    const amb = trendc(['diff'], { cwd: dir });
    expect(amb.code).toBe(2);
    expect(amb.stderr).toMatch(/runs of several pipelines/);
    expect(amb.stderr).toContain('p.trend (3 runs)');
    expect(amb.stderr).toContain('q/other.trend (1 runs)');
    expect(amb.stderr.trim().split('\n')).toHaveLength(1);
    expect(amb.stderr).not.toMatch(/\n\s+at /);
    for (const args of [
      ['diff', 'p.trend', '--json'],
      ['diff', '--file', 'p.trend', '--json'],
    ]) {
      const d = JSON.parse(trendc(args, { cwd: dir }).stdout) as { a: string; b: string };
      expect([d.a, d.b]).toEqual([r2, r3]);
    }
    const withOne = JSON.parse(trendc(['diff', r1, '--json'], { cwd: dir }).stdout) as { a: string; b: string };
    expect([withOne.a, withOne.b]).toEqual([r1, r3]);
    expect(trendc(['diff', 'q/other.trend'], { cwd: dir }).code).toBe(2);
  });
});

describe('diff says what it cannot compare', () => {
  const fake = (extra: Record<string, string> = {}) => ({ TREND_OPS_MODULE: FAKE_OPS, ...extra });
  const runId = (dir: string, args: string[], env: Record<string, string>) => {
    const r = trendc(['run', 'toy.trend', '--no-report', ...args], { cwd: dir, env });
    return { id: /^run (\S+) /m.exec(r.stdout)![1]!, out: r.stdout + r.stderr };
  };
  interface Diff {
    added: string[];
    removed: string[];
    statuses: Array<{ id: string; before: string; after: string }>;
    notSelected: Array<{ id: string; run: string }>;
    bytesDiffer: Array<{ id: string; before: string; after: string }>;
  }
  const diff = (dir: string, a: string, b: string) => JSON.parse(trendc(['diff', a, b, '--json'], { cwd: dir }).stdout) as Diff;

  it('failed and skipped nodes, --only runs, recomputed bytes, and one run given twice', () => {
    const dir = workdir({ 'toy.trend': TOY });
    const r1 = runId(dir, [], fake()).id;
    // A recompute of everything in which train/b fails: its dependants are skipped.
    const r2 = runId(dir, ['--force-all'], fake({ TREND_FAKE_FAIL: 'train/b' })).id;
    const d12 = diff(dir, r1, r2);
    expect(d12.statuses).toContainEqual({ id: 'train/b', before: 'ran', after: 'failed', error: expect.stringMatching(/fake failure in train\/b/) });
    expect(d12.statuses.filter((s) => s.after === 'skipped').length).toBeGreaterThan(3);
    const text = trendc(['diff', r1, r2], { cwd: dir }).stdout;
    expect(text).toMatch(/results in one run only \(\d+\):\n {2}(.|\n)*train\/b: ran -> failed/);
    expect(text).not.toMatch(/no differences/);
    // --only: the nodes it did not select are not "removed".
    const r3 = runId(dir, ['--only', 'train/a'], fake()).id;
    const d13 = diff(dir, r1, r3);
    expect(d13.removed).toEqual([]);
    expect(d13.notSelected.length).toBeGreaterThan(10);
    expect(d13.notSelected.every((x) => x.run === 'b')).toBe(true);
    // --force of a node that computes other bytes than it stored: said at run time and by diff.
    const r4 = runId(dir, ['--force', 'train/a'], fake({ TREND_FAKE_DRIFT: 'train/a' }));
    expect(r4.out).toMatch(/train\/a: recomputed with other bytes than the stored result \(\w+ -> \w+\) on the same backend: this node is not reproducible/);
    const d14 = diff(dir, r1, r4.id);
    expect(d14.bytesDiffer.map((x) => x.id)).toEqual(['train/a']);
    expect(d14.bytesDiffer[0]!.before).not.toBe(d14.bytesDiffer[0]!.after);
    expect(trendc(['diff', r1, r4.id], { cwd: dir }).stdout).toMatch(/same key, other bytes \(1\).*not reproducible/);
    // A rerun that reproduces its bytes is no difference.
    const r5 = runId(dir, ['--force', 'train/c'], fake()).id;
    expect(diff(dir, r4.id, r5).bytesDiffer).toEqual([]);
    // --file with one run: against that pipeline's newest run (none here); with two runs: an error.
    writeFileSync(join(dir, 'other.trend'), TOY);
    const none = trendc(['diff', r1, '--file', 'other.trend'], { cwd: dir });
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/other\.trend has no runs/)]);
    expect(trendc(['diff', r1, r5, '--file', 'toy.trend'], { cwd: dir }).code).toBe(2);
    const same = trendc(['diff', r1, r1], { cwd: dir });
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/are the same run/);
  });
});
