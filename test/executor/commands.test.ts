import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatOwner, self } from '../../src/store/owner.js';
import { FAKE_OPS, summaryCounts, TOY, trendc, workdir } from '../helpers/cli.js';

const fake = { TREND_OPS_MODULE: FAKE_OPS };

describe('explain, runs, diff', () => {
  it('explain says why each node would run; diff shows changed nodes with parameter and result deltas', () => {
    const dir = workdir({ 'toy.trend': TOY });
    const e0 = trendc(['explain', 'toy.trend'], { cwd: dir });
    expect(e0.code).toBe(0);
    expect(e0.stdout).toMatch(/train\/a: new node \(no earlier run of this pipeline\)/);
    trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake });
    expect(trendc(['explain', 'toy.trend'], { cwd: dir }).stdout).toMatch(/nothing to run/);
    writeFileSync(join(dir, 'toy.trend'), TOY.replace('model b = mlp width=0.25 seed 2', 'model b = mlp width=0.25 seed 12'));
    const e1 = trendc(['explain', 'toy.trend', '--json'], { cwd: dir });
    const items = (JSON.parse(e1.stdout) as { nodes: Array<{ id: string; reason: string; changes: Array<{ path: string; before: unknown; after: unknown }> }> })
      .nodes;
    const trainB = items.find((i) => i.id === 'train/b')!;
    expect(trainB.reason).toMatch(/parameters changed/);
    expect(trainB.changes).toContainEqual({ path: 'params.train.seed', before: 2, after: 12 });
    expect(items.find((i) => i.id === 'predict/b')!.reason).toMatch(/inputs changed \(models: train\/b\)/);
    expect(items.some((i) => i.id === 'train/a')).toBe(false);
    const r = trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake });
    expect(summaryCounts(r.stdout).ran).toBe(items.length);
    const runs = trendc(['runs', 'toy.trend'], { cwd: dir });
    expect(runs.stdout.trim().split('\n')).toHaveLength(4); // header, rule, two runs
    const d = trendc(['diff', '--json', '--min-delta', '0'], { cwd: dir });
    const diff = JSON.parse(d.stdout) as { changed: Array<{ id: string }>; results: Array<{ id: string; flag: boolean }>; added: string[]; removed: string[] };
    expect(diff.changed.map((c) => c.id)).toContain('train/b');
    expect(diff.added).toEqual([]);
    expect(diff.results.some((x) => x.id === 'train/b' && x.flag)).toBe(true);
    const text = trendc(['diff'], { cwd: dir });
    expect(text.stdout).toMatch(/~ train\/b/);
    expect(text.stdout).toMatch(/params\.train\.seed: 2 -> 12/);
  });
});

describe('explain after a partial run', () => {
  it('compares each node with the last run that had it: an --only run in between hides no change', () => {
    const dir = workdir({ 'toy.trend': TOY });
    trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake });
    writeFileSync(join(dir, 'toy.trend'), TOY.replace('model b = mlp width=0.25 seed 2', 'model b = mlp width=0.25 seed 12'));
    expect(trendc(['run', 'toy.trend', '--quiet', '--only', 'train/a'], { cwd: dir, env: fake }).code).toBe(0);
    const e = JSON.parse(trendc(['explain', 'toy.trend', '--json'], { cwd: dir }).stdout) as {
      nodes: Array<{ id: string; reason: string; changes: Array<{ path: string; before: unknown; after: unknown }> }>;
    };
    const b = e.nodes.find((i) => i.id === 'train/b')!;
    expect(b.reason).toMatch(/parameters changed/);
    expect(b.changes).toContainEqual({ path: 'params.train.seed', before: 2, after: 12 });
  });
});

describe('reports of partial runs', () => {
  it('an --only or failed run writes its report beside the pipeline report, not over it', () => {
    const dir = workdir({ 'toy.trend': TOY });
    trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake });
    const main = join(dir, 'reports', 'toy', 'index.md');
    const before = readFileSync(main, 'utf8');
    for (const [args, env] of [
      [['--only', 'train/a'], fake],
      [['--force', 'train/b'], { ...fake, TREND_FAKE_FAIL: 'train/b' }],
    ] as const) {
      const r = trendc(['run', 'toy.trend', '--quiet', ...args], { cwd: dir, env });
      const id = /^run (\S+) /m.exec(r.stdout)![1]!;
      expect(r.stdout).toContain(`report: reports/toy/run-${id}/index.md`);
      expect(existsSync(join(dir, 'reports', 'toy', `run-${id}`, 'index.md'))).toBe(true);
    }
    expect(readFileSync(main, 'utf8')).toBe(before);
  });
});

describe('cache maintenance and export', () => {
  it('gc removes what no kept run reaches and returns the space', () => {
    const dir = workdir({ 'toy.trend': TOY });
    trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake });
    writeFileSync(join(dir, 'toy.trend'), TOY.replace('train=400', 'train=300'));
    trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake });
    const before = JSON.parse(trendc(['cache', 'stats', '--json'], { cwd: dir }).stdout) as { nodes: number };
    const g = JSON.parse(trendc(['cache', 'gc', '--keep-runs', '1', '--json'], { cwd: dir }).stdout) as {
      nodesRemoved: number;
      bytesBefore: number;
      bytesAfter: number;
      runsRemoved: number;
    };
    expect(g.runsRemoved).toBe(1);
    expect(g.nodesRemoved).toBeGreaterThan(0);
    expect(g.bytesAfter).toBeLessThan(g.bytesBefore);
    const after = JSON.parse(trendc(['cache', 'stats', '--json'], { cwd: dir }).stdout) as { nodes: number };
    expect(after.nodes).toBe(before.nodes - g.nodesRemoved);
    expect(trendc(['cache', 'verify'], { cwd: dir }).code).toBe(0);
    const r = trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake });
    expect(summaryCounts(r.stdout).ran).toBe(0);
  });

  it('cache ls/show and export of a matrix as CSV with labels', () => {
    const dir = workdir({ 'toy.trend': TOY });
    trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake });
    const ls = JSON.parse(trendc(['cache', 'ls', '--json', '--op', 'train'], { cwd: dir }).stdout) as Array<{ key: string; id: string }>;
    expect(ls.map((m) => m.id).sort()).toEqual(['train/a', 'train/b', 'train/c']);
    const show = JSON.parse(trendc(['cache', 'show', ls[0]!.key.slice(0, 10)], { cwd: dir }).stdout) as { op: string; backend: string };
    expect(show.op).toBe('train');
    expect(show.backend).toBe('fake');
    expect(trendc(['cache', 'show', 'ffff'], { cwd: dir }).code).toBe(2);
    const out = join(dir, 'export');
    const ex = trendc(['export', 'adv/pgd/a', '--out', out], { cwd: dir });
    expect(ex.code).toBe(0);
    const npy = readFileSync(join(out, 'data.npy'));
    expect(npy.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
    expect(npy.toString('latin1', 10, 80)).toMatch(/'descr': '<f4', 'fortran_order': False, 'shape': \(16,\)/);
  });
});

describe('bad input: clear errors, exit 2, no stack traces, no damage to the cache', () => {
  const cases: Array<[string, string[] | ((dir: string) => string[]), RegExp]> = [
    ['a missing file', ['run', 'nope.trend'], /nope\.trend: no such file/],
    ['a directory', (d) => ['check', d], /is a directory/],
    ['an unknown flag', ['run', 'x.trend', '--frobnicate'], /unknown option/],
    ['a bad --jobs', ['run', 'ok.trend', '--jobs', 'many'], /--jobs must be a positive integer/],
    ['a binary file', ['check', 'bin.trend'], /not text/],
    ['an unknown backend', ['run', 'ok.trend', '--backend', 'tpu'], /unknown backend 'tpu'/],
    ['a bad --only', ['run', 'ok.trend', '--only', 'train/zz'], /no node matches 'train\/zz'/],
  ];
  for (const [what, args, msg] of cases) {
    it(what, () => {
      const dir = workdir({ 'ok.trend': TOY, 'bin.trend': '\u0000\u0001\u0002' });
      const r = trendc(typeof args === 'function' ? args(dir) : args, { cwd: dir, env: fake });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    });
  }

  it('a pipeline with errors reports file:line:col and leaves the cache untouched', () => {
    const dir = workdir({ 'ok.trend': TOY });
    trendc(['run', 'ok.trend', '--quiet'], { cwd: dir, env: fake });
    const stats = trendc(['cache', 'stats', '--json'], { cwd: dir }).stdout;
    writeFileSync(join(dir, 'bad.trend'), TOY + 'transfer pgdd from a to b\nmodel q = cnn quant input 99bit\n');
    const r = trendc(['run', 'bad.trend'], { cwd: dir, env: fake });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.trend:9:10: error\[E033\]: unknown attack 'pgdd'/);
    expect(r.stderr).toMatch(/bad\.trend:10:\d+: error\[E023\]: 99 bits is out of range/);
    expect(trendc(['cache', 'stats', '--json'], { cwd: dir }).stdout).toBe(stats);
  });

  it('check prints ok for good files and --json diagnostics for bad ones', () => {
    const dir = workdir({ 'ok.trend': TOY, 'bad.trend': 'modle x = cnn\n' });
    expect(trendc(['check', 'ok.trend'], { cwd: dir }).stdout).toMatch(/ok\.trend: ok/);
    const j = trendc(['check', 'bad.trend', '--json'], { cwd: dir });
    expect(j.code).toBe(2);
    const d = JSON.parse(j.stdout) as Array<{ diagnostics: Array<{ message: string; suggestion: string }> }>;
    expect(d[0]!.diagnostics[0]).toMatchObject({ message: "unknown statement 'modle'", suggestion: "'model'" });
  });

  it('fmt --check exits 1 on unformatted files and --write fixes them', () => {
    const dir = workdir({ 'a.trend': 'model   x =   cnn\n' });
    expect(trendc(['fmt', '--check', 'a.trend'], { cwd: dir }).code).toBe(1);
    expect(trendc(['fmt', '--write', 'a.trend'], { cwd: dir }).code).toBe(0);
    expect(readFileSync(join(dir, 'a.trend'), 'utf8')).toBe('model x = cnn\n');
    expect(trendc(['fmt', '--check', 'a.trend'], { cwd: dir }).code).toBe(0);
  });

  it('plan prints the DAG as a table, JSON and DOT', () => {
    const dir = workdir({ 'ok.trend': TOY });
    expect(trendc(['plan', 'ok.trend'], { cwd: dir }).stdout).toMatch(/22 nodes: 1 dataset, 3 train/);
    const j = JSON.parse(trendc(['plan', 'ok.trend', '--json'], { cwd: dir }).stdout) as { nodes: Array<{ id: string; key: string }> };
    expect(j.nodes).toHaveLength(22);
    expect(j.nodes[0]!.key).toMatch(/^[0-9a-f]{32}$/);
    expect(trendc(['plan', 'ok.trend', '--dot'], { cwd: dir }).stdout).toMatch(/^digraph trend \{/);
  });
});

describe('status', () => {
  it('status and plan say, per node, cached, running now (and by whom) or to run, and create no store', () => {
    const dir = workdir({ 'toy.trend': TOY });
    type S = { counts: { cached: number; running: number; 'to run': number }; nodes: Array<{ id: string; key: string; state: string; owner?: string }> };
    const status = () => JSON.parse(trendc(['status', 'toy.trend', '--json'], { cwd: dir }).stdout) as S;
    const before = status();
    expect(before.counts).toEqual({ cached: 0, running: 0, 'to run': 22 });
    expect(existsSync(join(dir, 'cache'))).toBe(false);
    expect(trendc(['plan', 'toy.trend'], { cwd: dir }).stdout).toMatch(/0 cached, 0 running now, 22 to run/);
    expect(trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake }).code).toBe(0);
    expect(status().counts).toEqual({ cached: 22, running: 0, 'to run': 0 });
    // A node another live process is computing: its artifact is not stored and its lock is held.
    const node = before.nodes.find((n) => n.id === 'train/a')!;
    // (status reads the record files, not the index: removing the record un-caches the node.)
    rmSync(join(dir, 'cache', 'nodes', node.key.slice(0, 2), node.key + '.json'));
    mkdirSync(join(dir, 'cache', 'locks'), { recursive: true });
    writeFileSync(join(dir, 'cache', 'locks', node.key), formatOwner(self()));
    const after = status();
    expect(after.nodes.find((n) => n.id === 'train/a')).toMatchObject({ state: 'running', owner: formatOwner(self()) });
    expect(after.counts).toEqual({ cached: 21, running: 1, 'to run': 0 });
    const text = trendc(['status', 'toy.trend'], { cwd: dir }).stdout;
    expect(text).toMatch(new RegExp(`running \\(${formatOwner(self())}\\)\\s+train\\s+train/a`));
    const plan = JSON.parse(trendc(['plan', 'toy.trend', '--json'], { cwd: dir }).stdout) as S;
    expect(plan.nodes.find((n) => n.id === 'predict/a')!.state).toBe('cached');
    // A lock whose owner is gone is not a running node.
    writeFileSync(join(dir, 'cache', 'locks', node.key), '999999999');
    expect(status().nodes.find((n) => n.id === 'train/a')!.state).toBe('to run');
  });
});

describe('start-up paths', () => {
  it('--version answers alone; help lists every command; each command is reachable and a typo gets a suggestion', () => {
    const dir = workdir({ 'toy.trend': TOY });
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    for (const v of ['--version', '-V']) expect(trendc([v], { cwd: dir })).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    const help = trendc(['--help'], { cwd: dir }).stdout;
    const listed = [...help.matchAll(/^ {2}([a-z-]+)(?: \[options\]| <| \[|\s{2})/gm)].map((m) => m[1]);
    expect(listed).toEqual(['check', 'plan', 'fmt', 'run', 'explain', 'runs', 'diff', 'report', 'status', 'exec-node', 'cache', 'export', 'help']);
    // Each command's own module is loaded for it alone: its help works and names its options.
    for (const [cmd, option] of [
      ['check', '--json'],
      ['plan', '--dot'],
      ['run', '--executor'],
      ['status', '--cache'],
      ['export', '--format'],
      ['cache', 'verify'],
      ['exec-node', '--job'],
    ])
      expect(trendc([cmd, '--help'], { cwd: dir }).stdout, cmd).toContain(option);
    const typo = trendc(['chek', 'toy.trend'], { cwd: dir });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/Did you mean check\?/);
    expect(existsSync(join(dir, 'cache'))).toBe(false);
  });
});
