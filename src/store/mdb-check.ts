/**
 * A structural check of an LMDB data file (data format V1, 64-bit), done with plain reads before
 * lmdb maps the file. LMDB trusts its file: a page number past the end of a truncated file makes
 * it read beyond the mapping (SIGBUS, the process dies with no message), and a damaged page
 * header or node makes it fail with MDB_CORRUPTED, MDB_PAGE_FULL or garbage values. So before
 * the index is opened, this reads:
 *
 * - both meta pages (page flags, magic 0xBEEFC0DE, version 1, page size), and picks the newer
 *   one as LMDB does; its last page must lie inside the file;
 * - every page reachable from it: the free-page tree, the main tree and each named database's
 *   tree. Each page must carry its own number, the right kind (branch above leaves, leaves at
 *   the recorded depth), consistent lower/upper bounds, node offsets and sizes inside the page,
 *   keys in strictly increasing order within the range its parent gives it, child and overflow
 *   page numbers inside the file and used once, and the page/entry counts recorded for each
 *   tree. Free-list entries must name pages inside the file that no tree uses;
 * - optionally each value, through a caller's check (the store's index stores a checksum with
 *   every value, so a byte changed inside a record is noticed too).
 *
 * Another process may commit while the file is read: LMDB reuses a snapshot's pages two commits
 * later, so a walk that overlaps two commits can meet pages of a newer tree, and a meta page can
 * be read while it is written. A commit in progress never touches the newest snapshot's pages
 * (the writer reuses only pages freed before it), and a finished commit rewrites a meta page. So
 * a failed check is damage only when both meta pages read the same after the walk as before it;
 * otherwise it is repeated, however many commits it overlapped, until the file holds still or
 * the attempts run out: then the result says the file was busy, not that it is damaged. The
 * file's size is taken after the meta pages are read (a commit grows the file first).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const P_BRANCH = 0x01;
const P_LEAF = 0x02;
const P_OVERFLOW = 0x04;
const P_META = 0x08;
const P_DIRTY = 0x10;
const F_BIGDATA = 0x01;
const F_SUBDATA = 0x02;
const MDB_INTEGERKEY = 0x08;
const PAGEHDRSZ = 16;
const NODESIZE = 8;
const MAGIC = 0xbeefc0de;
const P_INVALID = 0xffffffffffffffffn;
const DB_SIZE = 48;

export type ValueCheck = (db: string, key: Buffer, value: Buffer) => string | undefined;

export type MdbCheck =
  | { ok: true; txnid: bigint; pageSize: number; lastPage: number; entries: Record<string, number>; used: number[] }
  /** busy: not damage: another process committed during every read, so nothing was checked. */
  | { ok: false; reason: string; txnid?: bigint; busy?: true };

/**
 * What the check reads: the file's size now, and its bytes at an offset. The size is asked for
 * after the meta pages are read: a commit grows the file before it writes its meta page, so a
 * size taken earlier can be smaller than the snapshot those meta pages describe.
 */
export interface MdbSource {
  size(): number;
  read(off: number, len: number): Buffer;
  close(): void;
}

interface Db {
  flags: number;
  depth: number;
  branch: bigint;
  leaf: bigint;
  overflow: bigint;
  entries: bigint;
  root: bigint;
}

class Damage extends Error {}

const fail = (msg: string): never => {
  throw new Damage(msg);
};

function readDb(b: Buffer, off: number): Db {
  return {
    flags: b.readUInt16LE(off + 4),
    depth: b.readUInt16LE(off + 6),
    branch: b.readBigUInt64LE(off + 8),
    leaf: b.readBigUInt64LE(off + 16),
    overflow: b.readBigUInt64LE(off + 24),
    entries: b.readBigUInt64LE(off + 32),
    root: b.readBigUInt64LE(off + 40),
  };
}

interface Meta {
  pageSize: number;
  free: Db;
  main: Db;
  lastPage: bigint;
  txnid: bigint;
  mapSize: bigint;
}

function readMeta(b: Buffer, which: number): Meta {
  if (b.length < PAGEHDRSZ + 136) fail(`meta page ${which} is cut short`);
  if (!(b.readUInt16LE(10) & P_META)) fail(`page ${which} is not a meta page`);
  if (b.readUInt32LE(16) !== MAGIC) fail(`meta page ${which} has a bad magic number`);
  if (b.readUInt32LE(20) !== 1) fail(`meta page ${which} has data format version ${b.readUInt32LE(20)} (expected 1)`);
  const free = readDb(b, 40);
  return {
    pageSize: b.readUInt32LE(40),
    free,
    main: readDb(b, 88),
    lastPage: b.readBigUInt64LE(136),
    txnid: b.readBigUInt64LE(144),
    mapSize: b.readBigUInt64LE(32),
  };
}

class Reader implements MdbSource {
  constructor(readonly fd: number) {}
  size(): number {
    return fstatSync(this.fd).size;
  }
  close(): void {
    closeSync(this.fd);
  }
  read(off: number, len: number): Buffer {
    const b = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd, b, got, len - got, off + got);
      if (n === 0) break;
      got += n;
    }
    return got === len ? b : b.subarray(0, got);
  }
}

/** The newer meta page, and the file's size read after it. */
function metas(r: MdbSource): { meta: Meta; pageSize: number; size: number } {
  const b0 = r.read(0, PAGEHDRSZ + 152);
  if (b0.length < PAGEHDRSZ + 152) fail(`the file is ${b0.length} bytes, too short for an LMDB environment`);
  const m0 = readMeta(b0, 0);
  const ps = m0.pageSize;
  if (ps < 512 || ps > 65536 || (ps & (ps - 1)) !== 0) fail(`meta page 0 gives page size ${ps}`);
  const b1 = r.read(ps, PAGEHDRSZ + 152);
  if (b1.length < PAGEHDRSZ + 152) fail(`the file is ${ps + b1.length} bytes, too short for its second meta page`);
  const m1 = readMeta(b1, 1);
  // LMDB uses the meta page with the larger transaction id (page 0 on a tie).
  const meta = m0.txnid < m1.txnid ? m1 : m0;
  if (meta.pageSize !== ps) fail(`the newest meta page gives page size ${meta.pageSize}, page 0 gives ${ps}`);
  return { meta, pageSize: ps, size: r.size() };
}

/** The pages of one snapshot: reads each one, checking its number, and records it as used. */
class Pages {
  readonly seen = new Set<number>();
  constructor(
    readonly r: MdbSource,
    readonly ps: number,
    readonly lastPage: number,
  ) {}

  page(pgno: number, what: string): Buffer {
    const { r, ps, lastPage, seen } = this;
    if (pgno < 2 || pgno > lastPage) fail(`${what}: page ${pgno} is outside the file (pages 2..${lastPage})`);
    if (seen.has(pgno)) fail(`${what}: page ${pgno} is used twice`);
    seen.add(pgno);
    const b = r.read(pgno * ps, ps);
    if (b.length < ps) fail(`${what}: page ${pgno} is cut short`);
    const own = b.readBigUInt64LE(0);
    if (own !== BigInt(pgno)) fail(`${what}: page ${pgno} says it is page ${own}`);
    return b;
  }
}

type OnValue = (key: Buffer, value: Buffer, flags: number) => void;

/** One tree being walked: its record, key order, what has been counted so far. */
interface Tree {
  name: string;
  db: Db;
  intKey: boolean;
  cmp: (a: Buffer, b: Buffer) => number;
  count: { branch: bigint; leaf: bigint; overflow: bigint; entries: bigint };
  onValue: OnValue;
}

/** Walks one tree from its root, checks its recorded counts and stores its entry count. */
function walk(pages: Pages, entries: Record<string, number>, name: string, db: Db, onValue: OnValue): void {
  const intKey = (db.flags & MDB_INTEGERKEY) !== 0;
  const cmp = intKey
    ? (a: Buffer, b: Buffer) => (a.readBigUInt64LE(0) < b.readBigUInt64LE(0) ? -1 : a.readBigUInt64LE(0) > b.readBigUInt64LE(0) ? 1 : 0)
    : Buffer.compare;
  if (db.root === P_INVALID) {
    if (db.depth !== 0 || db.entries !== 0n || db.leaf !== 0n || db.branch !== 0n || db.overflow !== 0n) fail(`${name}: an empty tree with counts`);
    entries[name] = 0;
    return;
  }
  if (db.depth < 1 || db.depth > 32) fail(`${name}: tree depth ${db.depth}`);
  const count = { branch: 0n, leaf: 0n, overflow: 0n, entries: 0n };
  visit(pages, { name, db, intKey, cmp, count, onValue }, Number(db.root), 1, undefined, undefined);
  for (const f of ['branch', 'leaf', 'overflow', 'entries'] as const) {
    if (count[f] !== db[f]) fail(`${name}: ${count[f]} ${f === 'entries' ? 'entries' : `${f} pages`} found, ${db[f]} recorded`);
  }
  entries[name] = Number(count.entries);
}

/** Checks a branch or leaf page and its nodes, then the pages below it. */
function visit(pages: Pages, t: Tree, pgno: number, level: number, lo: Buffer | undefined, hi: Buffer | undefined): void {
  const { name, db, count } = t;
  const ps = pages.ps;
  const p = pages.page(pgno, name);
  const flags = p.readUInt16LE(10) & ~P_DIRTY;
  const isLeaf = flags === P_LEAF;
  if (!isLeaf && flags !== P_BRANCH) fail(`${name}: page ${pgno} has flags 0x${flags.toString(16)} (expected a branch or leaf page)`);
  if (isLeaf !== (level === db.depth)) fail(`${name}: page ${pgno} is a ${isLeaf ? 'leaf' : 'branch'} at depth ${level} of ${db.depth}`);
  const lower = p.readUInt16LE(12);
  const upper = p.readUInt16LE(14);
  if (lower < PAGEHDRSZ || lower & 1 || lower > upper || upper > ps) fail(`${name}: page ${pgno} has bounds ${lower}..${upper}`);
  const n = (lower - PAGEHDRSZ) >> 1;
  if (n === 0) fail(`${name}: page ${pgno} is empty`);
  if (isLeaf) count.leaf++;
  else count.branch++;
  const keys: Buffer[] = [];
  const children: number[] = [];
  for (let i = 0; i < n; i++) node(pages, t, p, pgno, i, upper, isLeaf, keys, children);
  checkKeyOrder(t, pgno, isLeaf, keys, lo, hi);
  for (let i = 0; i < children.length; i++) visit(pages, t, children[i]!, level + 1, i === 0 ? lo : keys[i], i + 1 < children.length ? keys[i + 1] : hi);
}

/** Checks node i of a page: a branch node adds its key and child; a leaf node its key and value. */
function node(pages: Pages, t: Tree, p: Buffer, pgno: number, i: number, upper: number, isLeaf: boolean, keys: Buffer[], children: number[]): void {
  const { name, intKey, count } = t;
  const ps = pages.ps;
  const off = p.readUInt16LE(PAGEHDRSZ + 2 * i);
  if (off < upper || off & 1 || off + NODESIZE > ps) fail(`${name}: page ${pgno} node ${i} at offset ${off} is outside the page's node area`);
  const lo16 = p.readUInt16LE(off);
  const hi16 = p.readUInt16LE(off + 2);
  const nflags = p.readUInt16LE(off + 4);
  const ksize = p.readUInt16LE(off + 6);
  const kstart = off + NODESIZE;
  if (kstart + ksize > ps) fail(`${name}: page ${pgno} node ${i} has a key running past the page`);
  const key = p.subarray(kstart, kstart + ksize);
  if (intKey && ksize !== 8 && !(i === 0 && !isLeaf)) fail(`${name}: page ${pgno} node ${i} has a ${ksize}-byte integer key`);
  if (!isLeaf) {
    children.push(lo16 + hi16 * 0x10000 + nflags * 0x100000000);
    keys.push(key);
    return;
  }
  if (nflags & ~(F_BIGDATA | F_SUBDATA) || (nflags & F_SUBDATA && name !== 'main')) fail(`${name}: page ${pgno} node ${i} has flags 0x${nflags.toString(16)}`);
  const dsize = lo16 + hi16 * 0x10000;
  let value: Buffer;
  if (nflags & F_BIGDATA) {
    if (kstart + ksize + 8 > ps) fail(`${name}: page ${pgno} node ${i} runs past the page`);
    value = overflowValue(pages, t, Number(p.readBigUInt64LE(kstart + ksize)), dsize);
  } else {
    if (kstart + ksize + dsize > ps) fail(`${name}: page ${pgno} node ${i} has a value running past the page`);
    value = p.subarray(kstart + ksize, kstart + ksize + dsize);
  }
  keys.push(key);
  count.entries++;
  t.onValue(key, value, nflags);
}

/** Checks the run of overflow pages starting at opg that holds a dsize-byte value, and reads it. */
function overflowValue(pages: Pages, t: Tree, opg: number, dsize: number): Buffer {
  const { name, count } = t;
  const { ps, lastPage, seen } = pages;
  const needed = Math.floor((PAGEHDRSZ - 1 + dsize) / ps) + 1;
  const o = pages.page(opg, name);
  if ((o.readUInt16LE(10) & ~P_DIRTY) !== P_OVERFLOW) fail(`${name}: page ${opg} should be an overflow page`);
  // LMDB writes a smaller value over a larger run of overflow pages in place.
  const n = o.readUInt32LE(12);
  if (n < needed) fail(`${name}: overflow page ${opg} says ${n} pages, its value needs ${needed}`);
  if (opg + n - 1 > lastPage) fail(`${name}: overflow pages ${opg}..${opg + n - 1} run past the file (last page ${lastPage})`);
  for (let q = opg + 1; q < opg + n; q++) {
    if (seen.has(q)) fail(`${name}: page ${q} is used twice`);
    seen.add(q);
  }
  count.overflow += BigInt(n);
  return pages.r.read(opg * ps + PAGEHDRSZ, dsize);
}

/**
 * Key order: strictly increasing, inside [lo, hi) given by the parent. A branch page's first key
 * is implicit (the parent's bound), so it is not compared.
 */
function checkKeyOrder(t: Tree, pgno: number, isLeaf: boolean, keys: Buffer[], lo: Buffer | undefined, hi: Buffer | undefined): void {
  const { name, cmp } = t;
  const first = isLeaf ? 0 : 1;
  for (let i = first; i < keys.length; i++) {
    const k = keys[i]!;
    if (i > first && cmp(keys[i - 1]!, k) >= 0) fail(`${name}: page ${pgno} has keys out of order at node ${i}`);
    if (lo && cmp(k, lo) < 0) fail(`${name}: page ${pgno} node ${i} has a key below its parent's range`);
    if (hi && cmp(k, hi) >= 0) fail(`${name}: page ${pgno} node ${i} has a key above its parent's range`);
  }
}

/** Checks the snapshot that meta describes: its size, every tree, and the free list. */
function checkSnapshot(r: MdbSource, meta: Meta, ps: number, size: number, valueCheck?: ValueCheck): MdbCheck {
  const last = meta.lastPage;
  const filePages = BigInt(Math.floor(size / ps));
  if (last < 1n || last + 1n > filePages) fail(`its last page is ${last} but the file holds ${filePages} pages of ${ps} bytes (truncated?)`);
  if (meta.mapSize < (last + 1n) * BigInt(ps) || meta.mapSize > 1n << 52n) fail(`its map size ${meta.mapSize} is impossible`);
  const lastPage = Number(last);
  const pages = new Pages(r, ps, lastPage);
  const free: number[] = [];
  const entries: Record<string, number> = {};

  walk(pages, entries, 'free', meta.free, (_k, v) => {
    if (v.length < 8) fail('free list: an entry is cut short');
    const n = Number(v.readBigUInt64LE(0));
    if (v.length !== 8 * (n + 1)) fail(`free list: an entry holds ${v.length} bytes for ${n} pages`);
    for (let i = 1; i <= n; i++) free.push(Number(v.readBigUInt64LE(8 * i)));
  });
  if ((meta.main.flags & ~0) !== 0) fail(`main: flags 0x${meta.main.flags.toString(16)}`);
  const subs: Array<[string, Db]> = [];
  walk(pages, entries, 'main', meta.main, (k, v, flags) => {
    if (!(flags & F_SUBDATA)) return;
    if (v.length !== DB_SIZE) fail(`main: database record '${k.toString('latin1')}' is ${v.length} bytes`);
    subs.push([k.toString('utf8'), readDb(v, 0)]);
  });
  for (const [name, db] of subs) {
    if (db.flags !== 0) fail(`${name}: flags 0x${db.flags.toString(16)} (this store uses none)`);
    walk(pages, entries, name, db, (k, v) => {
      const why = valueCheck?.(name, k, v);
      if (why) fail(`${name}: ${why}`);
    });
  }
  const seen = pages.seen;
  for (const f of free) {
    if (f < 2 || f > lastPage) fail(`free list: page ${f} is outside the file`);
    if (seen.has(f)) fail(`free list: page ${f} is both free and in use`);
  }
  return { ok: true, txnid: meta.txnid, pageSize: ps, lastPage, entries, used: [...seen].sort((a, b) => a - b) };
}

function checkOnce(r: MdbSource, valueCheck?: ValueCheck): MdbCheck {
  let txnid: bigint | undefined;
  try {
    const { meta, pageSize: ps, size } = metas(r);
    txnid = meta.txnid;
    return checkSnapshot(r, meta, ps, size, valueCheck);
  } catch (e) {
    if (e instanceof Damage) return { ok: false, reason: e.message, ...(txnid !== undefined ? { txnid } : {}) };
    return { ok: false, reason: `cannot read it: ${(e as Error).message}`, ...(txnid !== undefined ? { txnid } : {}) };
  }
}

/** The headers of both meta pages as raw bytes (what a commit rewrites), or undefined if unreadable. */
function metaBytes(r: MdbSource): Buffer | undefined {
  try {
    const m0 = r.read(0, PAGEHDRSZ + 152);
    const ps = m0.length >= 44 ? m0.readUInt32LE(40) : 0;
    return ps >= 512 && ps <= 65536 ? Buffer.concat([m0, r.read(ps, PAGEHDRSZ + 152)]) : m0;
  } catch {
    return undefined;
  }
}

const sameBytes = (a: Buffer | undefined, b: Buffer | undefined) => (a === undefined || b === undefined ? a === b : a.equals(b));

/** How long a check goes on while another process keeps committing. */
export interface CheckPatience {
  attempts: number;
  ms: number;
}
const PATIENCE: CheckPatience = { attempts: 50, ms: 3000 };

/** The check over a source opened afresh for each attempt (a file, or a test's view of one). */
export function checkMdbSource(openSource: () => MdbSource, valueCheck?: ValueCheck, patience: CheckPatience = PATIENCE): MdbCheck {
  const start = performance.now();
  for (let attempt = 1; ; attempt++) {
    let r: MdbSource;
    try {
      r = openSource();
    } catch (e) {
      return { ok: false, reason: `cannot read it: ${(e as Error).message}` };
    }
    try {
      const before = metaBytes(r);
      const result = checkOnce(r, valueCheck);
      if (result.ok || sameBytes(before, metaBytes(r))) return result;
    } finally {
      r.close();
    }
    if (attempt >= patience.attempts || performance.now() - start > patience.ms) {
      return { ok: false, busy: true, reason: `another process committed during each of ${attempt} reads, so it could not be checked` };
    }
  }
}

/** A file as the check reads it (opened now; closed by the check). */
export function fileSource(path: string): MdbSource {
  return new Reader(openSync(path, 'r'));
}

/** Checks an LMDB data file; see the header comment. */
export function checkMdb(path: string, valueCheck?: ValueCheck): MdbCheck {
  return checkMdbSource(() => fileSource(path), valueCheck);
}
