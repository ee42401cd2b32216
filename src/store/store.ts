/**
 * The artifact store: an LMDB environment (data format V1, readable by the standard mdb_* tools)
 * plus content-addressed payload files. Like Nix's store it knows nothing of what it stores:
 * a node key maps to metadata (kept apart from payload) and a payload addressed by its checksum.
 *
 *   cache/data.mdb, lock.mdb   LMDB: `nodes` (key -> metadata), `blobs` (address -> small payload),
 *                              `runs` (run id -> run record), `memo` (small derived facts)
 *   cache/objects/ab/<addr>    payloads larger than INLINE_LIMIT
 *   cache/tmp/                 partial writes (removed when their writer is gone)
 *   cache/locks/               per-node locks and the registry of processes using the store
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { open, type Database, type RootDatabase } from 'lmdb';
import { checksumBytes, initHash } from '../compiler/hash.js';
import { LockDir } from './locks.js';
import { alive, ObjectDir } from './objects.js';

export const INLINE_LIMIT = 64 * 1024;

/** Plain LMDB commits (no overlapping sync) and uncompressed values, so mdb_* tools read the file. */
const ENV_OPTIONS = { maxDbs: 8, compression: false, overlappingSync: false } as const;

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
}

export interface RunRecord {
  id: string;
  pipeline: string;
  textHash: string;
  source: string;
  pid: number;
  startedAt: string;
  endedAt?: string;
  status: 'running' | 'ok' | 'failed' | 'interrupted';
  backend?: string;
  packageVersion: string;
  nodes: RunNode[];
  reportDir?: string;
}

export class Store {
  readonly root: string;
  readonly objects: ObjectDir;
  readonly locks: LockDir;
  private readonly env: RootDatabase;
  private closed = false;
  private readonly nodesDb: Database<NodeMeta, string>;
  private readonly blobsDb: Database<Buffer, string>;
  private readonly runsDb: Database<RunRecord, string>;
  private readonly memoDb: Database<string, string>;
  private readonly procFile: string;

  private constructor(root: string) {
    this.root = resolve(root);
    mkdirSync(this.root, { recursive: true });
    this.objects = new ObjectDir(this.root);
    this.locks = new LockDir(this.root);
    this.env = open({ path: this.root, ...ENV_OPTIONS });
    this.nodesDb = this.env.openDB<NodeMeta, string>({ name: 'nodes', encoding: 'msgpack' });
    this.blobsDb = this.env.openDB<Buffer, string>({ name: 'blobs', encoding: 'binary' });
    this.runsDb = this.env.openDB<RunRecord, string>({ name: 'runs', encoding: 'msgpack' });
    this.memoDb = this.env.openDB<string, string>({ name: 'memo', encoding: 'string' });
    this.procFile = join(this.locks.dir, `proc-${process.pid}`);
    writeFileSync(this.procFile, String(process.pid));
  }

  static async open(root: string): Promise<Store> {
    await initHash();
    return new Store(root);
  }

  async close(): Promise<void> {
    try {
      unlinkSync(this.procFile);
    } catch {
      // already gone
    }
    if (!this.closed) await this.env.close();
    this.closed = true;
  }

  // ------------------------------------------------------------------ nodes
  has(key: string): boolean {
    return this.nodesDb.doesExist(key);
  }

  meta(key: string): NodeMeta | undefined {
    return this.nodesDb.get(key);
  }

  /** The payload, verified against its checksum; undefined when missing or corrupt. */
  read(key: string, verify = true): Uint8Array | undefined {
    const m = this.meta(key);
    if (!m) return undefined;
    return this.readPayload(m, verify);
  }

  private readPayload(m: NodeMeta, verify: boolean): Uint8Array | undefined {
    if (m.where === 'file') return this.objects.read(m.checksum, verify);
    const b = this.blobsDb.get(m.checksum);
    if (!b) return undefined;
    if (verify && checksumBytes(b) !== m.checksum) return undefined;
    return b;
  }

  /**
   * Stores a payload and its metadata. The payload is durable (file fsynced and renamed, or in
   * the same LMDB transaction) before the metadata that points at it is committed, so a crash at
   * any moment leaves either no entry or a complete one.
   */
  put(meta: Omit<NodeMeta, 'bytes' | 'checksum' | 'where'>, bytes: Uint8Array): NodeMeta {
    const checksum = checksumBytes(bytes);
    const where: NodeMeta['where'] = bytes.length > INLINE_LIMIT ? 'file' : 'inline';
    if (where === 'file') this.objects.write(checksum, bytes);
    const full: NodeMeta = { ...meta, bytes: bytes.length, checksum, where };
    this.env.transactionSync(() => {
      if (where === 'inline') this.blobsDb.putSync(checksum, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      this.nodesDb.putSync(meta.key, full);
    });
    return full;
  }

  deleteNode(key: string): void {
    this.env.transactionSync(() => this.nodesDb.removeSync(key));
  }

  *nodes(): Generator<NodeMeta> {
    for (const { value } of this.nodesDb.getRange()) yield value;
  }

  /** Keys that start with a prefix (for `cache show 3fa2`). */
  findKeys(prefix: string): string[] {
    const out: string[] = [];
    for (const k of this.nodesDb.getKeys({ start: prefix })) {
      if (!k.startsWith(prefix)) break;
      out.push(k);
    }
    return out;
  }

  // ------------------------------------------------------------------ runs
  putRun(run: RunRecord): void {
    this.env.transactionSync(() => this.runsDb.putSync(run.id, run));
  }

  getRun(id: string): RunRecord | undefined {
    return this.runsDb.get(id);
  }

  /** All runs, oldest first; a run whose process died while running reads as interrupted. */
  runs(pipeline?: string): RunRecord[] {
    const out: RunRecord[] = [];
    for (const { value } of this.runsDb.getRange()) {
      if (pipeline && value.pipeline !== pipeline) continue;
      if (value.status === 'running' && !alive(value.pid)) value.status = 'interrupted';
      out.push(value);
    }
    return out;
  }

  deleteRun(id: string): void {
    this.env.transactionSync(() => this.runsDb.removeSync(id));
  }

  // ------------------------------------------------------------------ memo
  memoGet(k: string): string | undefined {
    return this.memoDb.get(k);
  }
  memoPut(k: string, v: string): void {
    this.env.transactionSync(() => this.memoDb.putSync(k, v));
  }

  // ------------------------------------------------------------------ maintenance
  stats(): { nodes: number; byOp: Record<string, { count: number; bytes: number }>; inlineBytes: number; fileBytes: number; runs: number; dbBytes: number } {
    let nodes = 0;
    let inlineBytes = 0;
    let fileBytes = 0;
    const byOp: Record<string, { count: number; bytes: number }> = {};
    for (const m of this.nodes()) {
      nodes++;
      if (m.where === 'inline') inlineBytes += m.bytes;
      else fileBytes += m.bytes;
      const o = (byOp[m.op] ??= { count: 0, bytes: 0 });
      o.count++;
      o.bytes += m.bytes;
    }
    const dbBytes = statSync(join(this.root, 'data.mdb')).size;
    return { nodes, byOp, inlineBytes, fileBytes, runs: this.runsDb.getKeysCount(), dbBytes };
  }

  /** Checks every payload against its checksum; with repair, drops broken entries so they recompute. */
  verify(repair = false): { checked: number; broken: Array<{ key: string; op: string; why: string }>; orphanObjects: number; tempFiles: number } {
    const broken: Array<{ key: string; op: string; why: string }> = [];
    let checked = 0;
    for (const m of this.nodes()) {
      checked++;
      const present = m.where === 'file' ? this.objects.has(m.checksum) : this.blobsDb.doesExist(m.checksum);
      if (!present) broken.push({ key: m.key, op: m.op, why: 'payload missing' });
      else if (!this.readPayload(m, true)) broken.push({ key: m.key, op: m.op, why: 'checksum mismatch (corrupt or truncated payload)' });
    }
    if (repair) {
      for (const b of broken) {
        const m = this.meta(b.key)!;
        this.deleteNode(b.key);
        if (m.where === 'file') this.objects.remove(m.checksum);
        else this.env.transactionSync(() => this.blobsDb.removeSync(m.checksum));
      }
    }
    const referenced = new Set([...this.nodes()].map((m) => m.checksum));
    let orphanObjects = 0;
    for (const o of this.objects.list()) if (!referenced.has(o.address)) orphanObjects++;
    const tempFiles = repair ? this.objects.cleanTemp() : 0;
    return { checked, broken, orphanObjects, tempFiles };
  }

  /** Other live processes that have this store open. */
  otherUsers(): number[] {
    return readdirSync(this.locks.dir)
      .filter((f) => f.startsWith('proc-'))
      .map((f) => Number(f.slice(5)))
      .filter((pid) => pid !== process.pid && alive(pid));
  }

  /**
   * Removes what no kept run reaches. keepRuns: per pipeline, the newest N runs are kept (all when
   * unset). maxSize: older runs are dropped until the payloads the kept runs reach fit. Payload
   * files are deleted and, when no other process uses the store, the database is compacted, so
   * the disk space is really returned (the store is closed after a compaction).
   */
  async gc(opts: { keepRuns?: number; maxSize?: number } = {}): Promise<{ runsRemoved: number; nodesRemoved: number; objectsRemoved: number; bytesBefore: number; bytesAfter: number; compacted: boolean }> {
    const bytesBefore = dirBytes(this.root);
    const runs = this.runs().filter((r) => r.status !== 'running');
    const active = this.runs().filter((r) => r.status === 'running');
    let kept: RunRecord[] = runs;
    if (opts.keepRuns !== undefined) {
      const byPipeline = new Map<string, RunRecord[]>();
      for (const r of runs) byPipeline.set(r.pipeline, [...(byPipeline.get(r.pipeline) ?? []), r]);
      kept = [...byPipeline.values()].flatMap((rs) => rs.slice(Math.max(0, rs.length - opts.keepRuns!)));
    }
    kept.sort((a, b) => (a.id < b.id ? -1 : 1));
    const reach = (rs: RunRecord[]) => new Set(rs.concat(active).flatMap((r) => r.nodes.filter((n) => n.status === 'cached' || n.status === 'ran').map((n) => n.key)));
    if (opts.maxSize !== undefined) {
      const size = (keys: Set<string>) => [...keys].reduce((s, k) => s + (this.meta(k)?.bytes ?? 0), 0);
      while (kept.length > 0 && size(reach(kept)) > opts.maxSize) kept.shift();
    }
    const keptIds = new Set(kept.map((r) => r.id));
    let runsRemoved = 0;
    for (const r of runs) {
      if (!keptIds.has(r.id)) {
        this.deleteRun(r.id);
        runsRemoved++;
      }
    }
    const reachable = reach(kept);
    let nodesRemoved = 0;
    for (const m of [...this.nodes()]) {
      if (!reachable.has(m.key)) {
        this.deleteNode(m.key);
        nodesRemoved++;
      }
    }
    const referenced = new Set([...this.nodes()].map((m) => m.checksum));
    let objectsRemoved = 0;
    for (const o of [...this.objects.list()]) {
      if (!referenced.has(o.address)) {
        this.objects.remove(o.address);
        objectsRemoved++;
      }
    }
    const deadBlobs = [...this.blobsDb.getKeys()].filter((k) => !referenced.has(k));
    if (deadBlobs.length) this.env.transactionSync(() => deadBlobs.forEach((k) => this.blobsDb.removeSync(k)));
    this.objects.cleanTemp();
    const compacted = this.otherUsers().length === 0 ? await this.compact() : false;
    return { runsRemoved, nodesRemoved, objectsRemoved, bytesBefore, bytesAfter: dirBytes(this.root), compacted };
  }

  /**
   * Rewrites data.mdb without free pages (LMDB never shrinks its file otherwise). The compacting
   * copy is made by a separate Node process: in this process lmdb-js shares one native environment
   * per path, and a copy made through it (or through a handle reopened after close) can read a
   * snapshot from before this process's latest commits, which would undo the collection. The
   * child opens the file afresh and sees every commit. The store is closed afterwards.
   */
  private async compact(): Promise<boolean> {
    const tmp = join(this.root, 'tmp', `compact-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    await this.env.flushed;
    await this.env.close();
    this.closed = true;
    const lmdb = pathToFileURL(createRequire(import.meta.url).resolve('lmdb')).href;
    const script = `const { open } = await import(${JSON.stringify(lmdb)});
const env = open({ path: ${JSON.stringify(this.root)}, ...${JSON.stringify(ENV_OPTIONS)} });
await env.backup(${JSON.stringify(tmp)}, true);
await env.close();`;
    // Asynchronous on purpose: lmdb-js finishes this process's commits on its event loop, and a
    // child started with a blocking spawn waits for them forever.
    await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 600_000 });
    const copy = join(tmp, 'data.mdb');
    if (existsSync(copy) && statSync(copy).size < statSync(join(this.root, 'data.mdb')).size) renameSync(copy, join(this.root, 'data.mdb'));
    rmSync(tmp, { recursive: true, force: true });
    return true;
  }
}

export function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}
