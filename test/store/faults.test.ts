/**
 * The store under faults: gc racing a live run, a damaged index, a full disk, a read-only store,
 * and cache paths that are wrong. Every command must end with an exit code and a message (never
 * a signal, a hang or a stack trace), and the store must come back to a working state.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summaryCounts, TOY, trendcAsync, workdir } from '../helpers/cli.js';
import { checksums, cli, copyStore, expectClean, fake, filesUnder, nodesRootPage, remount, show, withTmpfs } from './helpers.js';

const TOTAL = 22;

async function runToy(dir: string, extra: string[] = [], env: Record<string, string> = {}) {
  const args = ['run', 'toy.trend', '--quiet', ...extra];
  const r = await cli(args, { cwd: dir, env: fake(env) });
  return { ...r, what: show(args, r) };
}

describe('gc and a live run', () => {
  it('gc in another process never removes what a live run has computed or is computing', async () => {
    const dir = workdir({ 'toy.trend': TOY, 'old.trend': TOY.replace('train=400', 'train=300') });
    // Garbage for gc to collect: the first of two runs of another pipeline, dropped by
    // --keep-runs 1 (which keeps the newest run of each pipeline, so also the toy run once done).
    expect((await cli(['run', 'old.trend', '--quiet'], { cwd: dir, env: fake() })).code).toBe(0);
    writeFileSync(join(dir, 'old.trend'), TOY.replace('train=400', 'train=200'));
    expect((await cli(['run', 'old.trend', '--quiet'], { cwd: dir, env: fake() })).code).toBe(0);
    const log = join(dir, 'exec.log');
    writeFileSync(log, '');
    const run = trendcAsync(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake({ TREND_FAKE_SLEEP_MS: '120', TREND_FAKE_LOG: log }) });
    const exited = new Promise<number | null>((r) => run.on('exit', (c) => r(c)));
    let done = false;
    void exited.then(() => (done = true));
    // Start collecting once the run has computed a few nodes, and keep collecting until it ends.
    while (!done && readFileSync(log, 'utf8').split('\n').length < 4) await new Promise((r) => setTimeout(r, 20));
    const gcs: Array<{ code: number | null; out: string }> = [];
    while (!done) {
      const g = trendcAsync(['cache', 'gc', '--keep-runs', '1', '--json'], { cwd: dir });
      let out = '';
      g.stdout.on('data', (d: Buffer) => (out += d.toString()));
      g.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((r) => g.on('exit', (c) => r(c)));
      gcs.push({ code, out });
    }
    expect(await exited).toBe(0);
    expect(gcs.length).toBeGreaterThan(0);
    for (const g of gcs) expect(g.code, g.out).toBe(0);
    // The collections did remove the first run's nodes.
    expect(gcs.reduce((s, g) => s + (JSON.parse(g.out) as { nodesRemoved: number }).nodesRemoved, 0)).toBeGreaterThan(0);
    const again = await runToy(dir);
    expect(again.code, again.what).toBe(0);
    expect(summaryCounts(again.stdout)).toEqual({ ran: 0, cached: TOTAL, failed: 0, skipped: 0 });
    expect((await cli(['cache', 'verify'], { cwd: dir })).code).toBe(0);
  });
});

describe('a damaged index (data.mdb)', () => {
  const damage: Array<[string, (file: string) => void]> = [
    ['truncated to half its size', (file) => truncateSync(file, Math.floor(readFileSync(file).length / 2))],
    [
      '256 bytes overwritten on a data page',
      (file) => {
        const bytes = readFileSync(file);
        // The root page of the `nodes` database: overwrite its nodes from the top.
        const { page: pg, pageSize } = nodesRootPage(bytes);
        const at = pg * pageSize + bytes.readUInt16LE(pg * pageSize + 14);
        for (let i = 0; i < 256; i++) bytes[at + i] = (i * 89 + 17) & 0xff;
        writeFileSync(file, bytes);
      },
    ],
  ];
  for (const [what, edit] of damage) {
    it(`${what}: every command says so and none dies; verify --repair brings the store back`, async () => {
      const dir = workdir({ 'toy.trend': TOY });
      expect((await runToy(dir)).code).toBe(0);
      const clean = await checksums(dir);
      const key = Object.keys(clean)[0]!;
      edit(join(dir, 'cache', 'data.mdb'));
      const gcCopy = copyStore(join(dir, 'cache'));

      const v = await cli(['cache', 'verify'], { cwd: dir });
      expectClean(['cache', 'verify'], v, [1]);
      expect(v.stdout).toMatch(/data\.mdb: DAMAGED \(/);
      for (const args of [['cache', 'ls'], ['cache', 'stats'], ['cache', 'show', key], ['runs'], ['export', key, '--out', join(dir, 'ex')]]) {
        const r = await cli(args, { cwd: dir });
        expectClean(args, r, [0]);
        expect(r.stderr, show(args, r)).toMatch(/warning: the store index \S+data\.mdb is damaged \(.+\); working from the node and run records alone/);
      }
      expect((await cli(['cache', 'ls', '--json'], { cwd: dir })).stdout).toContain(key);
      // gc works too (and, as nobody else uses the store, compacts the index by rebuilding it).
      const g = await cli(['cache', 'gc'], { cwd: gcCopy });
      expectClean(['cache', 'gc'], g, [0]);
      expect((await cli(['cache', 'verify'], { cwd: gcCopy })).code).toBe(0);

      const repair = await cli(['cache', 'verify', '--repair'], { cwd: dir });
      expectClean(['cache', 'verify', '--repair'], repair, [0]);
      expect(repair.stdout).toMatch(/rebuilt from the records/);
      const after = await cli(['cache', 'verify'], { cwd: dir });
      expect(after.code, show(['cache', 'verify'], after)).toBe(0);
      expect(after.stdout).toMatch(/^index: ok$/m);
      const again = await runToy(dir);
      expect(again.code, again.what).toBe(0);
      expect(again.stderr).not.toMatch(/warning/);
      expect(summaryCounts(again.stdout)).toEqual({ ran: 0, cached: TOTAL, failed: 0, skipped: 0 });
      expect(await checksums(dir)).toEqual(clean);
    });
  }

  it('a run on a damaged index goes on from the records, and writes what it computes', async () => {
    const dir = workdir({ 'toy.trend': TOY });
    expect((await runToy(dir)).code).toBe(0);
    truncateSync(join(dir, 'cache', 'data.mdb'), 20000);
    const r = await runToy(dir, ['--force', 'train/a']);
    expect(r.code, r.what).toBe(0);
    expect(r.stderr).toMatch(/index .* is damaged/);
    expect(summaryCounts(r.stdout).ran).toBe(1);
    expect((await cli(['cache', 'verify', '--repair'], { cwd: dir })).code).toBe(0);
    expect(summaryCounts((await runToy(dir)).stdout)).toEqual({ ran: 0, cached: TOTAL, failed: 0, skipped: 0 });
  });
});

describe('a full disk', () => {
  /** Fills the file system at `dir` until `leave` bytes are free. */
  function fill(dir: string, leave: number): string {
    const f = join(dir, 'filler');
    const st = statfsSync(dir);
    const free = st.bavail * st.bsize;
    writeFileSync(f, Buffer.alloc(Math.max(0, free - leave)));
    return f;
  }
  const leftovers = (cache: string) => [...filesUnder(join(cache, 'tmp')), ...filesUnder(join(cache, 'locks'))];

  it('reports "disk full writing PATH", leaves no temporary files or locks, and the next run works', async () => {
    await withTmpfs('1m', async (mnt) => {
      const dir = workdir({ 'toy.trend': TOY });
      const cache = join(mnt, 'cache');
      // Room for the store and the run record, not for the 160 KB dataset payload.
      const filler = fill(mnt, 100 * 1024);
      const r = await runToy(dir, ['--cache', cache]);
      expectClean(['run'], r, [1]);
      expect(r.stderr).toMatch(/disk full writing \/\S+/);
      expect(leftovers(cache)).toEqual([]);
      unlinkSync(filler);
      const again = await runToy(dir, ['--cache', cache]);
      expect(again.code, again.what).toBe(0);
      expect(summaryCounts(again.stdout).ran + summaryCounts(again.stdout).cached).toBe(TOTAL);
      expect((await cli(['cache', 'verify', '--cache', cache], { cwd: dir })).code).toBe(0);

      // Completely full: the run record itself cannot be written.
      const full = fill(mnt, 0);
      const f = await runToy(dir, ['--cache', cache, '--force-all']);
      expectClean(['run', '--force-all'], f, [1]);
      expect(f.stderr).toMatch(/^trendc: disk full writing \/\S+/m);
      expect(leftovers(cache)).toEqual([]);
      const ls = await cli(['cache', 'ls', '--cache', cache], { cwd: dir });
      expectClean(['cache', 'ls'], ls, [0]);
      unlinkSync(full);
      const last = await runToy(dir, ['--cache', cache, '--force-all']);
      expect(last.code, last.what).toBe(0);
      expect(summaryCounts(last.stdout).ran).toBe(TOTAL);
      expect((await cli(['cache', 'verify', '--cache', cache], { cwd: dir })).code).toBe(0);
    });
  });
});

describe('read-only stores and bad cache paths', () => {
  it('a store on a read-only file system can be listed, shown, verified and exported from', async () => {
    await withTmpfs('4m', async (mnt) => {
      const dir = workdir({ 'toy.trend': TOY });
      const cache = join(mnt, 'cache');
      expect((await runToy(dir, ['--cache', cache])).code).toBe(0);
      const clean = await checksums(dir, cache);
      remount(mnt, 'ro');
      try {
        const c = ['--cache', cache];
        const ls = await cli(['cache', 'ls', '--json', ...c], { cwd: dir });
        expectClean(['cache', 'ls'], ls, [0]);
        expect((JSON.parse(ls.stdout) as unknown[]).length).toBe(TOTAL);
        expect(await checksums(dir, cache)).toEqual(clean);
        const key = Object.keys(clean)[0]!;
        for (const args of [
          ['cache', 'show', key, ...c],
          ['cache', 'stats', ...c],
          ['cache', 'verify', ...c],
          ['runs', ...c],
          ['export', 'adv/pgd/a', '--out', join(dir, 'ex'), ...c],
        ]) {
          const r = await cli(args, { cwd: dir });
          expectClean(args, r, [0]);
        }
        expect(readdirSync(join(dir, 'ex'))).toContain('data.npy');
        // Writing commands fail with a message, exit 1.
        for (const args of [
          ['run', 'toy.trend', '--force', 'train/a', ...c],
          ['cache', 'verify', '--repair', ...c],
          ['cache', 'gc', ...c],
        ]) {
          const r = await cli(args, { cwd: dir, env: fake() });
          expectClean(args, r, [1]);
          expect(r.stderr, show(args, r)).toMatch(/read-only/);
        }
      } finally {
        remount(mnt, 'rw');
      }
    });
  });

  it('a store made read-only with chmod -R a-w is read by a user who is not root (root ignores the modes)', async () => {
    const dir = workdir({ 'toy.trend': TOY });
    expect((await runToy(dir)).code).toBe(0);
    const clean = await checksums(dir);
    chmodSync(dir, 0o755);
    execFileSync('chmod', ['-R', 'a-w', join(dir, 'cache')]);
    try {
      // As `nobody`, through runuser (util-linux), with the same node and CLI.
      const asNobody = (args: string[]) => cli(args, { cwd: dir, env: { TREND_RUN_AS: 'nobody' } });
      for (const args of [['cache', 'ls', '--json'], ['cache', 'verify'], ['cache', 'stats'], ['cache', 'show', Object.keys(clean)[0]!], ['runs']]) {
        const r = await asNobody(args);
        expectClean(args, r, [0]);
        if (args[1] === 'ls') expect((JSON.parse(r.stdout) as unknown[]).length).toBe(TOTAL);
      }
      const repair = await asNobody(['cache', 'verify', '--repair']);
      expectClean(['cache', 'verify', '--repair'], repair, [1]);
      expect(repair.stderr).toMatch(/the store at \S+ is read-only \(permission denied\)/);
    } finally {
      execFileSync('chmod', ['-R', 'u+w', join(dir, 'cache')]);
    }
  });

  it('commands that fail on bad arguments create no store; a missing store is "no store at DIR", exit 2', async () => {
    const dir = workdir({ 'toy.trend': TOY });
    const bad: string[][] = [
      ['run', 'missing.trend', '--cache', 'X1'],
      ['run', 'toy.trend', '--backend', 'tpu', '--cache', 'X2'],
      ['run', 'toy.trend', '--jobs', '0', '--cache', 'X3'],
      ['cache', 'gc', '--keep-runs', 'all', '--cache', 'X4'],
    ];
    for (const args of bad) {
      const r = await cli(args, { cwd: dir, env: fake() });
      expectClean(args, r, [2]);
    }
    for (const sub of [['verify'], ['verify', '--repair'], ['ls'], ['stats'], ['gc'], ['show', 'abcd']]) {
      const args = ['cache', ...sub, '--cache', 'typo'];
      const r = await cli(args, { cwd: dir });
      expectClean(args, r, [2]);
      expect(r.stderr).toMatch(new RegExp(`no store at ${join(dir, 'typo').replace(/[/.]/g, '\\$&')}`));
    }
    expect(readdirSync(dir).sort()).toEqual(['toy.trend']);
    // Reading commands on a missing store create nothing either.
    expect((await cli(['runs', '--cache', 'R'], { cwd: dir })).stdout).toMatch(/no runs yet/);
    expect(existsSync(join(dir, 'R'))).toBe(false);
  });

  it('TREND_CACHE naming a file, a path under a file, or /proc/x gives a clear error at once', async () => {
    const dir = workdir({ 'toy.trend': TOY, afile: 'not a store' });
    for (const [cache, msg] of [
      [join(dir, 'afile'), /the cache path \S+afile is not a directory \(from TREND_CACHE\)/],
      [join(dir, 'afile', 'sub'), /the cache path \S+afile\/sub is not a directory/],
    ] as const) {
      for (const args of [
        ['cache', 'ls'],
        ['run', 'toy.trend', '--quiet'],
      ]) {
        const r = await cli(args, { cwd: dir, env: fake({ TREND_CACHE: cache }), timeoutMs: 20_000 });
        expectClean(args, r, [2]);
        expect(r.stderr).toMatch(msg);
      }
    }
    expect(readFileSync(join(dir, 'afile'), 'utf8')).toBe('not a store');
    const ls = await cli(['cache', 'ls'], { cwd: dir, env: { TREND_CACHE: '/proc/x' }, timeoutMs: 20_000 });
    expectClean(['cache', 'ls'], ls, [2]);
    expect(ls.stderr).toMatch(/no store at \/proc\/x/);
    const run = await cli(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake({ TREND_CACHE: '/proc/x' }), timeoutMs: 20_000 });
    expectClean(['run'], run, [1, 2]);
    expect(run.stderr).toMatch(/cannot create the store at \/proc\/x/);
  });

  it('an output folder that cannot be made is an error with its path, not a hang (Node loops on /proc paths)', async () => {
    const dir = workdir({ 'toy.trend': TOY });
    expect((await runToy(dir, [])).code).toBe(0);
    for (const args of [
      ['export', 'train/a', '--out', '/proc/x/out'],
      ['report', '--out', '/proc/x/out'],
      ['run', 'toy.trend', '--quiet', '--report-dir', '/proc/x/out'],
    ]) {
      const r = await cli(args, { cwd: dir, env: fake(), timeoutMs: 20_000 });
      expectClean(args, r, [1]);
      expect(r.stderr).toMatch(/cannot create directory '\/proc\/x': no such file or directory/);
    }
  });

  it('a cache directory whose name has an extension works (it is never taken for an LMDB file)', async () => {
    const dir = workdir({ 'toy.trend': TOY });
    const r = await runToy(dir, ['--cache', 'my.cache']);
    expect(r.code, r.what).toBe(0);
    expect((await cli(['cache', 'verify', '--cache', 'my.cache'], { cwd: dir })).code).toBe(0);
    rmSync(join(dir, 'my.cache'), { recursive: true });
    mkdirSync(join(dir, 'empty'));
    // An empty directory is not a store yet: inspecting it says so, a run makes it one.
    expect((await cli(['cache', 'ls', '--cache', 'empty'], { cwd: dir })).code).toBe(2);
    expect((await runToy(dir, ['--cache', 'empty'])).code).toBe(0);
  });
});
