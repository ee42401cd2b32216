/**
 * The store's per-host index: an LMDB environment (cache/data.mdb, data format V1) that caches
 * the node records kept as files, plus `memo` (small derived facts). It is never the only copy
 * of anything that matters: it can be deleted and rebuilt from the records at any time, and it
 * is not written from several hosts. Run records are not in it (they are read from their files):
 * each holds every node of its pipeline, one is written per run, and every process checks the
 * whole index before mapping it, so indexing them made each start slower with every run.
 *
 * Every value is stored as checksum(key, body) + body, where body is JSON of { st, v }: v is the
 * record and st the identity (size, mtime, inode) of the record file it was read from, so a
 * stale entry (the file was rewritten or removed by another process or host) is noticed and the
 * file is read instead. The checksum lets the structural check (mdb-check.ts) notice a changed
 * byte inside a value. Any error from lmdb after opening disables the index for the rest of
 * the process: the store goes on from the record files.
 */
import { closeSync, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { checksumParts } from '../common/checksum.js';
import { checkMdb, type MdbCheck } from './mdb-check.js';

/** Plain LMDB commits (no overlapping sync), uncompressed values, a directory (never noSubdir). */
const ENV_OPTIONS = { maxDbs: 8, compression: false, overlappingSync: false, noSubdir: false } as const;
/** 'runs' held run records before they left the index; it is kept empty (cleared at a writable open). */
export const INDEX_DBS = ['nodes', 'runs', 'memo'] as const;
export type IndexDb = (typeof INDEX_DBS)[number];

export interface Entry<T> {
  st: string;
  v: T;
}

function seal(key: Buffer, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(checksumParts([key, body]), 'hex'), body]);
}

/**
 * The largest value the index holds. lmdb-js hands out a value of 16 KiB or more that does not
 * fit its read buffer as a view of the whole memory map: an external ArrayBuffer of 4 GiB, which
 * V8 counts as allocated memory and answers with a full, memory-reducing collection (31 ms in a
 * no-op run of the 1,000-node bench pipeline, whose matrix node's record is about 40 KB). Such
 * records (nodes with hundreds of inputs) are read from their files instead; they are few.
 */
export const MAX_INDEXED_BYTES = 0x4000 - 1;

/** The sealed value of an entry, or undefined when it is too large to index. */
export function sealEntry(key: Buffer, e: Entry<unknown>): Buffer | undefined {
  const body = Buffer.from(JSON.stringify(e), 'utf8');
  return body.length + 16 > MAX_INDEXED_BYTES ? undefined : seal(key, body);
}

/** The body of a sealed value, or undefined if its checksum does not match. */
export function unseal(key: Buffer, value: Buffer): Buffer | undefined {
  if (value.length < 16) return undefined;
  const body = value.subarray(16);
  return checksumParts([key, body]) === value.subarray(0, 16).toString('hex') ? body : undefined;
}

/** The structural check of the index file, values included. */
export function checkIndex(root: string): MdbCheck {
  return checkMdb(join(root, 'data.mdb'), (db, key, value) => {
    if (!(INDEX_DBS as readonly string[]).includes(db)) return `unexpected database '${db}'`;
    return unseal(key, value) ? undefined : `the value of key '${key.toString('latin1').slice(0, 40)}' does not match its checksum`;
  });
}

/**
 * Creates lock.mdb with real zero bytes before lmdb does. lmdb sizes it with ftruncate and writes
 * it through a memory map: on a full tmpfs, touching a page that has no block yet kills the
 * process with SIGBUS. Written here, a full disk is an ordinary error (thrown; nothing is left).
 */
export function prefillLockFile(dir: string): void {
  const path = join(dir, 'lock.mdb');
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw e;
  }
  try {
    const zeros = Buffer.alloc(LOCK_FILE_BYTES);
    let off = 0;
    while (off < zeros.length) off += writeSync(fd, zeros, off, zeros.length - off);
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw e;
  }
}

/** Room for 254 readers (lmdb-js asks for 126 and uses what the file holds). */
const LOCK_FILE_BYTES = 16384;

/** The identity of a record file, to tell a fresh index entry from a stale one. */
export function fileStamp(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return undefined;
  }
}

export class Index {
  private readonly env: RootDatabase;
  private readonly dbs: Record<IndexDb, Database<Buffer, Buffer>>;
  /** Why the index stopped being used (an lmdb error), if it did. */
  failed: string | undefined;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly readOnly: boolean,
  ) {
    try {
      prefillLockFile(path);
    } catch (e) {
      // Read-only: lmdb can do without a lock file it cannot create; a full disk it cannot survive.
      const code = (e as NodeJS.ErrnoException).code;
      if (!readOnly || code === 'ENOSPC' || code === 'EDQUOT') throw e;
    }
    this.env = open({ path, ...ENV_OPTIONS, readOnly });
    const dbs = {} as Record<IndexDb, Database<Buffer, Buffer>>;
    for (const name of INDEX_DBS)
      dbs[name] = this.env.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary', ...(readOnly ? { create: false } : {}) });
    this.dbs = dbs;
  }

  /** Opens the environment at `path`; the caller has checked it. Throws on lmdb errors. */
  static open(path: string, readOnly: boolean): Index {
    return new Index(path, readOnly);
  }

  get usable(): boolean {
    return !this.failed && !this.closed;
  }

  private guard<T>(f: () => T, fallback: T): T {
    if (!this.usable) return fallback;
    try {
      return f();
    } catch (e) {
      this.failed = (e as Error)?.message ?? String(e);
      return fallback;
    }
  }

  get<T>(db: IndexDb, key: string): Entry<T> | undefined {
    return this.guard(() => {
      const k = Buffer.from(key, 'utf8');
      const raw = this.dbs[db].get(k);
      if (!raw) return undefined;
      const body = unseal(k, Buffer.from(raw));
      if (!body) throw new Error(`the index value of ${db}/${key} does not match its checksum`);
      return JSON.parse(body.toString('utf8')) as Entry<T>;
    }, undefined);
  }

  put(db: IndexDb, key: string, e: Entry<unknown>): void {
    if (this.readOnly) return;
    this.batch([{ db, key, e }]);
  }

  /** Several puts and removals in one transaction; an entry too large to index is removed. */
  batch(ops: Array<{ db: IndexDb; key: string; e?: Entry<unknown> }>): void {
    if (this.readOnly || !ops.length) return;
    this.guard(() => {
      this.env.transactionSync(() => {
        for (const op of ops) {
          const k = Buffer.from(op.key, 'utf8');
          const v = op.e && sealEntry(k, op.e);
          if (v) this.dbs[op.db].putSync(k, v);
          else this.dbs[op.db].removeSync(k);
        }
      });
    }, undefined);
  }

  remove(db: IndexDb, key: string): void {
    this.batch([{ db, key }]);
  }

  /** Removes every entry of one database. */
  clear(db: IndexDb): void {
    if (this.readOnly) return;
    this.guard(() => this.env.transactionSync(() => this.dbs[db].clearSync()), undefined);
  }

  keys(db: IndexDb): string[] {
    return this.guard(() => [...this.dbs[db].getKeys()].map((k) => Buffer.from(k as Buffer).toString('utf8')), []);
  }

  memoEntries(): Array<[string, Entry<string>]> {
    return this.keys('memo').flatMap((k) => {
      const e = this.get<string>('memo', k);
      return e ? [[k, e] as [string, Entry<string>]] : [];
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.env.close();
    } catch {
      // closing a failed environment
    }
  }
}

/**
 * Writes a fresh index for the given records into `dir` (which must not exist yet) and closes
 * it. Used by a rebuild: the new files are then renamed over the old ones.
 */
export async function buildIndex(dir: string, entries: Array<{ db: IndexDb; key: string; e: Entry<unknown> }>): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  prefillLockFile(dir);
  const env = open({ path: dir, ...ENV_OPTIONS });
  try {
    const dbs = Object.fromEntries(INDEX_DBS.map((n) => [n, env.openDB<Buffer, Buffer>({ name: n, encoding: 'binary', keyEncoding: 'binary' })])) as Record<
      IndexDb,
      Database<Buffer, Buffer>
    >;
    for (let i = 0; i < entries.length; i += 500) {
      const chunk = entries.slice(i, i + 500);
      env.transactionSync(() => {
        for (const { db, key, e } of chunk) {
          const k = Buffer.from(key, 'utf8');
          const v = sealEntry(k, e);
          if (v) dbs[db].putSync(k, v);
        }
      });
    }
    await env.flushed;
  } finally {
    await env.close();
  }
}
