/**
 * "Newest run" means the run that started last: run ids sort by start time within a process,
 * `Store.runs()` orders by start time whatever the ids say, and `cache gc --keep-runs` keeps the
 * runs that started last. Ids made before 2026-12 carried whole seconds and a random suffix, so
 * two runs started in one second sorted at random: gc then kept the older run and deleted the
 * newer run's nodes (seen in CI: a rerun after `gc --keep-runs 1` recomputed 22 nodes).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newRunStart } from '../../src/runtime/executor/records.js';
import { Store, type NodeMeta, type RunRecord } from '../../src/store/store.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'trend-run-order-'));

function meta(key: string): Omit<NodeMeta, 'bytes' | 'checksum' | 'where'> {
  const t = new Date().toISOString();
  return { key, op: 'op', opVersion: 1, params: {}, inputs: {}, packageVersion: '0', backend: 'cpu', startedAt: t, endedAt: t, ms: 1 };
}

function finishedRun(id: string, startedAt: string, keys: string[]): RunRecord {
  const nodes = keys.map((key, i) => ({ id: `n${i}`, key, op: 'op', status: 'ran' as const, params: {}, inputs: {}, info: {}, line: 1 }));
  return { id, pipeline: 'p', textHash: 'x', source: '', pid: process.pid, startedAt, endedAt: startedAt, status: 'ok', packageVersion: '0', nodes };
}

describe('the order of runs', () => {
  it('run ids made one after another sort as they were made, even within one millisecond', () => {
    const made = Array.from({ length: 200 }, () => newRunStart());
    expect([...made].map((r) => r.id).sort()).toEqual(made.map((r) => r.id));
    expect(new Set(made.map((r) => r.startedAt)).size).toBe(made.length);
    for (const r of made) {
      // the id starts with its start time, to the millisecond
      expect(r.id.slice(0, 19)).toBe(r.startedAt.replace(/[-:.]/g, '').slice(0, 19));
      expect(r.id).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{6}$/);
    }
    // an instant earlier than the last one still gives a later id
    const a = newRunStart(Date.parse('2020-01-01T00:00:00.000Z'));
    expect(a.id > made.at(-1)!.id).toBe(true);
  });

  it('Store.runs() orders by start time, not by id, and gc --keep-runs 1 keeps the run that started last', async () => {
    const store = await Store.open(tmp());
    const second = '2026-11-30T23:59:59';
    // Two runs started in one second, with older-style ids whose random suffixes sort the
    // newer run first.
    const older = finishedRun('20261130T235959Z-ffffff', `${second}.100Z`, ['k-old', 'k-both']);
    const newer = finishedRun('20261130T235959Z-000000', `${second}.900Z`, ['k-new', 'k-both']);
    for (const k of ['k-old', 'k-new', 'k-both']) store.put(meta(k), new TextEncoder().encode(k));
    store.putRun(older);
    store.putRun(newer);
    expect(store.runs().map((r) => r.id)).toEqual([older.id, newer.id]);
    const g = await store.gc({ keepRuns: 1 });
    expect(g.runsRemoved).toBe(1);
    expect(store.runs().map((r) => r.id)).toEqual([newer.id]);
    expect(store.meta('k-new')).toBeDefined();
    expect(store.meta('k-both')).toBeDefined();
    expect(store.meta('k-old')).toBeUndefined();
    await store.close();
  });

  it('a run record of another shape is left out of runs() (verify reports it)', async () => {
    const root = tmp();
    const store = await Store.open(root);
    store.putRun(finishedRun('20261201T000000000Z-aaaaaa', '2026-12-01T00:00:00.000Z', []));
    const bad = { ...finishedRun('20261201T000001000Z-bbbbbb', '2026-12-01T00:00:01.000Z', []) } as Partial<RunRecord>;
    delete bad.nodes;
    writeFileSync(join(root, 'runs', `${bad.id}.json`), JSON.stringify(bad));
    expect(store.runs().map((r) => r.id)).toEqual(['20261201T000000000Z-aaaaaa']);
    expect((await store.verify()).brokenRuns.map((b) => b.id)).toEqual([bad.id]);
    await store.close();
  });
});
