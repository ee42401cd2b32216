/**
 * The dataset identity (part of every key) describes the bytes of the source files: an edit that
 * puts size and mtime back, or another file at the same path, gives another identity even when
 * the hashes are memoised; and the dataset step refuses files that changed after planning.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeCifar } from '../../src/runtime/data/cifar.js';
import { datasetIdentity, hashBytes, MNIST_FILES, mnistDir, type IdentityMemo } from '../../src/runtime/data/files.js';
import { datasetOp } from '../../src/runtime/ops/dataset.js';
import { fakeContext } from '../helpers/runtime.js';

const FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`).concat('test_batch.bin');

/** A CIFAR-10 folder of 2 images a file, pixels and labels from `seed`. */
function cifarDir(seed: number): string {
  const d = mkdtempSync(join(tmpdir(), 'trend-ident-'));
  FILES.forEach((f, i) => {
    const x = Uint8Array.from({ length: 2 * 3072 }, (_, j) => (j * 13 + seed * 101 + i) % 256);
    writeFileSync(join(d, f), encodeCifar(x, Uint8Array.from([(seed + i) % 10, (seed * 3 + i) % 10]), 1));
    utimesSync(join(d, f), 1_700_000_000, 1_700_000_000); // whole seconds: times can be put back exactly
  });
  return d;
}

const mapMemo = (): IdentityMemo & { size: () => number } => {
  const m = new Map<string, string>();
  return { get: (k) => m.get(k), put: (k, v) => void m.set(k, v), size: () => m.size };
};

/** Sets a file's times back to those of `ref` (as `touch -r` does). */
const timesOf = (file: string, ref: { atime: Date; mtime: Date }) => utimesSync(file, ref.atime, ref.mtime);

const cifarParams = (identity: string) => ({ name: 'cifar10', train: 8, test: 2, val: '1/4', seed: 0, shape: [32, 32, 3], classes: 10, identity });

describe('dataset identity', () => {
  it('is the xxHash64 and size of every file, the same with or without a memo', async () => {
    const d = cifarDir(1);
    const id = await datasetIdentity({ name: 'cifar10', path: d });
    const parts = await Promise.all(FILES.map(async (f) => `${f}:${statSync(join(d, f)).size}:${await hashBytes(readFileSync(join(d, f)))}`));
    expect(id).toBe(`cifar10;${parts.join(';')}`);
    const memo = mapMemo();
    expect(await datasetIdentity({ name: 'cifar10', path: d }, memo)).toBe(id);
    expect(memo.size()).toBe(FILES.length);
    expect(await datasetIdentity({ name: 'cifar10', path: d }, memo)).toBe(id);
    // MNIST's files are hashed too (not only the package version and sizes).
    const mnist = await datasetIdentity({ name: 'mnist' });
    const labels = readFileSync(join(mnistDir(), MNIST_FILES.testLabels));
    expect(mnist).toContain(`${MNIST_FILES.testLabels}:${labels.length}:${await hashBytes(labels)}`);
  });

  it('changes when a file is edited in place with its size and mtime put back, memo or not', async () => {
    const d = cifarDir(2);
    const memo = mapMemo();
    const before = await datasetIdentity({ name: 'cifar10', path: d }, memo);
    const f = join(d, 'test_batch.bin');
    const st = statSync(f);
    const b = readFileSync(f);
    b[200] = (b[200]! + 1) % 256;
    writeFileSync(f, b);
    timesOf(f, st);
    expect(statSync(f).mtimeMs).toBe(st.mtimeMs);
    expect(statSync(f).size).toBe(st.size);
    const after = await datasetIdentity({ name: 'cifar10', path: d }, memo);
    expect(after).not.toBe(before);
    expect(after).toBe(await datasetIdentity({ name: 'cifar10', path: d }));
  });

  it('changes when the path leads to other files of the same sizes and times', async () => {
    const a = cifarDir(3);
    const b = cifarDir(4);
    const root = mkdtempSync(join(tmpdir(), 'trend-ident-'));
    const link = join(root, 'data');
    symlinkSync(a, link);
    const memo = mapMemo();
    const ia = await datasetIdentity({ name: 'cifar10', path: link }, memo);
    symlinkSync(b, join(root, 'next'));
    renameSync(join(root, 'next'), link); // the link now leads to b
    const ib = await datasetIdentity({ name: 'cifar10', path: link }, memo);
    expect(ib).not.toBe(ia);
    expect(ib).toBe(await datasetIdentity({ name: 'cifar10', path: b }));
  });

  it('the dataset step fails when the files changed after planning, and reads them when they did not', async () => {
    const d = cifarDir(5);
    const planned = await datasetIdentity({ name: 'cifar10', path: d });
    const ok = await datasetOp(fakeContext(cifarParams(planned), {}, { path: d }));
    expect((ok.artifact.summary as { train: number }).train).toBe(6);
    const f = join(d, 'data_batch_1.bin');
    const b = readFileSync(f);
    b[1] = (b[1]! + 1) % 256;
    writeFileSync(f, b);
    await expect(datasetOp(fakeContext(cifarParams(planned), {}, { path: d }))).rejects.toThrow(/the cifar10 files changed after this run was planned/);
    const replanned = await datasetIdentity({ name: 'cifar10', path: d });
    expect((await datasetOp(fakeContext(cifarParams(replanned), {}, { path: d }))).artifact.summary).toMatchObject({ train: 6, test: 2 });
    mkdirSync(join(d, 'empty'));
    await expect(datasetOp(fakeContext(cifarParams(planned), {}, { path: join(d, 'empty') }))).rejects.toThrow(/no CIFAR binary files at/);
  });
});
