import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { beforeAll, describe, expect, it } from 'vitest';
import { initHash } from '../../src/compiler/hash.js';
import { buildIndex, checkIndex } from '../../src/store/index-db.js';
import { checkMdb, checkMdbSource, fileSource, type MdbCheck, type MdbSource } from '../../src/store/mdb-check.js';
import { FAKE_OPS, ROOT, TOY, trendc, workdir } from '../helpers/cli.js';

/** A store made by a real run: its data.mdb is the index the check must judge. */
let storeDir: string;
beforeAll(async () => {
  await initHash();
  const dir = workdir({ 'toy.trend': TOY });
  expect(trendc(['run', 'toy.trend', '--quiet'], { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS } }).code).toBe(0);
  storeDir = join(dir, 'cache');
});

/** One attempt of the check over a source (patience of one read). */
const checkOnceFrom = (src: () => MdbSource): MdbCheck => checkMdbSource(src, undefined, { attempts: 1, ms: 60_000 });

function damagedCopy(edit: (file: string, bytes: Buffer) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'trend-mdb-'));
  copyFileSync(join(storeDir, 'data.mdb'), join(dir, 'data.mdb'));
  edit(join(dir, 'data.mdb'), readFileSync(join(dir, 'data.mdb')));
  return dir;
}

describe('structural check of data.mdb', () => {
  it('passes a clean index, and deep trees with overflow values after many commits and deletions', async () => {
    const c = checkIndex(storeDir);
    expect(c.ok).toBe(true);
    if (c.ok) expect(c.entries.nodes).toBe(22);

    const dir = mkdtempSync(join(tmpdir(), 'trend-mdb-'));
    const env = open({ path: dir, maxDbs: 8, compression: false, overlappingSync: false, noSubdir: false });
    const a = env.openDB<Buffer, Buffer>({ name: 'a', encoding: 'binary', keyEncoding: 'binary' });
    const b = env.openDB<Buffer, Buffer>({ name: 'b', encoding: 'binary', keyEncoding: 'binary' });
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const keys: Buffer[] = [];
    for (let t = 0; t < 120; t++) {
      env.transactionSync(() => {
        for (let i = 0; i < 25; i++) {
          if (rnd() < 0.3 && keys.length) {
            const k = keys.splice(Math.floor(rnd() * keys.length), 1)[0]!;
            a.removeSync(k);
            b.removeSync(k);
          } else {
            const k = Buffer.from(Math.floor(rnd() * 1e9).toString(16));
            keys.push(k);
            (rnd() < 0.5 ? a : b).putSync(k, Buffer.alloc(rnd() < 0.05 ? Math.floor(rnd() * 20000) : Math.floor(rnd() * 500), 7));
          }
        }
      });
      if (t % 40 === 39) expect(checkMdb(join(dir, 'data.mdb'))).toMatchObject({ ok: true });
    }
    await env.close();
    const deep = checkMdb(join(dir, 'data.mdb'));
    expect(deep.ok).toBe(true);
    if (deep.ok) expect(deep.lastPage).toBeGreaterThan(100);

    const built = mkdtempSync(join(tmpdir(), 'trend-mdb-'));
    await buildIndex(
      join(built, 'ix'),
      Array.from({ length: 400 }, (_, i) => ({ db: 'nodes' as const, key: `k${i}`, e: { st: '1:2:3', v: 'x'.repeat(i * 37) } })),
    );
    expect(checkIndex(join(built, 'ix'))).toMatchObject({ ok: true, entries: { nodes: 400 } });
    rmSync(dir, { recursive: true, force: true });
    rmSync(built, { recursive: true, force: true });
  });

  it('notices a changed page number or first node on every page in use', () => {
    const clean = checkIndex(storeDir);
    if (!clean.ok) throw new Error(clean.reason);
    const ps = clean.pageSize;
    expect(clean.used.length).toBeGreaterThan(5);
    for (const pg of clean.used) {
      for (const which of ['header', 'node'] as const) {
        const dir = damagedCopy((file, bytes) => {
          const p = bytes.subarray(pg * ps, (pg + 1) * ps);
          // A page inside a run of overflow pages has no header: all of it is value bytes.
          const continuation = p.readBigUInt64LE(0) !== BigInt(pg);
          const overflow = (p.readUInt16LE(10) & 0x04) !== 0;
          const off = which === 'header' ? 0 : continuation ? 100 : overflow ? 16 : p.readUInt16LE(14);
          p[off] ^= 0x5a;
          writeFileSync(file, bytes);
        });
        const c = checkIndex(dir);
        expect(c.ok, `page ${pg} ${which}`).toBe(false);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('notices truncation anywhere before the last page, and a bad meta page', () => {
    const clean = checkIndex(storeDir);
    if (!clean.ok) throw new Error(clean.reason);
    const end = (clean.lastPage + 1) * clean.pageSize;
    for (let at = 0; at < end; at += 1000) {
      const dir = damagedCopy((file) => truncateSync(file, at));
      const c = checkIndex(dir);
      expect(c.ok, `truncated at ${at}`).toBe(false);
      rmSync(dir, { recursive: true, force: true });
    }
    for (const meta of [0, 1]) {
      const dir = damagedCopy((file, bytes) => {
        bytes.writeUInt32LE(0x12345678, meta * clean.pageSize + 16);
        writeFileSync(file, bytes);
      });
      expect(checkIndex(dir)).toMatchObject({ ok: false, reason: expect.stringMatching(/magic/) });
      rmSync(dir, { recursive: true, force: true });
    }
    // The newer meta page pointing past the end of the file (the SIGBUS case).
    const dir = damagedCopy((file, bytes) => {
      const m = bytes.readBigUInt64LE(144) >= bytes.readBigUInt64LE(clean.pageSize + 144) ? 0 : clean.pageSize;
      bytes.writeBigUInt64LE(BigInt(clean.lastPage + 50), m + 136);
      writeFileSync(file, bytes);
    });
    expect(checkIndex(dir)).toMatchObject({ ok: false, reason: expect.stringMatching(/truncated/) });
  });

  it('never reports damage while another process commits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trend-mdb-'));
    await buildIndex(join(dir, 'ix'), [{ db: 'nodes', key: 'k0', e: { st: '', v: 0 } }]);
    const script = `
      const { initHash } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'compiler', 'hash.js'))});
      const { Index } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'store', 'index-db.js'))});
      await initHash();
      const ix = Index.open(process.argv[1], false);
      for (let i = 0; i < 600; i++) {
        ix.put(i % 3 ? 'nodes' : 'runs', 'k' + (i % 97), { st: String(i), v: 'x'.repeat((i * 131) % 9000) });
        if (i % 5 === 0) ix.remove('nodes', 'k' + ((i * 7) % 97));
        if (ix.failed) throw new Error(ix.failed);
      }
      await ix.close();`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, join(dir, 'ix')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let running = true;
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => ((running = false), r(c))));
    let checks = 0;
    while (running) {
      const c = checkIndex(join(dir, 'ix'));
      // busy (commits overlapped every read) is allowed; damage is not
      expect(c.ok || c.busy === true, c.ok ? '' : c.reason).toBe(true);
      checks++;
      await new Promise((r) => setImmediate(r));
    }
    expect(await exited, err).toBe(0);
    expect(checks).toBeGreaterThan(10);
    expect(checkIndex(join(dir, 'ix'))).toMatchObject({ ok: true });
    rmSync(dir, { recursive: true, force: true });
  });

  /** An LMDB environment this process commits to, one transaction at a time. */
  function writer() {
    const dir = mkdtempSync(join(tmpdir(), 'trend-mdb-'));
    const env = open({ path: dir, maxDbs: 8, compression: false, overlappingSync: false, noSubdir: false });
    const db = env.openDB<Buffer, Buffer>({ name: 'a', encoding: 'binary', keyEncoding: 'binary' });
    let t = 0;
    /** Rewrites keys 0..59 and adds 10 more: pages are freed, reused two commits on, and the file grows. */
    const commit = () => {
      t++;
      env.transactionSync(() => {
        for (let i = 0; i < 60; i++) db.putSync(Buffer.from(`k${String(i).padStart(3, '0')}`), Buffer.alloc(100 + ((i * 37 + t * 11) % 700), t));
        for (let i = 0; i < 10; i++) db.putSync(Buffer.from(`n${t}-${i}`), Buffer.alloc(3000, t));
      });
    };
    commit();
    const file = join(dir, 'data.mdb');
    return { file, commit, snapshot: () => readFileSync(file), close: () => env.close() };
  }

  /** A source over fixed bytes, with a hook before every read. */
  const bytesSource = (bytesAt: (n: number) => Buffer) => {
    let n = 0;
    return {
      size: () => bytesAt(n).length,
      read: (off: number, len: number) => {
        const b = bytesAt(n++);
        return Buffer.from(b.subarray(off, off + len));
      },
      close: () => {},
    };
  };

  it('a commit between opening the file and reading it is not truncation (the size is read after the meta pages)', async () => {
    const w = writer();
    let opens = 0;
    // Open the real file, then commit (the file grows, a meta page names pages past the old
    // end), then let the check read. A size taken at open said "truncated" with the meta pages
    // holding still; this failed in CI on 2026-12-01.
    const c = checkMdbSource(() => {
      const s = fileSource(w.file);
      if (opens++ === 0) w.commit();
      return s;
    });
    expect(c, c.ok ? '' : c.reason).toMatchObject({ ok: true });
    expect(opens).toBe(1);
    await w.close();
  });

  it('a walk that overlaps commits is read again until the file holds still; one that never does is busy, not damaged', async () => {
    const w = writer();
    for (let i = 0; i < 3; i++) w.commit();
    const before = w.snapshot();
    for (let i = 0; i < 3; i++) w.commit();
    const later = w.snapshot(); // pages of `before` are reused by then (lmdb-js keeps a reader one commit behind)
    expect(checkMdbSource(() => bytesSource(() => before))).toMatchObject({ ok: true });
    expect(checkMdbSource(() => bytesSource(() => later))).toMatchObject({ ok: true });
    // Each read of a moving file: the meta pages (4 reads: the check's "before", then the
    // walk's own) show `before`, every later read shows `later`.
    const moving = () => bytesSource((n) => (n < 4 ? before : later));
    const mixed = checkOnceFrom(moving);
    expect(mixed.ok, 'the mixed read must fail for this test to mean anything').toBe(false);
    let opens = 0;
    const settles = checkMdbSource(() => (++opens <= 3 ? moving() : bytesSource(() => later)));
    expect(settles, settles.ok ? '' : settles.reason).toMatchObject({ ok: true });
    expect(opens).toBe(4);
    opens = 0;
    const busy = checkMdbSource(() => (opens++, moving()), undefined, { attempts: 5, ms: 60_000 });
    expect(busy).toMatchObject({ ok: false, busy: true, reason: expect.stringMatching(/another process committed during each of 5 reads/) });
    expect(opens).toBe(5);
    // Damage in a file that holds still is reported at once, and is not `busy`.
    opens = 0;
    const cut = later.subarray(0, later.length - 2 * 4096);
    const damaged = checkMdbSource(() => (opens++, bytesSource(() => cut)));
    expect(damaged).toMatchObject({ ok: false, reason: expect.stringMatching(/truncated|outside the file/) });
    expect(damaged.ok === false && damaged.busy).toBeUndefined();
    expect(opens).toBe(1);
    await w.close();
  });

  it('notices one changed byte inside a stored record by its checksum', () => {
    const clean = checkIndex(storeDir);
    if (!clean.ok) throw new Error(clean.reason);
    const used = new Set(clean.used);
    const bytes = readFileSync(join(storeDir, 'data.mdb'));
    // Old copies of pages (LMDB copies on write) hold the same text: take an occurrence on a page in use.
    let at = -1;
    for (let i = bytes.indexOf('"op":"train"'); i >= 0; i = bytes.indexOf('"op":"train"', i + 1)) {
      const pg = Math.floor(i / clean.pageSize);
      // ... inside the page's node area (a reused page keeps stale bytes between its bounds).
      if (used.has(pg) && i % clean.pageSize >= bytes.readUInt16LE(pg * clean.pageSize + 14)) {
        at = i;
        break;
      }
    }
    expect(at).toBeGreaterThan(0);
    const dir = damagedCopy((file, b) => {
      b[at + 7] ^= 0x01; // "train" -> "tsain": structurally fine, wrong content
      writeFileSync(file, b);
    });
    expect(checkIndex(dir)).toMatchObject({ ok: false, reason: expect.stringMatching(/does not match its checksum/) });
  });
});
