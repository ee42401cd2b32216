/**
 * The artifact store. Like Nix's store it knows nothing of what it stores: a node key maps to
 * metadata (kept apart from the payload) and to a payload named by its checksum.
 *
 *   cache/FORMAT                 "trend-store 2": marks the directory as a store
 *   cache/objects/ab/<addr>      every payload, named by its 128-bit checksum, verified on read
 *   cache/nodes/ab/<key>.json    node records (metadata: op, parameters, inputs, versions,
 *                                times, size, payload checksum)
 *   cache/runs/<id>.json         run records
 *   cache/data.mdb, lock.mdb     the per-host LMDB index (index-db.ts) of the node records and
 *                                `memo`; elsewhere with OpenOptions.indexDir / TREND_INDEX_DIR
 *   cache/tmp/                   partial writes, named <pid>@<host>+..., removed when their
 *                                writer is gone
 *   cache/locks/                 per-node locks, proc-<pid>@<host> registrations, the gc and
 *                                maintenance locks
 *
 * Design. The payload files and the record files are the store's source of truth; every one is
 * written to tmp/, fsynced and renamed into place, so it is complete or absent, and a record is
 * written only after its payload is durable. LMDB is a per-host index over the node records, a cache:
 * each entry carries the identity (size, mtime, inode) of the file it came from and a checksum of
 * its own bytes, so a stale entry is noticed and the file read instead, and the whole index can be
 * deleted and rebuilt from the records (`cache verify --repair`, and `cache gc` when it compacts).
 * Nothing is lost with it but memoised file hashes. This keeps LMDB, which must not be written
 * from several hosts over NFS, per-host: the records and objects can be shared.
 *
 * Faults. Before lmdb maps data.mdb, a structural check (mdb-check.ts) reads its meta pages and
 * every reachable page in plain JS, so a truncated or damaged file is reported instead of
 * killing the process with SIGBUS or failing every write; a damaged index is then not used (the
 * store works from the record files, with a warning) until `cache verify --repair` rebuilds it.
 * Any lmdb error later also turns the index off for the process. A failed write (disk full,
 * read-only file system) removes its temporary file and reports the path and the reason as a
 * StoreError; a store on a read-only file system opens read-only and can be listed, shown,
 * verified and exported from.
 *
 * Concurrency. Processes register as users (locks/proc-<owner>, whose text names the index they
 * use). `cache gc` holds locks/gc while it collects: it keeps every node of a live run (any
 * status: computed, being computed or yet to be computed), a run waits for a running gc after
 * writing its start record (so gc either sees the run or the run sees the finished gc), and a
 * payload being written is protected by a temporary root (tmp/<owner>+root-<addr>) until its
 * record exists. Rebuilding an index needs locks/maintenance and no other user of that index; an
 * opening process waits while maintenance runs.
 *
 * Owners and hosts (owner.ts). The store may be shared by hosts (NFS). Every lock, registration,
 * temporary file and run record names its owner as a pid and a host (`<pid>@<host>`; the host is
 * TREND_HOST_ID or the host name; a bare pid, as older versions wrote, means this host). An owner
 * on this host is alive while its pid is. A pid from another host means nothing here, so such an
 * owner is alive while its lease is: each process refreshes the mtime of its locks and its
 * registration every lease/4 (TREND_LEASE_S, default 120 s), and a lock of another host is stale
 * once its file is older than the lease; another host's temporary file once neither it nor its
 * owner's registration is; another host's 'running' run reads 'interrupted' once its driver's
 * registration is gone or older than the lease (so gc keeps its nodes until then). This assumes
 * the hosts' clocks agree to well within the lease (as NFS needs anyway).
 *
 * LMDB must not be shared by hosts: each host keeps its own index (indexDir, on local disk; the
 * default, inside the store, suits one host, and a process will not use it while a live process
 * of another host does). A cluster worker opens the store with `index: false`: it reads and writes
 * only the record files and payloads, never opens, checks or creates data.mdb or lock.mdb, and
 * never warns about the index; the index of another host notices the records it wrote by their
 * file identity. An index outside the store is marked with the store it belongs to (trend-store).
 *
 * A store is created by its first write: opening a directory that is not (yet) a store, with
 * `create`, creates nothing, so a command that fails on bad arguments leaves no store behind.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { open as openLmdb } from 'lmdb';
import { checksumBytes, initHash } from '../common/checksum.js';
import { createEmpty, errno, ioError, isReadOnlyError, mkdirs, StoreError, unlinkQuiet, writeAtomic } from './fsx.js';
import { buildIndex, checkIndex, fileStamp, Index, sealEntry, type Entry, type IndexDb } from './index-db.js';
import { liveHolder, LockDir } from './locks.js';
import { checkMdb } from './mdb-check.js';
import { ObjectDir, readdirQuiet } from './objects.js';
import {
  currentHost,
  isSelf,
  isThisHost,
  keepAlive,
  leaseSettingError,
  letGo,
  ownerAlive,
  ownerLabel,
  parseTempName,
  registrationName,
  registrationOwner,
  self,
  tempName,
  type Owner,
} from './owner.js';

export { StoreError } from './fsx.js';

export const STORE_FORMAT = 'trend-store 2';

export interface NodeMeta {
  key: string;
  op: string;
  opVersion: number;
  /** The node's parameters in JSON form (rationals as "a/b" strings). */
  params: unknown;
  /** Role -> input node keys. */
  inputs: Record<string, string | string[]>;
  packageVersion: string;
  backend: string;
  startedAt: string;
  endedAt: string;
  ms: number;
  bytes: number;
  /** 128-bit content address of the payload. */
  checksum: string;
  /** Always 'file' (objects/); 'inline' only in stores written before format 2. */
  where: 'inline' | 'file';
  /** Small JSON results for diff and reports (also inside the payload). */
  summary?: unknown;
  /** Display id when first computed, and the pipeline it came from. */
  id?: string;
  pipeline?: string;
  /** Run-dependent facts kept out of the payload (timings, throughput). */
  extra?: Record<string, unknown>;
}

export interface RunNode {
  id: string;
  key: string;
  op: string;
  status: 'cached' | 'ran' | 'failed' | 'skipped' | 'pending';
  ms?: number;
  error?: string;
  params: unknown;
  inputs: Record<string, string | string[]>;
  info: unknown;
  line: number;
  /** Where the node was computed (set for nodes that ran). */
  placement?: Placement;
  /** The payload's content address, for a node that ran (runs before 2026-12 lack it). */
  checksum?: string;
  /**
   * A node that ran although its key was stored (`--force`) and gave other bytes: the stored
   * result it replaced. Same backend: the node is not reproducible; another backend: expected.
   */
  replaced?: { checksum: string; backend: string };
}

/** Where and how a node ran: the host, and for a cluster job its id, queue wait and wall time. */
export interface Placement {
  host: string;
  executor: 'local' | 'slurm';
  jobId?: string;
  /** Milliseconds from submission to the job's start (cluster jobs). */
  queueMs?: number;
  /** Milliseconds the job (or the local computation) ran. */
  wallMs?: number;
}

export interface RunRecord {
  id: string;
  pipeline: string;
  textHash: string;
  source: string;
  /** The driving process; with `host`, whether a 'running' run is still alive (owner.ts). */
  pid: number;
  /**
   * The host id of the driving process (owner.ts: TREND_HOST_ID or the host name); putRun fills
   * it in when absent. Absent in records written before hosts were recorded: this host.
   */
  host?: string;
  /** The executor that ran it (absent: local). */
  executor?: 'local' | 'slurm';
  /** `run --only`: the nodes asked for (the run holds them and what they need, not the whole pipeline). */
  only?: string[];
  startedAt: string;
  endedAt?: string;
  status: 'running' | 'ok' | 'failed' | 'interrupted';
  backend?: string;
  packageVersion: string;
  nodes: RunNode[];
  reportDir?: string;
}

export interface OpenOptions {
  /** Open (and later create, at the first write) a store where there is none; default true. */
  create?: boolean;
  /** Never write: the index is opened read-only, writes throw. */
  readOnly?: boolean;
  /** Called with messages for the user (a damaged index, a failed index write). */
  onWarning?: (message: string) => void;
  /**
   * false: never use the LMDB index. The process reads and writes only the record files and
   * payloads, never opens, checks, creates or writes data.mdb or lock.mdb, and never warns about
   * the index (for cluster workers on other hosts). Default true.
   */
  index?: boolean;
  /**
   * The directory of this host's index (data.mdb, lock.mdb): default `TREND_INDEX_DIR`, else the
   * store directory itself. On a store shared by hosts, a local directory of each host's own.
   */
  indexDir?: string;
}

export interface IndexState {
  /** 'off': opened with `index: false`. */
  status: 'ok' | 'damaged' | 'missing' | 'unavailable' | 'off';
  detail?: string;
}

export interface VerifyResult {
  checked: number;
  broken: Array<{ key: string; op: string; why: string }>;
  runsChecked: number;
  brokenRuns: Array<{ id: string; why: string }>;
  orphanObjects: number;
  tempFiles: number;
  staleLocks: number;
  index: IndexState & { stale: number; rebuilt: boolean; notRebuilt?: string };
}

const KEY_RE = /^[0-9A-Za-z_-]{2,128}$/;

/** A run that finished well over its whole pipeline (status ok, not `--only`). */
export function isCompleteRun(r: { status: string; only?: string[] }): boolean {
  return r.status === 'ok' && !r.only?.length;
}

/**
 * The finished runs `cache gc` keeps (oldest first; see Store.gc), and whether what they reach
 * still exceeds maxSize. sizeOf: the payload bytes a set of runs reaches.
 */
export function keptRuns(
  runs: RunRecord[],
  opts: { keepRuns?: number; maxSize?: number },
  sizeOf: (rs: RunRecord[]) => number,
): { kept: RunRecord[]; overSize: boolean } {
  // Per pipeline, the runs from the newest complete one on are never dropped for size.
  const floor = new Set<string>();
  const byPipeline = new Map<string, RunRecord[]>();
  for (const r of [...runs].sort(runOrder)) byPipeline.set(r.pipeline, [...(byPipeline.get(r.pipeline) ?? []), r]);
  const kept: RunRecord[] = [];
  for (const rs of byPipeline.values()) {
    let lastComplete = rs.length - 1;
    while (lastComplete > 0 && !isCompleteRun(rs[lastComplete]!)) lastComplete--;
    for (const r of rs.slice(lastComplete)) floor.add(r.id);
    // newest first until keepRuns complete runs are in
    let from = rs.length;
    for (let n = 0; opts.keepRuns !== undefined && from > 0 && n < opts.keepRuns;) if (isCompleteRun(rs[--from]!)) n++;
    kept.push(...rs.slice(opts.keepRuns === undefined ? 0 : from));
  }
  kept.sort(runOrder);
  let overSize = false;
  if (opts.maxSize !== undefined) {
    while (sizeOf(kept) > opts.maxSize) {
      const i = kept.findIndex((r) => !floor.has(r.id));
      if (i < 0) {
        overSize = true;
        break;
      }
      kept.splice(i, 1);
    }
  }
  return { kept, overSize };
}

/** Oldest first: by start time, then by id (the order `Store.runs()` returns). */
export function runOrder(a: { startedAt: string; id: string }, b: { startedAt: string; id: string }): number {
  const ta = Date.parse(a.startedAt);
  const tb = Date.parse(b.startedAt);
  if (ta !== tb) return Number.isNaN(ta) ? -1 : Number.isNaN(tb) ? 1 : ta - tb;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** JSON that keeps NaN and the infinities (records hold results). */
function encodeRecord(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? { $num: String(x) } : typeof x === 'bigint' ? x.toString() : x));
}
function decodeRecord<T>(text: string): T {
  return JSON.parse(text, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length === 1 && typeof x.$num === 'string' ? Number(x.$num) : x,
  ) as T;
}

/** A record read from its file: undefined when absent or not JSON (a damaged record: verify reports it). */
function readRecordFile<T>(file: string): T | undefined {
  try {
    return decodeRecord<T>(readFileSync(file, 'utf8'));
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    if (errno(err)) throw ioError(err, 'reading', file);
    return undefined;
  }
}

function unlinkRecord(file: string): void {
  try {
    unlinkSync(file);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw ioError(e, 'removing', file);
  }
}

export class Store {
  readonly root: string;
  readonly objects: ObjectDir;
  readonly readOnly: boolean;
  private lockDir: LockDir | undefined;
  private index: Index | undefined;
  private indexState: IndexState = { status: 'missing' };
  /** Set when this store cannot be written (read-only file system, permissions). */
  private writeBlock: string | undefined;
  private exists: boolean;
  private registered = false;
  private closed = false;
  private warnedIndex = false;
  private rootSeq = 0;
  private dirsChecked = false;
  private readonly procFile: string;
  private readonly warn: (m: string) => void;
  /** Whether this process uses an LMDB index at all (OpenOptions.index). */
  private readonly useIndex: boolean;
  /**
   * Node keys found stored, with the identity of the record file they were read from: `has` asks
   * again only when the file is gone or another file took its place (a plan and the run after it
   * look up every node twice).
   */
  private readonly present = new Map<string, string>();
  /** The directory holding this host's data.mdb and lock.mdb. */
  readonly indexDir: string;
  /** Why the index may not be used here (it belongs to another store, or another host uses it). */
  private indexRefused: string | undefined;

  private constructor(root: string, exists: boolean, opts: OpenOptions) {
    this.root = root;
    this.exists = exists;
    this.readOnly = !!opts.readOnly;
    this.objects = new ObjectDir(root);
    this.procFile = join(root, 'locks', registrationName(self()));
    this.warn = opts.onWarning ?? (() => {});
    this.useIndex = opts.index !== false;
    this.indexDir = resolve(opts.indexDir ?? (process.env.TREND_INDEX_DIR || root));
  }

  /** What this process's registration says of its index: none, the store's own, or a directory. */
  private get indexMode(): string {
    return !this.useIndex ? 'none' : this.indexDir === this.root ? 'store' : this.indexDir;
  }

  /**
   * Opens the store at `root`. With create (the default) a missing store is created by the first
   * write; without it, a missing store is an error (exit 2). A path that is a file, or under one,
   * is an error (exit 2).
   */
  static async open(root: string, opts: OpenOptions = {}): Promise<Store> {
    await initHash();
    const dir = resolve(root);
    const badLease = leaseSettingError();
    if (badLease) throw new StoreError(`cannot open the store at ${dir}: ${badLease}`, 2);
    let isDirectory = false;
    try {
      isDirectory = statSync(dir).isDirectory();
      if (!isDirectory) throw new StoreError(`the cache path ${dir} is not a directory`, 2, 'ENOTDIR');
    } catch (e) {
      if (e instanceof StoreError) throw e;
      if (errno(e) === 'ENOTDIR') throw new StoreError(`the cache path ${dir} is not a directory (a parent is a file)`, 2, 'ENOTDIR');
      if (errno(e) !== 'ENOENT') throw ioError(e, 'reading', dir);
    }
    const isStore = isDirectory && ['FORMAT', 'data.mdb', 'nodes', 'objects'].some((f) => existsSync(join(dir, f)));
    if (!isStore && opts.create === false) throw new StoreError(`no store at ${dir}`, 2, 'ENOENT');
    const store = new Store(dir, isStore, opts);
    try {
      if (isStore) await store.attach();
    } catch (e) {
      await store.close(); // unregisters
      throw e;
    }
    return store;
  }

  /** The per-node locks (for writers: creates the store if it does not exist yet). */
  get locks(): LockDir {
    this.ensureWritable();
    return this.lockDirectory();
  }

  private lockDirectory(): LockDir {
    return (this.lockDir ??= new LockDir(this.root));
  }

  /** Why the index is not in use, if it is not (damaged, missing, unavailable). */
  get indexStatus(): IndexState {
    if (this.index?.failed) return { status: 'unavailable', detail: this.index.failed };
    return this.indexState;
  }

  /** Whether this process can write to the store (not opened read-only, file system writable). */
  get writable(): boolean {
    return !this.readOnly && !this.writeBlock;
  }

  private path(...p: string[]): string {
    return join(this.root, ...p);
  }

  private nodePath(key: string): string {
    return this.path('nodes', key.slice(0, 2), `${key}.json`);
  }

  private runPath(id: string): string {
    return this.path('runs', `${id}.json`);
  }

  // ------------------------------------------------------------------ opening and creating
  private async attach(): Promise<void> {
    this.register();
    await this.waitForLock('maintenance');
    if (!existsSync(this.path('FORMAT')) && existsSync(this.path('data.mdb'))) {
      await this.migrateLegacy();
      return;
    }
    if (this.registered && !this.readOnly && !this.writeBlock) {
      this.objects.cleanTemp();
      this.lockDirectory().cleanStale();
    }
    this.openIndex();
  }

  /** Registers this process as a user of the store; finds out whether the store is writable. */
  private register(): void {
    if (this.registered) return;
    try {
      if (!existsSync(this.path('locks'))) {
        if (this.readOnly) return;
        mkdirs(this.path('locks'));
      }
      createEmpty(this.procFile);
      this.registered = true;
      keepAlive(this.procFile, 'registration', `index=${this.indexMode}`);
      try {
        // The content says which index this process uses (for rebuilds: who else uses it).
        writeFileSync(this.procFile, `index=${this.indexMode}`);
      } catch {
        // A full disk: an empty registration reads as a user of any index.
      }
    } catch (e) {
      const code = (e as StoreError).code ?? errno(e);
      if (code && isReadOnlyError({ code }))
        this.writeBlock = `the store at ${this.root} is read-only (${code === 'EROFS' ? 'read-only file system' : 'permission denied'})`;
      // A full disk: not registered; writes will report it.
    }
  }

  private openIndex(): void {
    if (!this.useIndex) {
      this.indexState = { status: 'off', detail: 'opened without an index' };
      return;
    }
    const file = join(this.indexDir, 'data.mdb');
    const canWrite = !this.readOnly && !this.writeBlock && this.registered;
    this.indexRefused = this.indexRefusal();
    if (this.indexRefused) {
      this.indexState = { status: 'unavailable', detail: this.indexRefused };
      this.warn(`${this.indexRefused}; working from the node and run records alone`);
      return;
    }
    if (existsSync(file)) {
      const c = checkIndex(this.indexDir);
      if (!c.ok && c.busy) {
        // Another process kept committing: not damage, and nothing to repair; this process does without.
        this.indexState = { status: 'unavailable', detail: `${file}: ${c.reason}` };
        this.warn(`the store index ${file} was being written throughout its check (${c.reason}); working from the node and run records alone`);
        return;
      }
      if (!c.ok) {
        this.indexState = { status: 'damaged', detail: c.reason };
        this.warn(
          `the store index ${file} is damaged (${c.reason}); working from the node and run records alone. Run 'trendc cache verify --repair' to rebuild it`,
        );
        return;
      }
    } else if (!canWrite) {
      this.indexState = { status: 'missing' };
      return;
    }
    try {
      if (canWrite && this.indexDir !== this.root) this.prepareIndexDir();
      this.index = Index.open(this.indexDir, !canWrite);
      this.indexState = { status: 'ok' };
      // Run records left by a version that indexed them (they are read from their files now).
      if (canWrite && this.index.keys('runs').length) this.index.clear('runs');
    } catch (e) {
      this.indexState = { status: 'unavailable', detail: (e as Error)?.message ?? String(e) };
    }
  }

  /**
   * Why this process may not use its index: an index directory outside the store that names
   * another store (in its file `trend-store`), or the index inside a shared store while a live
   * process on another host uses it (LMDB must not be shared by hosts).
   */
  private indexRefusal(): string | undefined {
    if (this.indexDir !== this.root) {
      let owner: string | undefined;
      try {
        owner = readFileSync(join(this.indexDir, 'trend-store'), 'utf8').trim();
      } catch {
        return undefined; // a new index directory
      }
      return owner && owner !== this.root
        ? `the index directory ${this.indexDir} belongs to the store at ${owner}, not ${this.root} (give each store its own TREND_INDEX_DIR)`
        : undefined;
    }
    for (const f of readdirQuiet(this.path('locks'))) {
      const o = registrationOwner(f);
      if (!o || isThisHost(o) || readQuiet(this.path('locks', f)) !== 'index=store' || !ownerAlive(o, [this.path('locks', f)])) continue;
      return `the index inside the store ${this.root} is in use by ${ownerLabel(o)}, and LMDB must not be shared by hosts (give each host a local TREND_INDEX_DIR)`;
    }
    return undefined;
  }

  /** Creates an index directory outside the store, marks it as this store's, clears leftovers. */
  private prepareIndexDir(): void {
    mkdirs(this.indexDir);
    const mark = join(this.indexDir, 'trend-store');
    if (!existsSync(mark)) writeAtomic(mark, `${this.root}\n`, this.indexDir);
    for (const f of readdirQuiet(this.indexDir)) {
      const t = f.startsWith('rebuild-') ? parseTempName(f.slice(8)) : undefined;
      if (t && !ownerAlive(t.owner, [join(this.indexDir, f)])) rmSync(join(this.indexDir, f), { recursive: true, force: true });
    }
  }

  /** Makes sure the store exists and can be written; creates it at the first write. */
  private ensureWritable(): void {
    if (this.closed) throw new StoreError(`the store at ${this.root} is closed`);
    if (this.readOnly) throw new StoreError(`the store at ${this.root} was opened read-only`);
    if (this.writeBlock) throw new StoreError(this.writeBlock);
    if (this.exists) {
      if (!this.registered) this.register();
      if (this.writeBlock) throw new StoreError(this.writeBlock);
      if (!this.dirsChecked) {
        for (const d of ['tmp', 'locks', 'objects', 'nodes', 'runs']) mkdirs(this.path(d));
        this.dirsChecked = true;
      }
      return;
    }
    try {
      mkdirs(this.root);
      mkdirs(this.path('tmp'));
      mkdirs(this.path('locks'));
      if (!existsSync(this.path('FORMAT'))) writeAtomic(this.path('FORMAT'), `${STORE_FORMAT}\n`, this.path('tmp'));
      for (const d of ['objects', 'nodes', 'runs']) mkdirs(this.path(d));
    } catch (e) {
      const err = ioError(e, 'creating', this.root);
      throw new StoreError(`cannot create the store at ${this.root}: ${err.message}`, err.exitCode, err.code);
    }
    this.exists = true;
    this.dirsChecked = true;
    this.register();
    if (this.writeBlock) throw new StoreError(this.writeBlock);
    // Another process may have made the store meanwhile and be rebuilding its index: then this
    // one goes on from the record files.
    if (this.holder('maintenance') === undefined) this.openIndex();
  }

  /** The live process (not this one) holding locks/<name>, if any: by pid here, by lease elsewhere. */
  private holder(name: string): Owner | undefined {
    return liveHolder(this.root, name);
  }

  private async waitForLock(name: string, limitMs = 600_000): Promise<void> {
    const t0 = Date.now();
    while (this.holder(name) !== undefined) {
      if (Date.now() - t0 > limitMs)
        throw new StoreError(`the store at ${this.root} is held by ${ownerLabel(this.holder(name))} (locks/${name}) for over ${limitMs / 1000} s`);
      await sleep(50);
    }
  }

  /** A run calls this after writing its start record: it waits while a `cache gc` collects. */
  async waitForGc(): Promise<void> {
    await this.waitForLock('gc');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.index?.close();
    if (this.registered) {
      letGo(this.procFile);
      unlinkQuiet(this.procFile);
    }
    this.registered = false;
  }

  private indexFailed(): void {
    if (this.index?.failed && !this.warnedIndex) {
      this.warnedIndex = true;
      this.warn(`the store index could not be used (${this.index.failed}); going on from the record files`);
    }
  }

  // ------------------------------------------------------------------ node records
  /**
   * Reads a node record through the index: the index entry if it matches the file, else the file.
   * `st`: the file's identity when the caller has just taken it.
   */
  private record<T>(key: string, file: string, st = fileStamp(file)): T | undefined {
    if (!st) return undefined;
    const e = this.index?.get<T>('nodes', key);
    this.indexFailed();
    if (e && e.st === st) return e.v;
    const v = readRecordFile<T>(file);
    if (v === undefined) return undefined;
    if (this.registered && this.index && !this.index.readOnly) {
      this.index.put('nodes', key, { st, v });
      this.indexFailed();
    }
    return v;
  }

  /** Writes a node record file, then its index entry. */
  private writeRecord(key: string, file: string, v: unknown): void {
    this.writeRecordFile(file, v);
    const st = fileStamp(file);
    if (st && this.index) {
      this.index.put('nodes', key, { st, v });
      this.indexFailed();
    }
  }

  private removeRecord(key: string, file: string): void {
    unlinkRecord(file);
    this.index?.remove('nodes', key);
    this.indexFailed();
  }

  // ------------------------------------------------------------------ nodes
  has(key: string): boolean {
    if (!this.exists || !KEY_RE.test(key)) return false;
    const file = this.nodePath(key);
    const st = fileStamp(file);
    if (st === undefined) return false;
    if (this.present.get(key) === st) return true;
    const found = this.record<NodeMeta>(key, file, st)?.key === key;
    if (found) this.present.set(key, st);
    return found;
  }

  meta(key: string): NodeMeta | undefined {
    if (!this.exists || !KEY_RE.test(key)) return undefined;
    const m = this.record<NodeMeta>(key, this.nodePath(key));
    return m && m.key === key ? m : undefined;
  }

  /** The payload, verified against its checksum; undefined when missing or corrupt. */
  read(key: string, verify = true): Uint8Array | undefined {
    const m = this.meta(key);
    if (!m) return undefined;
    return this.objects.read(m.checksum, verify);
  }

  /**
   * Stores a payload and its metadata. The payload is durable (file fsynced and renamed) before
   * the record that points at it is written, so a crash at any moment leaves either no entry or a
   * complete one. While the payload has no record yet, a temporary root keeps gc off it.
   */
  put(meta: Omit<NodeMeta, 'bytes' | 'checksum' | 'where'>, bytes: Uint8Array): NodeMeta {
    if (!KEY_RE.test(meta.key)) throw new StoreError(`invalid node key '${meta.key}'`);
    this.ensureWritable();
    const checksum = checksumBytes(bytes);
    const root = this.path('tmp', tempName(`root-${checksum}.${this.rootSeq++}`));
    createEmpty(root);
    try {
      this.objects.write(checksum, bytes);
      const full: NodeMeta = { ...meta, bytes: bytes.length, checksum, where: 'file' };
      this.writeRecord(meta.key, this.nodePath(meta.key), full);
      return full;
    } finally {
      unlinkQuiet(root);
    }
  }

  deleteNode(key: string): void {
    if (!this.exists || !KEY_RE.test(key)) return;
    this.ensureWritable();
    this.removeRecord(key, this.nodePath(key));
  }

  /** The keys of all node records (from the record files, not the index). */
  nodeKeys(): string[] {
    const out: string[] = [];
    for (const sub of readdirQuiet(this.path('nodes'))) {
      for (const f of readdirQuiet(this.path('nodes', sub))) if (f.endsWith('.json')) out.push(f.slice(0, -5));
    }
    return out.sort();
  }

  *nodes(): Generator<NodeMeta> {
    for (const k of this.nodeKeys()) {
      const m = this.meta(k);
      if (m) yield m;
    }
  }

  /** Keys that start with a prefix (for `cache show 3fa2`). */
  findKeys(prefix: string): string[] {
    if (!/^[0-9A-Za-z_-]*$/.test(prefix)) return [];
    const subs = prefix.length >= 2 ? [prefix.slice(0, 2)] : readdirQuiet(this.path('nodes'));
    const out: string[] = [];
    for (const sub of subs) {
      for (const f of readdirQuiet(this.path('nodes', sub))) {
        const k = f.slice(0, -5);
        if (f.endsWith('.json') && k.startsWith(prefix) && this.meta(k)) out.push(k);
      }
    }
    return out.sort();
  }

  // ------------------------------------------------------------------ runs
  putRun(run: RunRecord): void {
    if (!KEY_RE.test(run.id)) throw new StoreError(`invalid run id '${run.id}'`);
    this.ensureWritable();
    // Run records are read from their files alone: they grow with the pipeline and with every
    // run, and an index holding them would make every process's check of it grow with history.
    this.writeRecordFile(this.runPath(run.id), run.host ? run : { ...run, host: currentHost() });
  }

  getRun(id: string): RunRecord | undefined {
    if (!this.exists || !KEY_RE.test(id)) return undefined;
    const r = readRecordFile<RunRecord>(this.runPath(id));
    // A record of another shape (hand-edited, cut short) is not a run: `cache verify` reports it.
    return r && r.id === id && Array.isArray(r.nodes) && typeof r.startedAt === 'string' && typeof r.pipeline === 'string' ? r : undefined;
  }

  runIds(): string[] {
    return readdirQuiet(this.path('runs'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .sort();
  }

  /**
   * All runs, oldest first; a run whose process died while running reads as interrupted: on this
   * host when its pid is gone, on another when its registration (locks/proc-<pid>@<host>) is gone
   * or its lease has run out.
   */
  runs(pipeline?: string): RunRecord[] {
    const out: RunRecord[] = [];
    // Oldest first by start time, then id: ids made before 2026-12 carry whole seconds and a
    // random suffix, so two runs started in one second did not sort by their ids (a gc that
    // keeps the newest run then kept the older one and deleted the newer one's nodes).
    for (const id of this.runIds()) {
      const value = this.getRun(id);
      if (!value) continue;
      if (pipeline && value.pipeline !== pipeline) continue;
      if (value.status === 'running' && !this.runAlive(value)) value.status = 'interrupted';
      out.push(value);
    }
    return out.sort(runOrder);
  }

  private runAlive(r: RunRecord): boolean {
    const o: Owner = { host: r.host ?? currentHost(), pid: r.pid };
    return ownerAlive(o, [this.path('locks', registrationName(o))]);
  }

  deleteRun(id: string): void {
    if (!this.exists || !KEY_RE.test(id)) return;
    this.ensureWritable();
    unlinkRecord(this.runPath(id));
  }

  // ------------------------------------------------------------------ memo
  /** Memoised small facts (file hashes); kept in the index only, so lost when it is rebuilt. */
  memoGet(k: string): string | undefined {
    const v = this.index?.get<string>('memo', k)?.v;
    this.indexFailed();
    return v;
  }

  /** A no-op where the index is not writable or the store does not exist yet. */
  memoPut(k: string, v: string): void {
    if (!this.index || this.index.readOnly || Buffer.byteLength(k) > 400) return;
    this.index.put('memo', k, { st: '', v });
    this.indexFailed();
  }

  // ------------------------------------------------------------------ maintenance
  stats(): {
    nodes: number;
    byOp: Record<string, { count: number; bytes: number }>;
    payloadBytes: number;
    runs: number;
    dbBytes: number;
    storeBytes: number;
    index: IndexState;
  } {
    let nodes = 0;
    let payloadBytes = 0;
    const byOp: Record<string, { count: number; bytes: number }> = {};
    for (const m of this.nodes()) {
      nodes++;
      payloadBytes += m.bytes;
      const o = (byOp[m.op] ??= { count: 0, bytes: 0 });
      o.count++;
      o.bytes += m.bytes;
    }
    let dbBytes = 0;
    try {
      if (this.useIndex) dbBytes = statSync(join(this.indexDir, 'data.mdb')).size;
    } catch {
      // no index
    }
    return { nodes, byOp, payloadBytes, runs: this.runIds().length, dbBytes, storeBytes: this.exists ? dirBytes(this.root) : 0, index: this.indexStatus };
  }

  /**
   * Checks the index (structure and values), every node record and its payload, and every run
   * record. With repair: drops broken node records (they recompute) and unreadable run records,
   * removes what dead processes left (temporary files, locks), and rebuilds the index from the
   * records when it is damaged, missing or out of date.
   */
  async verify(repair = false): Promise<VerifyResult> {
    if (repair) this.ensureWritable();
    const index = this.verifyIndexState();
    const keys = this.nodeKeys();
    const referenced = new Set<string>();
    const broken = this.verifyNodes(keys, referenced);
    const runIds = this.runIds();
    const brokenRuns = this.verifyRuns(runIds);
    const stale = index.status === 'ok' && this.index?.usable ? this.staleIndexEntries(keys) : 0;
    let orphanObjects = 0;
    for (const o of this.objects.list()) if (!referenced.has(o.address)) orphanObjects++;
    const result: VerifyResult = {
      checked: keys.length,
      broken,
      runsChecked: runIds.length,
      brokenRuns,
      orphanObjects,
      tempFiles: 0,
      staleLocks: 0,
      index: { ...index, stale, rebuilt: false },
    };
    if (!repair) return result;
    await this.repairVerified(result);
    return result;
  }

  /** The index's state for verify: the structural and value check of data.mdb, if it exists. */
  private verifyIndexState(): IndexState {
    if (!this.useIndex) return { status: 'off', detail: 'opened without an index' };
    if (this.indexRefused) return { status: 'unavailable', detail: this.indexRefused };
    if (this.indexState.status === 'damaged' && !existsSync(this.path('FORMAT'))) return this.indexState;
    if (existsSync(join(this.indexDir, 'data.mdb'))) {
      const c = checkIndex(this.indexDir);
      if (!c.ok) return { status: c.busy ? 'unavailable' : 'damaged', detail: c.reason };
      return this.index?.failed ? { status: 'unavailable', detail: this.index.failed } : { status: 'ok' };
    }
    return { status: 'missing' };
  }

  /** Checks each node record and its payload; adds the payloads named to `referenced`. */
  private verifyNodes(keys: string[], referenced: Set<string>): VerifyResult['broken'] {
    const broken: VerifyResult['broken'] = [];
    for (const key of keys) {
      const file = this.nodePath(key);
      let m: NodeMeta | undefined;
      try {
        m = decodeRecord<NodeMeta>(readFileSync(file, 'utf8'));
      } catch (e) {
        if (errno(e) === 'ENOENT') continue;
        if (errno(e)) throw ioError(e, 'reading', file);
      }
      if (!m || typeof m !== 'object' || typeof m.checksum !== 'string') {
        broken.push({ key, op: '?', why: `record ${file} is unreadable` });
        continue;
      }
      if (m.key !== key) {
        broken.push({ key, op: m.op, why: `record ${file} names another key` });
        continue;
      }
      referenced.add(m.checksum);
      if (!this.objects.has(m.checksum)) broken.push({ key, op: m.op, why: 'payload missing' });
      else if (!this.objects.read(m.checksum, true)) broken.push({ key, op: m.op, why: 'checksum mismatch (corrupt or truncated payload)' });
    }
    return broken;
  }

  /** Checks each run record. */
  private verifyRuns(runIds: string[]): VerifyResult['brokenRuns'] {
    const brokenRuns: VerifyResult['brokenRuns'] = [];
    for (const id of runIds) {
      try {
        const r = decodeRecord<RunRecord>(readFileSync(this.runPath(id), 'utf8'));
        if (!r || r.id !== id || !Array.isArray(r.nodes)) brokenRuns.push({ id, why: 'record does not describe this run' });
      } catch (e) {
        if (errno(e) === 'ENOENT') continue;
        if (errno(e)) throw ioError(e, 'reading', this.runPath(id));
        brokenRuns.push({ id, why: 'record is unreadable' });
      }
    }
    return brokenRuns;
  }

  /**
   * Index entries that do not match their record file (stale) or records with no entry, except
   * records too large to index (read from their files by design).
   */
  private staleIndexEntries(keys: string[]): number {
    let stale = 0;
    const have = new Set(this.index!.keys('nodes'));
    const stored = new Set(keys);
    for (const k of keys) {
      const file = this.nodePath(k);
      if (have.has(k)) {
        if (this.index!.get('nodes', k)?.st !== fileStamp(file)) stale++;
        continue;
      }
      const st = fileStamp(file);
      const v = st && readRecordFile<unknown>(file);
      if (st && v !== undefined && sealEntry(Buffer.from(k, 'utf8'), { st, v })) stale++;
    }
    for (const k of have) if (!stored.has(k)) stale++;
    // Run records are no longer indexed: entries an older version wrote are stale.
    return stale + this.index!.keys('runs').length;
  }

  /**
   * verify's repair: drops the broken records (and a node's payload that fails its checksum),
   * removes what dead processes left, and rebuilds the index when it needs it. Updates `result`.
   */
  private async repairVerified(result: VerifyResult): Promise<void> {
    for (const b of result.broken) {
      const m = (() => {
        try {
          return decodeRecord<NodeMeta>(readFileSync(this.nodePath(b.key), 'utf8'));
        } catch {
          return undefined;
        }
      })();
      this.removeRecord(b.key, this.nodePath(b.key));
      if (m?.checksum && typeof m.checksum === 'string' && /^[0-9a-f]+$/.test(m.checksum) && !this.objects.read(m.checksum, true))
        this.objects.remove(m.checksum);
    }
    for (const b of result.brokenRuns) unlinkRecord(this.runPath(b.id));
    result.tempFiles = this.objects.cleanTemp();
    result.staleLocks = this.locks.cleanStale() + this.cleanProcFiles();
    const rebuild = result.index.status !== 'ok' || result.index.stale > 0 || !existsSync(this.path('FORMAT'));
    if (rebuild && this.useIndex && !this.indexRefused) {
      const why = await this.rebuildIndex();
      if (why) result.index.notRebuilt = why;
      else result.index.rebuilt = true;
    }
  }

  /**
   * Other live processes that have this store open, on any host (judged as owner.ts says).
   * scope 'index': only those that use this process's index (a rebuild replaces it under them):
   * processes opened without an index and other hosts' local indexes do not count.
   */
  otherUsers(scope: 'store' | 'index' = 'store'): Owner[] {
    const out: Owner[] = [];
    for (const f of readdirQuiet(this.path('locks'))) {
      const o = registrationOwner(f);
      if (!o || isSelf(o) || !ownerAlive(o, [this.path('locks', f)])) continue;
      if (scope === 'index' && !this.usesMyIndex(o, readQuiet(this.path('locks', f)))) continue;
      out.push(o);
    }
    return out;
  }

  /** Whether the user `o`, whose registration says `content`, uses this process's index. */
  private usesMyIndex(o: Owner, content: string | undefined): boolean {
    if (!content?.startsWith('index=')) return true; // older versions, or being written: assume so
    const theirs = content.slice(6);
    if (theirs === 'none' || this.indexMode === 'none') return false;
    return theirs === this.indexMode && (theirs === 'store' || isThisHost(o));
  }

  /** Removes the registrations of users that are gone (another host's: lease run out). */
  private cleanProcFiles(): number {
    let n = 0;
    for (const f of readdirQuiet(this.path('locks'))) {
      const o = registrationOwner(f);
      if (o && !isSelf(o) && !ownerAlive(o, [this.path('locks', f)])) {
        unlinkQuiet(this.path('locks', f));
        n++;
      }
    }
    return n;
  }

  /**
   * Rebuilds the index from the record files: a new environment is written under tmp/, then
   * renamed over data.mdb, and lock.mdb is removed (the next opener makes a fresh one). Needs
   * the maintenance lock and no other user; returns why not otherwise. The index is not reopened
   * in this process (lmdb-js keeps one native environment per path, which could serve a snapshot
   * of the old file): the process goes on from the record files.
   */
  private async rebuildIndex(haveLock = false): Promise<string | undefined> {
    if (!this.useIndex) return 'the store was opened without an index';
    if (this.indexRefused) return this.indexRefused;
    const locks = this.lockDirectory();
    if (!haveLock && !locks.tryAcquire('maintenance')) return `another process (${ownerLabel(locks.holder('maintenance'))}) is maintaining the store`;
    try {
      const others = this.otherUsers('index');
      if (others.length) return `other processes use the index (${others.map(ownerLabel).join(', ')}); rerun when they have finished`;
      const memo = this.index?.usable ? this.index.memoEntries() : [];
      await this.index?.close();
      this.index = undefined;
      const entries = this.recordEntries();
      for (const [key, e] of memo) entries.push({ db: 'memo', key, e });
      await this.replaceIndex(entries);
      this.indexState = { status: 'ok', detail: 'rebuilt' };
      return undefined;
    } finally {
      if (!haveLock) locks.release('maintenance');
    }
  }

  /** Index entries for every readable node record file (run records are not indexed). */
  private recordEntries(): Array<{ db: IndexDb; key: string; e: Entry<unknown> }> {
    const entries: Array<{ db: IndexDb; key: string; e: Entry<unknown> }> = [];
    for (const key of this.nodeKeys()) {
      const file = this.nodePath(key);
      const st = fileStamp(file);
      try {
        const v = decodeRecord<Record<string, unknown>>(readFileSync(file, 'utf8'));
        if (st && v?.key === key) entries.push({ db: 'nodes', key, e: { st, v } });
      } catch {
        // unreadable: verify reports it
      }
    }
    return entries;
  }

  /**
   * Writes a new index beside the old one (tmp/ for the store's own index, the index directory
   * for one outside the store: a rename does not cross file systems) and renames it into place.
   */
  private async replaceIndex(entries: Array<{ db: IndexDb; key: string; e: Entry<unknown> }>): Promise<void> {
    const inside = this.indexDir === this.root;
    // A new name each time: lmdb-js keeps environments by path within a process.
    const hex = randomBytes(4).toString('hex');
    const tmp = inside ? this.path('tmp', tempName(`index-${hex}`)) : join(this.indexDir, `rebuild-${tempName(hex)}`);
    const file = join(this.indexDir, 'data.mdb');
    try {
      if (!inside) this.prepareIndexDir();
      await buildIndex(tmp, entries);
      if (!existsSync(this.path('FORMAT'))) writeAtomic(this.path('FORMAT'), `${STORE_FORMAT}\n`, this.path('tmp'));
      renameSync(join(tmp, 'data.mdb'), file);
      unlinkQuiet(join(this.indexDir, 'lock.mdb'));
    } catch (e) {
      throw ioError(e, 'writing', file);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Removes what no kept run reaches. A kept run reaches every node it planned, whatever the node's
   * status there: a run that failed, was interrupted (even by kill -9, before it could record
   * what it computed) or skipped a node still describes nodes its pipeline needs, and whatever of
   * them is stored stays. keepRuns: per pipeline, the newest N complete runs (status ok, not
   * `--only`) are kept, and every run newer than the oldest of them. maxSize: older runs are
   * dropped until the payloads the kept runs reach fit, but never the newest complete run of a
   * pipeline (nor what came after it): `overSize` says when the store still does not fit. Every
   * node of a live run is kept, whatever its status. When no other process uses the store, the
   * index is then rebuilt, which compacts it (LMDB never shrinks its file otherwise).
   */
  async gc(opts: { keepRuns?: number; maxSize?: number } = {}): Promise<{
    runsRemoved: number;
    nodesRemoved: number;
    objectsRemoved: number;
    bytesBefore: number;
    bytesAfter: number;
    compacted: boolean;
    overSize?: true;
  }> {
    this.ensureWritable();
    if (!this.locks.tryAcquire('gc')) throw new StoreError(`another 'trendc cache gc' is running on ${this.root} (${ownerLabel(this.locks.holder('gc'))})`);
    let runsRemoved = 0;
    let nodesRemoved = 0;
    let objectsRemoved = 0;
    let overSize = false;
    const bytesBefore = dirBytes(this.root);
    try {
      // Order matters (see the header): node records, then payloads, then temporary roots are
      // listed before the run records are read and before the records are read again.
      const listedKeys = this.nodeKeys();
      const listedObjects = [...this.objects.list()];
      const tempRoots = this.liveTempRoots();
      const all = this.runs();
      const live = all.filter((r) => r.status === 'running');
      const runs = all.filter((r) => r.status !== 'running'); // oldest first
      const liveKeys = live.flatMap((r) => r.nodes.map((n) => n.key));
      const reach = (rs: RunRecord[]) => new Set(rs.flatMap((r) => r.nodes.map((n) => n.key)).concat(liveKeys));
      // Each record read once, however many sets of runs --max-size weighs.
      const bytes = new Map<string, number>();
      const bytesOf = (k: string) => bytes.get(k) ?? bytes.set(k, this.meta(k)?.bytes ?? 0).get(k)!;
      const sizeOf = (rs: RunRecord[]) => [...reach(rs)].reduce((s, k) => s + bytesOf(k), 0);
      const chosen = keptRuns(runs, opts, sizeOf);
      const kept = chosen.kept;
      overSize = chosen.overSize;
      const keptIds = new Set(kept.map((r) => r.id));
      for (const r of runs) {
        if (!keptIds.has(r.id)) {
          this.deleteRun(r.id);
          runsRemoved++;
        }
      }
      const reachable = reach(kept);
      for (const k of listedKeys) {
        if (!reachable.has(k)) {
          this.deleteNode(k);
          nodesRemoved++;
        }
      }
      const referenced = new Set<string>();
      for (const k of this.nodeKeys()) {
        try {
          const m = decodeRecord<NodeMeta>(readFileSync(this.nodePath(k), 'utf8'));
          if (typeof m?.checksum === 'string') referenced.add(m.checksum);
        } catch {
          // removed meanwhile, or unreadable (verify reports it)
        }
      }
      for (const o of listedObjects) {
        if (!referenced.has(o.address) && !tempRoots.has(o.address)) {
          this.objects.remove(o.address);
          objectsRemoved++;
        }
      }
    } finally {
      this.locks.release('gc');
    }
    this.objects.cleanTemp();
    this.locks.cleanStale();
    this.cleanProcFiles();
    const compacted = this.useIndex && this.otherUsers('index').length === 0 && (await this.rebuildIndex()) === undefined;
    return {
      runsRemoved,
      nodesRemoved,
      objectsRemoved,
      bytesBefore,
      bytesAfter: dirBytes(this.root),
      compacted,
      ...(overSize ? { overSize: true as const } : {}),
    };
  }

  /** The payloads that live writers are storing (tmp/<owner>+root-<address>.<n>). */
  private liveTempRoots(): Set<string> {
    const out = new Set<string>();
    for (const f of readdirQuiet(this.path('tmp'))) {
      const t = parseTempName(f);
      const m = t && /^root-([0-9a-f]+)\.\d+$/.exec(t.rest);
      if (m && ownerAlive(t.owner, [this.path('tmp', f), this.path('locks', registrationName(t.owner))])) out.add(m[1]!);
    }
    return out;
  }

  // ------------------------------------------------------------------ format 1 stores
  /**
   * A store written before format 2 kept node and run records (and payloads under 64 KiB) only in
   * LMDB. They are written out as files once, then the index is rebuilt. Needs a writable store
   * and no other user; a damaged old index cannot be read, and is then treated as a damaged index
   * (its node records are lost and recompute; `cache verify --repair` starts it afresh).
   */
  private async migrateLegacy(): Promise<void> {
    const file = this.path('data.mdb');
    if (!this.useIndex)
      throw new StoreError(`the store at ${this.root} is in an older format (records inside ${file}); open it once with its index to upgrade it`);
    const c = checkMdb(file);
    if (!c.ok && c.busy)
      throw new StoreError(
        `the store at ${this.root} is in an older format and another process is writing its index ${file} (${c.reason}); open it again when that process is done`,
      );
    if (!c.ok) {
      this.indexState = { status: 'damaged', detail: `a format-1 index: ${c.reason}` };
      this.warn(
        `the store index ${file} is damaged (${c.reason}); its records cannot be read. Run 'trendc cache verify --repair' to start the index afresh (payload files are kept; nodes recompute)`,
      );
      return;
    }
    // An upgrade rewrites no content, so a read-only open may do it where the file system allows.
    if (this.writeBlock || !this.registered)
      throw new StoreError(
        `the store at ${this.root} is in an older format and cannot be upgraded here (${this.writeBlock ?? 'cannot register as a user'}); open it once with write access`,
      );
    const locks = this.lockDirectory();
    if (!locks.tryAcquire('maintenance')) {
      await this.waitForLock('maintenance');
      return this.attach();
    }
    try {
      const others = this.otherUsers();
      if (others.length)
        throw new StoreError(
          `the store at ${this.root} is in an older format and is in use by ${others.map(ownerLabel).join(', ')}; rerun when they have finished, to upgrade it`,
        );
      const env = openLmdb({ path: this.root, maxDbs: 8, compression: false, overlappingSync: false, noSubdir: false });
      try {
        const nodes = env.openDB<NodeMeta, string>({ name: 'nodes', encoding: 'msgpack' });
        const blobs = env.openDB<Buffer, string>({ name: 'blobs', encoding: 'binary' });
        const runs = env.openDB<RunRecord, string>({ name: 'runs', encoding: 'msgpack' });
        mkdirs(this.path('tmp'));
        for (const d of ['objects', 'nodes', 'runs']) mkdirs(this.path(d));
        for (const { value } of nodes.getRange()) {
          if (!value || !KEY_RE.test(value.key)) continue;
          if (value.where === 'inline') {
            const b = blobs.get(value.checksum);
            if (!b || checksumBytes(b) !== value.checksum) continue;
            this.objects.write(value.checksum, b);
          }
          this.writeRecordFile(this.nodePath(value.key), { ...value, where: 'file' });
        }
        for (const { value } of runs.getRange()) if (value && KEY_RE.test(value.id)) this.writeRecordFile(this.runPath(value.id), value);
      } finally {
        await env.close();
      }
      const why = await this.rebuildIndex(true);
      if (why) throw new StoreError(`upgrading the store at ${this.root}: ${why}`);
      // The old index inside the store is now copied out; an index elsewhere replaces it.
      if (this.indexDir !== this.root) for (const f of ['data.mdb', 'lock.mdb']) unlinkQuiet(this.path(f));
    } finally {
      locks.release('maintenance');
    }
    this.indexState = { status: 'missing', detail: 'rebuilt after an upgrade; reopened by the next process' };
  }

  private writeRecordFile(file: string, v: unknown): void {
    mkdirs(join(file, '..'));
    writeAtomic(file, encodeRecord(v), this.path('tmp'));
  }
}

/** A small file's text, or undefined if it cannot be read. */
function readQuiet(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function dirBytes(dir: string): number {
  let total = 0;
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    try {
      if (e.isDirectory()) total += dirBytes(p);
      else if (e.isFile()) total += statSync(p).size;
    } catch {
      // removed meanwhile
    }
  }
  return total;
}
