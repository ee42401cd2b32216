import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAKE_OPS, summaryCounts, TOY, trendc, trendcAsync, workdir } from '../helpers/cli.js';

const fake = (extra: Record<string, string> = {}) => ({ TREND_OPS_MODULE: FAKE_OPS, ...extra });
const TOTAL = 1 + 3 + 4 + 3 + 9 + 1 + 1; // dataset, train, predict (3 + ensemble), adv, transfer, matrix, select

/** Payload files, largest first (the first is the dataset's, which no other node shares). */
function objectFiles(cache: string): string[] {
  const dir = join(cache, 'objects');
  return readdirSync(dir)
    .flatMap((d) => readdirSync(join(dir, d)).map((f) => join(dir, d, f)))
    .sort((a, b) => statSync(b).size - statSync(a).size);
}

describe('executor with a fake operation set', () => {
  it('runs everything once, then finds everything cached', () => {
    const dir = workdir({ 'toy.trend': TOY });
    const first = trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake() });
    expect(first.code).toBe(0);
    expect(summaryCounts(first.stdout)).toEqual({ ran: TOTAL, cached: 0, failed: 0, skipped: 0 });
    const second = trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake() });
    expect(second.code).toBe(0);
    expect(summaryCounts(second.stdout)).toEqual({ ran: 0, cached: TOTAL, failed: 0, skipped: 0 });
    expect(existsSync(join(dir, 'reports', 'toy', 'index.md'))).toBe(true);
  });

  it('a failed step is not cached, names its statement, skips its dependents and lets other branches finish', () => {
    const dir = workdir({ 'toy.trend': TOY });
    const r = trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake({ TREND_FAKE_FAIL: 'train/b' }) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('train/b (toy.trend:5): fake failure in train/b');
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const c = summaryCounts(r.stdout);
    expect(c.failed).toBe(1);
    expect(c.skipped).toBeGreaterThan(0);
    expect(c.ran).toBeGreaterThan(3);
    const show = trendc(['cache', 'show', 'train/b'], { cwd: dir });
    expect(show.code).toBe(2);
    const again = trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake() });
    expect(again.code).toBe(0);
    expect(summaryCounts(again.stdout).ran).toBe(c.failed + c.skipped);
  });

  it('after kill -9 mid-run the store verifies and the next run resumes', async () => {
    const dir = workdir({ 'toy.trend': TOY });
    const log = join(dir, 'exec.log');
    const child = trendcAsync(['run', 'toy.trend', '--json'], { cwd: dir, env: fake({ TREND_FAKE_SLEEP_MS: '150', TREND_FAKE_LOG: log }) });
    let ended = 0;
    await new Promise<void>((resolve) => {
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        for (const line of buf.split('\n').slice(0, -1)) {
          const e = JSON.parse(line) as { type: string; status?: string };
          if (e.type === 'node-end' && e.status === 'ran') ended++;
        }
        buf = buf.slice(buf.lastIndexOf('\n') + 1);
        if (ended >= 4) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.on('exit', r));
    const verify = trendc(['cache', 'verify'], { cwd: dir });
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/0 broken/);
    const before = readFileSync(log, 'utf8').trim().split('\n').length;
    const resume = trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake({ TREND_FAKE_LOG: log }) });
    expect(resume.code).toBe(0);
    const c = summaryCounts(resume.stdout);
    expect(c.cached).toBeGreaterThanOrEqual(4);
    expect(c.ran + c.cached).toBe(TOTAL);
    // Only the node that was cut off runs twice.
    const lines = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[1]);
    const twice = lines.filter((id, i) => lines.indexOf(id) !== i);
    expect(twice.length).toBeLessThanOrEqual(1);
    expect(lines.length).toBe(before + c.ran);
    const runs = trendc(['runs', 'toy.trend'], { cwd: dir });
    expect(runs.stdout).toMatch(/interrupted/);
  });

  it('two processes on the same pipeline both finish and compute each node once', async () => {
    const dir = workdir({ 'toy.trend': TOY, 'toy2.trend': TOY.replace('k=2', 'k=3') });
    const log = join(dir, 'exec.log');
    const env = fake({ TREND_FAKE_SLEEP_MS: '60', TREND_FAKE_LOG: log });
    const p1 = trendcAsync(['run', 'toy.trend', '--quiet'], { cwd: dir, env });
    const p2 = trendcAsync(['run', 'toy2.trend', '--quiet'], { cwd: dir, env });
    const codes = await Promise.all([p1, p2].map((p) => new Promise<number>((r) => p.on('exit', (c) => r(c ?? -1)))));
    expect(codes).toEqual([0, 0]);
    const ids = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[1]!);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(TOTAL + 2); // toy2 adds its own select and ensemble prediction
    expect(trendc(['cache', 'verify'], { cwd: dir }).code).toBe(0);
  });

  it('detects a corrupted or truncated payload, repairs it, and recomputes only it', () => {
    const dir = workdir({ 'toy.trend': TOY });
    expect(trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake() }).code).toBe(0);
    const files = objectFiles(join(dir, 'cache'));
    expect(files.length).toBeGreaterThan(0);
    truncateSync(files[0]!, Math.floor(statSync(files[0]!).size / 2));
    const v = trendc(['cache', 'verify'], { cwd: dir });
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/checksum mismatch/);
    expect(trendc(['cache', 'verify', '--repair'], { cwd: dir }).code).toBe(0);
    expect(trendc(['cache', 'verify'], { cwd: dir }).code).toBe(0);
    const again = trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake() });
    expect(summaryCounts(again.stdout)).toEqual({ ran: 1, cached: TOTAL - 1, failed: 0, skipped: 0 });
  });

  it('a payload corrupted in place is recomputed when a step needs it', () => {
    const dir = workdir({ 'toy.trend': TOY });
    trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake() });
    const f = objectFiles(join(dir, 'cache'))[0]!;
    const bytes = readFileSync(f);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(f, bytes);
    const r = trendc(['run', 'toy.trend', '--force', 'train/a', '--quiet'], { cwd: dir, env: fake() });
    expect(r.code).toBe(0);
    expect(summaryCounts(r.stdout).ran).toBe(2); // the dataset (recomputed on read) and the forced node
    expect(trendc(['cache', 'verify'], { cwd: dir }).code).toBe(0);
  });

  it('the cache is a genuine LMDB (data format 1) environment', () => {
    const dir = workdir({ 'toy.trend': TOY });
    trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: fake() });
    const head = readFileSync(join(dir, 'cache', 'data.mdb')).subarray(0, 32);
    expect(head.readUInt32LE(16)).toBe(0xbeefc0de); // MDB_meta.mm_magic after the page header
    expect(head.readUInt32LE(20)).toBe(1); // mm_version: the format of LMDB 0.9 (Debian's lmdb-utils)
    if (existsSync('/usr/bin/mdb_stat')) {
      const out = execFileSync('/usr/bin/mdb_stat', ['-a', join(dir, 'cache')], { encoding: 'utf8' });
      expect(out).toMatch(/Status of nodes/);
    }
  });
});
