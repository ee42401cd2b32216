/**
 * What the LMDB index holds: node records and memo, never run records (they grow with every run,
 * and every process checks the whole index before mapping it). And `has`, which remembers a
 * stored key by its record file's identity, still notices a record removed or replaced.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initHash } from '../../src/compiler/hash.js';
import { checkIndex, Index } from '../../src/store/index-db.js';
import { Store, type NodeMeta } from '../../src/store/store.js';
import { FAKE_OPS, TOY, trendc, workdir } from '../helpers/cli.js';

beforeAll(initHash);
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

function entries(cache: string): Record<string, number> {
  const c = checkIndex(cache);
  if (!c.ok) throw new Error(c.reason);
  return c.entries;
}

describe('the index holds node records, not run records', () => {
  it('after three runs: every node indexed, no run; the runs are listed from their files', () => {
    const dir = workdir({ 'toy.trend': TOY });
    for (let i = 0; i < 3; i++) expect(trendc(['run', 'toy.trend', '--quiet', '--no-report'], { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS } }).code).toBe(0);
    expect(entries(join(dir, 'cache'))).toMatchObject({ nodes: 22, runs: 0 });
    const runs = JSON.parse(trendc(['runs', '--json'], { cwd: dir }).stdout) as Array<{ status: string }>;
    expect(runs.map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
  });

  it('run entries an older version indexed are cleared at the next writable open', async () => {
    const dir = workdir({ 'toy.trend': TOY });
    expect(trendc(['run', 'toy.trend', '--quiet', '--no-report'], { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS } }).code).toBe(0);
    const cache = join(dir, 'cache');
    const old = Index.open(cache, false);
    for (let i = 0; i < 5; i++) old.put('runs', `20260101T000000Z-00000${i}`, { st: '1:2:3', v: { id: `r${i}`, nodes: Array(200).fill({ id: 'x' }) } });
    expect(old.failed).toBeUndefined();
    await old.close();
    // lmdb-js finishes writing the file shortly after close resolves.
    for (let t = 0; t < 100 && entries(cache).runs !== 5; t++) await new Promise((r) => setTimeout(r, 20));
    expect(entries(cache).runs).toBe(5);
    const ls = trendc(['runs'], { cwd: dir });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stderr).toBe('');
    expect(entries(cache)).toMatchObject({ nodes: 22, runs: 0 });
    expect(trendc(['cache', 'verify'], { cwd: dir }).stdout).toMatch(/^index: ok$/m);
  });

  it('a read-only open keeps old run entries and verify counts them stale; a writable open clears them', async () => {
    const root = join(mkdtempSync(join(tmpdir(), 'trend-ro-runs-')), 'cache');
    const first = await Store.open(root);
    first.putRun({ id: 'r1', pipeline: 'p', textHash: 'x', source: '', pid: process.pid, startedAt: '', status: 'ok', packageVersion: 't', nodes: [] });
    await first.close();
    const old = Index.open(root, false);
    for (let i = 0; i < 3; i++) old.put('runs', `old${i}`, { st: '1:2:3', v: { id: `old${i}` } });
    await old.close();
    for (let t = 0; t < 100 && entries(root).runs !== 3; t++) await new Promise((r) => setTimeout(r, 20));
    expect(entries(root).runs).toBe(3);
    const ro = await Store.open(root, { readOnly: true });
    stores.push(ro);
    const v = await ro.verify(false);
    expect([v.index.status, v.index.stale]).toEqual(['ok', 3]);
    // Runs come from their files, never from the old entries.
    expect(ro.runs().map((r) => r.id)).toEqual(['r1']);
    expect(ro.getRun('old0')).toBeUndefined();
    expect(entries(root).runs).toBe(3);
    const rw = await Store.open(root);
    stores.push(rw);
    expect((await rw.verify(false)).index.stale).toBe(0);
    expect(entries(root).runs).toBe(0);
  });
});

describe('Store.has', () => {
  it('notices a record removed, replaced by another key, or put back', async () => {
    const root = join(mkdtempSync(join(tmpdir(), 'trend-has-')), 'cache');
    const store = await Store.open(root);
    stores.push(store);
    const meta = (key: string): Omit<NodeMeta, 'bytes' | 'checksum' | 'where'> => ({
      key,
      op: 'train',
      opVersion: 1,
      params: {},
      inputs: {},
      packageVersion: 't',
      backend: 'cpu',
      startedAt: '',
      endedAt: '',
      ms: 0,
    });
    const a = 'a'.repeat(32);
    const b = 'b'.repeat(32);
    store.put(meta(a), new Uint8Array([1]));
    store.put(meta(b), new Uint8Array([2]));
    expect([store.has(a), store.has(a)]).toEqual([true, true]);
    const fileA = join(root, 'nodes', 'aa', `${a}.json`);
    const textA = readFileSync(fileA, 'utf8');
    rmSync(fileA);
    expect(store.has(a)).toBe(false);
    // Another key's record in a's place (a new file): not a's record.
    writeFileSync(`${fileA}.tmp`, readFileSync(join(root, 'nodes', 'bb', `${b}.json`)));
    renameSync(`${fileA}.tmp`, fileA);
    expect(store.has(a)).toBe(false);
    writeFileSync(`${fileA}.tmp`, textA);
    renameSync(`${fileA}.tmp`, fileA);
    expect(store.has(a)).toBe(true);
    store.deleteNode(a);
    expect(store.has(a)).toBe(false);
    expect(store.has(b)).toBe(true);
  });
});

describe('records too large to index', () => {
  it('are read from their files, never through a view of the whole memory map', async () => {
    const root = join(mkdtempSync(join(tmpdir(), 'trend-large-')), 'cache');
    const store = await Store.open(root);
    stores.push(store);
    const meta = (key: string, inputs: Record<string, string[]>): Omit<NodeMeta, 'bytes' | 'checksum' | 'where'> => ({
      key,
      op: 'matrix',
      opVersion: 1,
      params: {},
      inputs,
      packageVersion: 't',
      backend: 'cpu',
      startedAt: '',
      endedAt: '',
      ms: 0,
    });
    const small = 'c'.repeat(32);
    const large = 'd'.repeat(32);
    // A matrix node's record with 2,000 inputs: about 70 KB, as a large transfer matrix has.
    const many = Array.from({ length: 2000 }, (_, i) => i.toString(16).padStart(32, '0'));
    store.put(meta(small, { cells: many.slice(0, 3) }), new Uint8Array([1]));
    store.put(meta(large, { cells: many }), new Uint8Array([2]));
    expect(readFileSync(join(root, 'nodes', 'dd', `${large}.json`)).length).toBeGreaterThan(64_000);
    expect(entries(root)).toMatchObject({ nodes: 1 });

    await store.close();

    // lmdb-js returns a value over 16 KiB as a view of the whole map (4 GiB of external memory,
    // which makes V8 collect everything); the record comes from its file instead.
    const reader = await Store.open(root);
    stores.push(reader);
    expect([reader.has(small), reader.has(large)]).toEqual([true, true]);
    expect(reader.meta(large)?.inputs).toEqual({ cells: many });
    expect(process.memoryUsage().external).toBeLessThan(1e9);
    expect(entries(root)).toMatchObject({ nodes: 1 });

    // Not a stale index: verify neither counts it nor rebuilds for it; a rebuild leaves it out too.
    expect((await reader.verify(false)).index).toMatchObject({ status: 'ok', stale: 0 });
    await reader.close();
    rmSync(join(root, 'data.mdb'));
    const again = await Store.open(root);
    stores.push(again);
    expect((await again.verify(true)).index).toMatchObject({ rebuilt: true });
    expect(entries(root)).toMatchObject({ nodes: 1 });
    expect(again.has(large)).toBe(true);
  });
});
