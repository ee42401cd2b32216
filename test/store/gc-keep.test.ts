/**
 * What `cache gc` keeps: every node a kept run planned (whatever its status there), the newest
 * complete runs for --keep-runs (partial, failed and interrupted runs after them are kept and do
 * not count), and never a pipeline's newest complete run for --max-size. Each case is one a
 * hostile test found losing work or leaving run records that pointed at deleted nodes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store, type NodeMeta, type RunNode, type RunRecord } from '../../src/store/store.js';
import { trendc, workdir } from '../helpers/cli.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'trend-gc-keep-'));
let clock = Date.parse('2026-12-01T00:00:00.000Z');

function meta(key: string): Omit<NodeMeta, 'bytes' | 'checksum' | 'where'> {
  const t = new Date().toISOString();
  return { key, op: 'op', opVersion: 1, params: {}, inputs: {}, packageVersion: '0', backend: 'cpu', startedAt: t, endedAt: t, ms: 1 };
}

/** A finished run of pipeline `p` with these node keys and statuses (started one second after the last). */
function run(id: string, nodes: Record<string, RunNode['status']>, extra: Partial<RunRecord> = {}): RunRecord {
  clock += 1000;
  const startedAt = new Date(clock).toISOString();
  return {
    id,
    pipeline: 'p',
    textHash: 'x',
    source: '',
    pid: process.pid,
    startedAt,
    endedAt: startedAt,
    status: 'ok',
    packageVersion: '0',
    nodes: Object.entries(nodes).map(([key, status], i) => ({ id: `n${i}`, key, op: 'op', status, params: {}, inputs: {}, info: {}, line: 1 })),
    ...extra,
  };
}

async function storeWith(keys: Record<string, number>, runs: RunRecord[]): Promise<Store> {
  const store = await Store.open(tmp());
  for (const [k, size] of Object.entries(keys)) store.put(meta(k), new Uint8Array(size).fill(k.length));
  for (const r of runs) store.putRun(r);
  return store;
}

const stored = (s: Store, keys: string[]) => keys.filter((k) => s.has(k));

describe('cache gc keeps what kept runs planned', () => {
  it('keeps what an interrupted run computed before it could record it (kill -9: every node pending)', async () => {
    const done = run('r1', { ka: 'ran', kb: 'ran' });
    // A run killed with -9 keeps the record it wrote at its start: status running, all pending.
    const killed = run('r2', { ka: 'pending', kc: 'pending', kd: 'pending' }, { status: 'running', pid: 2 ** 22 + 12345, endedAt: undefined });
    const s = await storeWith({ ka: 10, kb: 10, kc: 10 }, [done, killed]);
    expect(s.runs().map((r) => r.status)).toEqual(['ok', 'interrupted']);
    const g = await s.gc();
    expect(g.nodesRemoved).toBe(0);
    expect(stored(s, ['ka', 'kb', 'kc'])).toEqual(['ka', 'kb', 'kc']);
    await s.close();
  });

  it('--keep-runs counts complete runs; a newer --only, failed or interrupted run is kept besides and keeps its nodes', async () => {
    const old = run('r1', { k0: 'ran', ka: 'ran', kb: 'ran' });
    const full = run('r2', { ka: 'cached', kb: 'ran', kc: 'ran', kd: 'ran' });
    const only = run('r3', { ka: 'cached' }, { only: ['a'] });
    // A --force of kb that failed: kb's earlier artifact (same key) and the skipped kd stay.
    const failed = run('r4', { ka: 'cached', kb: 'failed', kc: 'cached', kd: 'skipped' }, { status: 'failed' });
    const s = await storeWith({ k0: 10, ka: 10, kb: 10, kc: 10, kd: 10 }, [old, full, only, failed]);
    const g = await s.gc({ keepRuns: 1 });
    expect(s.runs().map((r) => r.id)).toEqual(['r2', 'r3', 'r4']);
    expect(g).toMatchObject({ runsRemoved: 1, nodesRemoved: 1 });
    expect(stored(s, ['k0', 'ka', 'kb', 'kc', 'kd'])).toEqual(['ka', 'kb', 'kc', 'kd']);
    await s.close();
  });

  it('--max-size drops older runs with their records, never the newest complete run, and says when the store still does not fit', async () => {
    const r1 = run('r1', { k1: 'ran', kx: 'ran' });
    const r2 = run('r2', { k2: 'ran', kx: 'cached' });
    const r3 = run('r3', { k3: 'ran', kx: 'cached' });
    const s = await storeWith({ k1: 1000, k2: 1000, k3: 1000, kx: 100 }, [r1, r2, r3]);
    const g = await s.gc({ maxSize: 2500 });
    expect(g.runsRemoved).toBe(1);
    expect(g.overSize).toBeUndefined();
    expect(s.runs().map((r) => r.id)).toEqual(['r2', 'r3']);
    // Every kept run's nodes are still there: no run record points at a deleted node.
    for (const r of s.runs())
      expect(
        stored(
          s,
          r.nodes.map((n) => n.key),
        ),
      ).toEqual(r.nodes.map((n) => n.key));
    const tiny = await s.gc({ maxSize: 10 });
    expect(tiny).toMatchObject({ runsRemoved: 1, overSize: true });
    expect(s.runs().map((r) => r.id)).toEqual(['r3']);
    expect(stored(s, ['k3', 'kx'])).toEqual(['k3', 'kx']);
    await s.close();
  });

  it('--keep-runs must be a whole number (an empty value is not 0)', () => {
    const dir = workdir({});
    for (const v of ['', ' ', '1.5', '-1', 'x']) {
      const r = trendc(['cache', 'gc', '--keep-runs', v], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--keep-runs must be a whole number of runs/);
    }
  });
});
