/**
 * A store shared by hosts: owners are pid@host; another host's locks, registrations, temporary
 * files and running runs are judged by their lease (TREND_LEASE_S, small here), never by a pid;
 * a heartbeat keeps what a live process owns fresh; `index: false` never touches data.mdb; the
 * index can live outside the store; bare-pid files of older versions are this host's.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockDir } from '../../src/store/locks.js';
import {
  currentHost,
  formatOwner,
  keptAlive,
  parseOwner,
  parseTempName,
  refreshLeases,
  registrationName,
  self,
  tempName,
  type Owner,
} from '../../src/store/owner.js';
import { Store, StoreError, type NodeMeta, type RunRecord } from '../../src/store/store.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FIXTURE = join(import.meta.dirname, 'fixtures', 'other-host.ts');
const OTHER = 'node-7.cluster';
const LEASE_S = 1;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = (what: string) => mkdtempSync(join(tmpdir(), `trend-hosts-${what}-`));
const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
const other = (pid: number): Owner => ({ host: OTHER, pid });
/** Sets a file's mtime `s` seconds into the past. */
const age = (file: string, s: number) => utimesSync(file, new Date(Date.now() - s * 1000), new Date(Date.now() - s * 1000));
const mtime = (file: string) => statSync(file).mtimeMs;

/** Writes another host's registration (locks/proc-<pid>@<host>), `ageS` seconds old. */
function registerOther(root: string, o: Owner, ageS = 0, content = 'index=none'): string {
  mkdirSync(join(root, 'locks'), { recursive: true });
  const file = join(root, 'locks', registrationName(o));
  writeFileSync(file, content);
  if (ageS) age(file, ageS);
  return file;
}

function meta(key: string): Omit<NodeMeta, 'bytes' | 'checksum' | 'where'> {
  const t = new Date().toISOString();
  return { key, op: 'op', opVersion: 1, params: {}, inputs: {}, packageVersion: '0', backend: 'cpu', startedAt: t, endedAt: t, ms: 1 };
}

function runRecord(id: string, keys: string[], extra: Partial<RunRecord> = {}): RunRecord {
  const nodes = keys.map((key, i) => ({ id: `n${i}`, key, op: 'op', status: 'pending' as const, params: {}, inputs: {}, info: {}, line: 1 }));
  return {
    id,
    pipeline: 'p',
    textHash: 'x',
    source: '',
    pid: process.pid,
    startedAt: new Date().toISOString(),
    status: 'running',
    packageVersion: '0',
    nodes,
    ...extra,
  };
}

/** Starts the fixture as a process of host OTHER; resolves once it says `ready`. */
async function otherHostProcess(args: string[]): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], {
    cwd: ROOT,
    env: { ...process.env, TREND_HOST_ID: OTHER, TREND_LEASE_S: String(LEASE_S) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise<void>((res, rej) => {
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) res();
    });
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => rej(new Error(`the other-host process exited (${code}): ${out}`)));
  });
  return p;
}

const children: ChildProcess[] = [];
beforeEach(() => {
  vi.stubEnv('TREND_LEASE_S', String(LEASE_S));
  vi.stubEnv('TREND_HOST_ID', 'this-host');
  vi.stubEnv('TREND_INDEX_DIR', '');
});
afterEach(() => {
  vi.unstubAllEnvs();
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

describe('owners in text', () => {
  it('TREND_LEASE_S must be a positive number of seconds', async () => {
    vi.stubEnv('TREND_LEASE_S', 'soon');
    await expect(Store.open(tmp('lease'))).rejects.toThrow(/TREND_LEASE_S must be a positive number of seconds, not 'soon'/);
  });

  it('round-trips pid@host with any host name, in file-name-safe text; a bare pid is this host', () => {
    for (const host of ['node-7.cluster', 'a_b c/d@e%f', 'ünï', 'x']) {
      const text = formatOwner({ host, pid: 42 });
      expect(text).toMatch(/^42@[A-Za-z0-9.%-]+$/);
      expect(parseOwner(text)).toEqual({ host, pid: 42 });
      expect(parseTempName(`${text}+root-ab.0`)).toEqual({ owner: { host, pid: 42 }, rest: 'root-ab.0' });
    }
    expect(parseOwner('123')).toEqual({ host: 'this-host', pid: 123 });
    expect(parseTempName('123-a1b2')).toEqual({ owner: { host: 'this-host', pid: 123 }, rest: 'a1b2' });
    expect(parseTempName(tempName('x-y'))).toEqual({ owner: self(), rest: 'x-y' });
    for (const bad of ['', 'abc', '0', '12@', '12@a@b', '12@%zz', '-3']) expect(parseOwner(bad), bad).toBeUndefined();
  });
});

describe('a lock held by another host', () => {
  it('is judged by its lease, not by the pid: a pid dead here holds while the lease is fresh', () => {
    const locks = new LockDir(tmp('lock'));
    const file = join(locks.dir, 'k');
    writeFileSync(file, formatOwner(other(deadPid())));
    expect(locks.tryAcquire('k')).toBe(false);
    expect(locks.cleanStale()).toBe(0);
    age(file, 3 * LEASE_S);
    expect(locks.tryAcquire('k')).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(formatOwner(self()));
    locks.release('k');
    expect(existsSync(file)).toBe(false);
  });

  it('whose pid happens to be alive here is taken over once its lease has run out', () => {
    const locks = new LockDir(tmp('lock'));
    for (const pid of [process.pid, process.ppid]) {
      const file = join(locks.dir, `k${pid}`);
      writeFileSync(file, formatOwner(other(pid)));
      age(file, 3 * LEASE_S);
      expect(locks.tryAcquire(`k${pid}`)).toBe(true);
      locks.release(`k${pid}`);
    }
  });

  it('expires by the clock: held within the lease, taken after it', async () => {
    const locks = new LockDir(tmp('lock'));
    writeFileSync(join(locks.dir, 'k'), formatOwner(other(process.ppid)));
    expect(locks.tryAcquire('k')).toBe(false);
    await sleep(LEASE_S * 1000 + 300);
    expect(locks.tryAcquire('k')).toBe(true);
  });

  it("cleanStale removes another host's expired lock and half-made files, and keeps fresh ones", () => {
    const locks = new LockDir(tmp('lock'));
    const o = other(process.pid);
    for (const f of ['old', 'fresh', `x.new-${formatOwner(o)}`, `y.stale-${formatOwner(o)}`, `z.new-${formatOwner(o)}`])
      writeFileSync(join(locks.dir, f), formatOwner(o));
    for (const f of ['old', `x.new-${formatOwner(o)}`, `y.stale-${formatOwner(o)}`]) age(join(locks.dir, f), 3 * LEASE_S);
    expect(locks.cleanStale()).toBe(3);
    expect(existsSync(join(locks.dir, 'fresh'))).toBe(true);
    expect(existsSync(join(locks.dir, `z.new-${formatOwner(o)}`))).toBe(true);
    expect(existsSync(join(locks.dir, 'old'))).toBe(false);
  });

  it('a heartbeat keeps a long-held lock alive past the lease; once its holder dies it expires', async () => {
    const root = tmp('beat');
    const child = await otherHostProcess(['lock', root, 'k']);
    children.push(child);
    const locks = new LockDir(root);
    expect(parseOwner(readFileSync(join(locks.dir, 'k'), 'utf8'))).toEqual(other(child.pid!));
    await sleep(2.5 * LEASE_S * 1000);
    expect(locks.tryAcquire('k')).toBe(false);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Dead here, but a pid of another host means nothing: the lease it refreshed still holds.
    expect(locks.tryAcquire('k')).toBe(false);
    await sleep(LEASE_S * 1000 + 300);
    expect(locks.tryAcquire('k')).toBe(true);
  });

  it('refreshes only what this process holds: not a lock taken over, nor one released', () => {
    const locks = new LockDir(tmp('beat'));
    const file = join(locks.dir, 'k');
    expect(locks.tryAcquire('k')).toBe(true);
    expect(keptAlive()).toContain(file);
    age(file, 10);
    refreshLeases();
    expect(Date.now() - mtime(file)).toBeLessThan(2000);
    writeFileSync(file, formatOwner(other(1)));
    age(file, 10);
    refreshLeases();
    expect(Date.now() - mtime(file)).toBeGreaterThan(9000);
    expect(keptAlive()).not.toContain(file);
    expect(locks.tryAcquire('j')).toBe(true);
    locks.release('j');
    expect(keptAlive()).not.toContain(join(locks.dir, 'j'));
  });
});

describe('runs and gc across hosts', () => {
  it("a 'running' run of another host reads running while its registration is fresh, interrupted after", async () => {
    const root = tmp('runs');
    const store = await Store.open(root);
    const o = other(process.pid); // alive here by accident: must not count
    store.putRun(runRecord('r1', [], { pid: o.pid, host: OTHER }));
    const reg = registerOther(root, o);
    expect(store.runs().map((r) => r.status)).toEqual(['running']);
    age(reg, 3 * LEASE_S);
    expect(store.runs().map((r) => r.status)).toEqual(['interrupted']);
    unlinkSync(reg);
    expect(store.runs().map((r) => r.status)).toEqual(['interrupted']);
    // Registered, but another pid of that host: not this run's driver.
    registerOther(root, other(deadPid()));
    expect(store.runs().map((r) => r.status)).toEqual(['interrupted']);
    await store.close();
  });

  it('putRun records the host; a record without one (older versions) is judged by its pid here', async () => {
    const root = tmp('runs');
    const store = await Store.open(root);
    store.putRun(runRecord('r1', []));
    expect(store.getRun('r1')?.host).toBe(currentHost());
    writeFileSync(join(root, 'runs', 'r2.json'), JSON.stringify(runRecord('r2', [], { pid: deadPid() })));
    writeFileSync(join(root, 'runs', 'r3.json'), JSON.stringify(runRecord('r3', [], { pid: process.ppid })));
    expect(store.runs().map((r) => [r.id, r.status])).toEqual([
      ['r1', 'running'],
      ['r2', 'interrupted'],
      ['r3', 'running'],
    ]);
    await store.close();
  });

  it("gc keeps the nodes of another host's live run, and collects them once its lease has run out", async () => {
    const root = tmp('gc');
    const store = await Store.open(root);
    store.put(meta('aaaa'), new Uint8Array([1, 2, 3]));
    store.put(meta('bbbb'), new Uint8Array([4, 5, 6]));
    const o = other(deadPid());
    store.putRun(runRecord('r1', ['aaaa'], { pid: o.pid, host: OTHER }));
    const reg = registerOther(root, o);
    const first = await store.gc({ keepRuns: 0 });
    expect(first).toMatchObject({ runsRemoved: 0, nodesRemoved: 1 });
    expect(store.has('aaaa')).toBe(true);
    expect(store.has('bbbb')).toBe(false);
    age(reg, 3 * LEASE_S);
    const second = await store.gc({ keepRuns: 0 });
    expect(second).toMatchObject({ runsRemoved: 1, nodesRemoved: 1 });
    expect(store.has('aaaa')).toBe(false);
    expect(existsSync(reg)).toBe(false); // an expired registration is cleaned up
    await store.close();
  });

  it('a real driver on another host: its heartbeat keeps the run and its nodes; after it dies, gc collects', async () => {
    const root = tmp('driver');
    const store = await Store.open(root);
    store.put(meta('aaaa'), new Uint8Array([1]));
    children.push(await otherHostProcess(['run', root, tmp('index'), 'r1', 'aaaa']));
    await sleep(2.5 * LEASE_S * 1000);
    expect(store.runs().map((r) => [r.host, r.status])).toEqual([[OTHER, 'running']]);
    expect((await store.gc({ keepRuns: 0 })).nodesRemoved).toBe(0);
    children[0]!.kill('SIGKILL');
    await new Promise((r) => children[0]!.once('exit', r));
    await sleep(LEASE_S * 1000 + 300);
    expect(store.runs().map((r) => r.status)).toEqual(['interrupted']);
    expect(await store.gc({ keepRuns: 0 })).toMatchObject({ runsRemoved: 1, nodesRemoved: 1 });
    await store.close();
  });

  it("a payload being written by another host (temporary root) survives gc while that writer's lease holds", async () => {
    const root = tmp('roots');
    const store = await Store.open(root);
    store.put(meta('aaaa'), new Uint8Array([9]));
    const addr = store.meta('aaaa')!.checksum;
    store.deleteNode('aaaa'); // an object with no record yet, as during another host's put
    const o = other(deadPid());
    const tmpRoot = join(root, 'tmp', `${formatOwner(o)}+root-${addr}.0`);
    writeFileSync(tmpRoot, '');
    age(tmpRoot, 3 * LEASE_S);
    const reg = registerOther(root, o);
    expect((await store.gc()).objectsRemoved).toBe(0);
    expect(store.objects.has(addr)).toBe(true);
    age(reg, 3 * LEASE_S);
    expect((await store.gc()).objectsRemoved).toBe(1);
    expect(existsSync(tmpRoot)).toBe(false);
    await store.close();
  });

  it("another host's temporary files are removed only once neither they nor its registration are fresh", async () => {
    const root = tmp('temp');
    (await Store.open(root)).put(meta('aaaa'), new Uint8Array([1]));
    const [a, b, c] = [other(deadPid()), other(process.pid), other(process.ppid)];
    const names = {
      fresh: `${formatOwner(a)}+f1`,
      registered: `${formatOwner(b)}+f2`,
      gone: `${formatOwner(c)}+f3`,
      legacyDead: `${deadPid()}-f4`,
      legacyLive: `${process.ppid}-f5`,
    };
    for (const n of Object.values(names)) writeFileSync(join(root, 'tmp', n), 'x');
    for (const n of [names.registered, names.gone]) age(join(root, 'tmp', n), 3 * LEASE_S);
    registerOther(root, b);
    registerOther(root, c, 3 * LEASE_S);
    await (await Store.open(root)).close(); // opening a writable store cleans tmp/
    const left = ['fresh', 'registered', 'gone', 'legacyDead', 'legacyLive'].filter((k) => existsSync(join(root, 'tmp', names[k as keyof typeof names])));
    expect(left).toEqual(['fresh', 'registered', 'legacyLive']);
  });
});

describe('the gc and maintenance locks held by another host', () => {
  it('an opening process waits for maintenance on another host until its lease runs out (not its pid)', async () => {
    const root = tmp('maint');
    await (await Store.open(root)).put(meta('aaaa'), new Uint8Array([1]));
    writeFileSync(join(root, 'locks', 'maintenance'), formatOwner(other(deadPid())));
    const t0 = Date.now();
    const store = await Store.open(root);
    expect(Date.now() - t0).toBeGreaterThan(LEASE_S * 1000 * 0.7);
    expect(store.has('aaaa')).toBe(true);
    await store.close();
  });

  it("gc refuses while another host's gc holds its lease, and goes on after", async () => {
    const root = tmp('gclock');
    const store = await Store.open(root);
    store.put(meta('aaaa'), new Uint8Array([1]));
    const file = join(root, 'locks', 'gc');
    writeFileSync(file, formatOwner(other(process.pid)));
    await expect(store.gc()).rejects.toThrow(new StoreError(`another 'trendc cache gc' is running on ${root} (pid ${process.pid} on ${OTHER})`));
    age(file, 3 * LEASE_S);
    expect((await store.gc()).nodesRemoved).toBe(1);
    await store.close();
  });
});

describe('index: false', () => {
  const variants: Array<[string, (file: string) => void]> = [
    ['garbage', (file) => writeFileSync(file, Buffer.alloc(65536, 0xa5))],
    [
      'a directory',
      (file) => {
        rmSync(file);
        mkdirSync(file);
        writeFileSync(join(file, 'inside'), 'x');
      },
    ],
  ];
  for (const [what, damage] of variants) {
    it(`with data.mdb ${what}: stores and reads nodes and runs, warns of nothing, leaves data.mdb and lock.mdb alone`, async () => {
      const root = tmp('noindex');
      const first = await Store.open(root);
      first.put(meta('aaaa'), new Uint8Array([1, 2]));
      await first.close();
      const file = join(root, 'data.mdb');
      damage(file);
      rmSync(join(root, 'lock.mdb'), { force: true });
      const before = { st: statSync(file), bytes: statSync(file).isFile() ? readFileSync(file) : undefined };
      const warnings: string[] = [];
      const store = await Store.open(root, { index: false, onWarning: (m) => warnings.push(m) });
      expect([...store.read('aaaa')!]).toEqual([1, 2]);
      store.put(meta('bbbb'), new Uint8Array([3]));
      store.putRun(runRecord('r1', ['aaaa', 'bbbb']));
      expect(store.meta('bbbb')?.bytes).toBe(1);
      expect(store.runs().map((r) => r.id)).toEqual(['r1']);
      expect(store.indexStatus.status).toBe('off');
      const v = await store.verify(true);
      expect(v).toMatchObject({ broken: [], brokenRuns: [], index: { status: 'off', rebuilt: false } });
      expect((await store.gc()).compacted).toBe(false);
      await store.close();
      expect(warnings).toEqual([]);
      expect(existsSync(join(root, 'lock.mdb'))).toBe(false);
      const after = statSync(file);
      expect([after.mtimeMs, after.ino, after.size]).toEqual([before.st.mtimeMs, before.st.ino, before.st.size]);
      if (before.bytes) expect(readFileSync(file).equals(before.bytes)).toBe(true);
      // The control: a process with an index does notice the damage.
      const seen: string[] = [];
      await (await Store.open(root, { onWarning: (m) => seen.push(m) })).close();
      expect(seen.join('\n')).toMatch(/index/);
    });
  }

  it('a store of the older format (records inside data.mdb) is refused, not upgraded', async () => {
    const root = tmp('noindex');
    const first = await Store.open(root);
    first.put(meta('aaaa'), new Uint8Array([1]));
    await first.close();
    unlinkSync(join(root, 'FORMAT'));
    const bytes = readFileSync(join(root, 'data.mdb'));
    await expect(Store.open(root, { index: false })).rejects.toThrow(/older format .*open it once with its index/);
    expect(readFileSync(join(root, 'data.mdb')).equals(bytes)).toBe(true);
    expect(existsSync(join(root, 'locks', registrationName(self())))).toBe(false); // a failed open unregisters
  });

  it("does not count as a user of another process's index (a rebuild goes ahead)", async () => {
    const root = tmp('noindex');
    const worker = await Store.open(root, { index: false });
    worker.put(meta('aaaa'), new Uint8Array([1]));
    registerOther(root, other(deadPid()), 0, 'index=none');
    registerOther(root, other(process.ppid), 0, 'index=/local/index');
    const driver = await Store.open(root);
    expect(driver.otherUsers().length).toBeGreaterThanOrEqual(2);
    expect(driver.otherUsers('index')).toEqual([]);
    expect((await driver.gc()).compacted).toBe(true);
    await driver.close();
    await worker.close();
  });
});

describe('the index outside the store', () => {
  it('indexDir and TREND_INDEX_DIR put data.mdb there and nothing in the store', async () => {
    for (const how of ['option', 'env'] as const) {
      const root = tmp('store');
      const indexDir = join(tmp('index'), 'idx');
      if (how === 'env') vi.stubEnv('TREND_INDEX_DIR', indexDir);
      const opts = how === 'option' ? { indexDir } : {};
      const store = await Store.open(root, opts);
      store.put(meta('aaaa'), new Uint8Array([1]));
      await store.close();
      expect(existsSync(join(indexDir, 'data.mdb')), how).toBe(true);
      expect(existsSync(join(root, 'data.mdb')), how).toBe(false);
      const again = await Store.open(root, opts);
      expect(again.indexStatus.status).toBe('ok');
      expect(again.meta('aaaa')?.key).toBe('aaaa');
      unlinkSync(join(indexDir, 'data.mdb'));
      await again.close();
      const fix = await Store.open(root, opts);
      expect((await fix.verify(true)).index.rebuilt).toBe(true);
      expect(existsSync(join(indexDir, 'data.mdb'))).toBe(true);
      expect(existsSync(join(root, 'data.mdb'))).toBe(false);
      await fix.close();
    }
  });

  it("an index directory of another store is not used (with a warning); nor the store's own while another host uses it", async () => {
    const indexDir = tmp('index');
    await (await Store.open(tmp('store'), { indexDir })).put(meta('aaaa'), new Uint8Array([1]));
    const warnings: string[] = [];
    const second = await Store.open(tmp('store'), { indexDir, onWarning: (m) => warnings.push(m) });
    second.put(meta('bbbb'), new Uint8Array([2]));
    expect(second.meta('bbbb')?.key).toBe('bbbb');
    expect(second.indexStatus.status).toBe('unavailable');
    expect(warnings.join('\n')).toMatch(/belongs to the store at/);
    await second.close();

    const shared = tmp('shared');
    await (await Store.open(shared)).put(meta('aaaa'), new Uint8Array([1]));
    const reg = registerOther(shared, other(deadPid()), 0, 'index=store');
    const seen: string[] = [];
    const here = await Store.open(shared, { onWarning: (m) => seen.push(m) });
    expect(here.indexStatus.status).toBe('unavailable');
    expect(seen.join('\n')).toMatch(/LMDB must not be shared by hosts/);
    await here.close();
    age(reg, 3 * LEASE_S);
    const later = await Store.open(shared);
    expect(later.indexStatus.status).toBe('ok');
    await later.close();
  });
});

describe('files written before hosts (bare pids)', () => {
  it("a bare-pid lock is this host's: held while the pid lives, taken over when it is dead", () => {
    const locks = new LockDir(tmp('legacy'));
    writeFileSync(join(locks.dir, 'live'), String(process.ppid));
    writeFileSync(join(locks.dir, 'dead'), String(deadPid()));
    age(join(locks.dir, 'live'), 1000); // an old file: the pid decides here, not a lease
    expect(locks.tryAcquire('live')).toBe(false);
    expect(locks.owner('live')).toBe(process.ppid);
    expect(locks.tryAcquire('dead')).toBe(true);
  });

  it('bare-pid registrations: a live one is a user (a rebuild waits), a dead one is cleaned up', async () => {
    const root = tmp('legacy');
    const store = await Store.open(root);
    store.put(meta('aaaa'), new Uint8Array([1]));
    const dead = deadPid();
    writeFileSync(join(root, 'locks', `proc-${process.ppid}`), '');
    writeFileSync(join(root, 'locks', `proc-${dead}`), '');
    age(join(root, 'locks', `proc-${process.ppid}`), 1000);
    expect(store.otherUsers()).toEqual([{ host: 'this-host', pid: process.ppid }]);
    expect(store.otherUsers('index')).toEqual([{ host: 'this-host', pid: process.ppid }]);
    const v = await store.verify(true);
    expect(v.staleLocks).toBe(1);
    expect(existsSync(join(root, 'locks', `proc-${dead}`))).toBe(false);
    expect((await store.gc()).compacted).toBe(false);
    unlinkSync(join(root, 'locks', `proc-${process.ppid}`));
    expect((await store.gc()).compacted).toBe(true);
    await store.close();
  });
});
