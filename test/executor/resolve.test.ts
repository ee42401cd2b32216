// Node ids given to `export` and `cache show` mean the node of the newest run (or of --run),
// never whichever cached artifact happens to sort first.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAKE_OPS, ROOT, TOY, trendc, workdir } from '../helpers/cli.js';

const ops = { TREND_OPS_MODULE: join(ROOT, 'test', 'fixtures', 'result-ops.mjs') };

function run(dir: string, file: string): string {
  const r = trendc(['run', file, '--no-report'], { cwd: dir, env: ops });
  expect(r.code, r.stderr).toBe(0);
  return /^run (\S+) ok/m.exec(r.stdout)![1]!;
}

function planKey(dir: string, file: string, id: string): string {
  const p = JSON.parse(trendc(['plan', file, '--json'], { cwd: dir }).stdout) as { nodes: Array<{ id: string; key: string }> };
  return p.nodes.find((n) => n.id === id)!.key;
}

function exportedKey(dir: string, args: string[]): string {
  const out = join(dir, `export-${Math.random().toString(36).slice(2)}`);
  const r = trendc(['export', ...args, '--out', out], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { key: string }).key;
}

describe('node ids resolve to the newest run', () => {
  it('export and cache show by id give the newest matrix; --run gives an older one', () => {
    const dir = workdir();
    const runs: Array<{ id: string; key: string }> = [];
    // Several versions of the matrix: with the lowest-hash rule, some version other than the
    // newest is always picked at one of these steps.
    for (const eps of ['0.2', '0.1', '0.15', '0.05', '0.3']) {
      writeFileSync(join(dir, 'toy.trend'), TOY.replace('eps=0.2', `eps=${eps}`));
      const id = run(dir, 'toy.trend');
      const key = planKey(dir, 'toy.trend', 'matrix/transfer1');
      runs.push({ id, key });
      expect(exportedKey(dir, ['matrix/transfer1'])).toBe(key);
      const show = trendc(['cache', 'show', 'matrix/transfer1'], { cwd: dir });
      expect(show.code, show.stderr).toBe(0);
      expect((JSON.parse(show.stdout) as { key: string }).key).toBe(key);
    }
    expect(new Set(runs.map((r) => r.key)).size).toBe(runs.length);
    for (const r of runs) {
      expect(exportedKey(dir, ['matrix/transfer1', '--run', r.id])).toBe(r.key);
      const show = trendc(['cache', 'show', 'model/x', '--run', r.id], { cwd: dir });
      expect(show.code).toBe(2);
      expect(show.stderr).toMatch(/has no node 'model\/x'/);
      expect((JSON.parse(trendc(['cache', 'show', 'matrix/transfer1', '--run', r.id.slice(0, 22)], { cwd: dir }).stdout) as { key: string }).key).toBe(r.key);
    }
    // Key prefixes keep working.
    const k = runs[0]!.key;
    expect(exportedKey(dir, [k.slice(0, 12)])).toBe(k);
  });

  it('an id in several pipelines, or an ambiguous key prefix, lists the candidates and exits 2', () => {
    const dir = workdir({ 'toy.trend': TOY });
    mkdirSync(join(dir, 'other'));
    writeFileSync(join(dir, 'other', 'toy2.trend'), TOY.replace('eps=0.2', 'eps=0.1'));
    const r1 = run(dir, 'toy.trend');
    const r2 = run(dir, 'other/toy2.trend');
    const amb = trendc(['export', 'matrix/transfer1', '--out', join(dir, 'x')], { cwd: dir });
    expect(amb.code).toBe(2);
    expect(amb.stderr).toMatch(/'matrix\/transfer1' is a node of several pipelines/);
    expect(amb.stderr).toContain(`toy.trend: run ${r1}`);
    expect(amb.stderr).toContain(`other/toy2.trend: run ${r2}`);
    expect(amb.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(trendc(['cache', 'show', 'matrix/transfer1'], { cwd: dir }).code).toBe(2);
    // --run settles it.
    expect(exportedKey(dir, ['matrix/transfer1', '--run', r2])).toBe(planKey(dir, 'other/toy2.trend', 'matrix/transfer1'));
    // A hex prefix shared by several keys.
    const ls = JSON.parse(trendc(['cache', 'ls', '--json'], { cwd: dir }).stdout) as Array<{ key: string }>;
    const counts = new Map<string, number>();
    for (const m of ls) counts.set(m.key[0]!, (counts.get(m.key[0]!) ?? 0) + 1);
    const shared = [...counts].find(([, n]) => n > 1)![0];
    const p = trendc(['cache', 'show', shared], { cwd: dir });
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(new RegExp(`key prefix '${shared}' is ambiguous \\(${counts.get(shared)} matches\\)`));
    expect(p.stderr.split('\n').filter((l) => l.startsWith(`  ${shared}`))).toHaveLength(Math.min(20, counts.get(shared)!));
    expect(trendc(['cache', 'show', 'nope/none'], { cwd: dir }).code).toBe(2);
  });

  it('the newest run without the node (or with it failed) is an error, not an older artifact', () => {
    const dir = workdir({ 'toy.trend': TOY });
    const r1 = run(dir, 'toy.trend');
    writeFileSync(join(dir, 'toy.trend'), TOY.replace('ensemble trend k=2\n', ''));
    run(dir, 'toy.trend');
    const r = trendc(['cache', 'show', 'select/trend_k2'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has no node 'select\/trend_k2'.*use --run/s);
    expect(r.stderr).toContain(r1);
    expect(trendc(['cache', 'show', 'select/trend_k2', '--run', r1], { cwd: dir }).code).toBe(0);
  });

  it('a node whose --force failed in the newest run gives the artifact stored under its key, with a note', () => {
    const dir = workdir({ 'toy.trend': TOY });
    run(dir, 'toy.trend');
    const r = trendc(['run', 'toy.trend', '--no-report', '--force', 'train/b'], { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS, TREND_FAKE_FAIL: 'train/b' } });
    const failed = /^run (\S+) /m.exec(r.stdout)![1]!;
    const show = trendc(['cache', 'show', 'train/b'], { cwd: dir });
    expect(show.code).toBe(0);
    expect(show.stderr).toMatch(new RegExp(`note: node 'train/b' failed in run ${failed}; this is the artifact stored earlier under the same key`));
    expect(trendc(['cache', 'show', 'train/a'], { cwd: dir }).stderr).toBe('');
  });

  it("an id no run holds is an error, not the artifact some other pipeline's node first stored under it", () => {
    // p2's train/zz is p1's train/a under another name: one key, whose record says 'train/a'.
    const p2 = TOY.replace('model a = mlp', 'model zz = mlp');
    const dir = workdir({ 'p1.trend': TOY, 'p2.trend': p2 });
    run(dir, 'p1.trend');
    run(dir, 'p2.trend');
    expect(planKey(dir, 'p2.trend', 'train/zz')).toBe(planKey(dir, 'p1.trend', 'train/a'));
    writeFileSync(join(dir, 'p1.trend'), TOY.replace('model a = mlp width=0.25\n', ''));
    run(dir, 'p1.trend');
    expect(trendc(['cache', 'gc', '--keep-runs', '1'], { cwd: dir }).code).toBe(0);
    for (const args of [
      ['cache', 'show', 'train/a'],
      ['export', 'train/a', '--out', join(dir, 'out')],
    ]) {
      const r = trendc(args, { cwd: dir });
      expect(r.code, r.stdout).toBe(2);
      expect(r.stderr).toMatch(/no run has a node 'train\/a'/);
    }
    expect(exportedKey(dir, ['train/zz'])).toBe(planKey(dir, 'p2.trend', 'train/zz'));
  });
});
