/**
 * File-system helpers for the store: errors that name the path and the reason (disk full,
 * read-only, permission) instead of an errno, atomic writes that leave nothing behind when they
 * fail, and directory creation that cannot loop.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tempName } from './owner.js';

/** A store failure with a message for people: exit 1 (I/O, damage) or 2 (a bad store path). */
export class StoreError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

const READ_ONLY = new Set(['EROFS', 'EACCES', 'EPERM']);

export function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

export function isReadOnlyError(e: unknown): boolean {
  return READ_ONLY.has(errno(e) ?? '');
}

/** Turns an fs error into a StoreError that names what was being done to which path. */
export function ioError(e: unknown, action: 'writing' | 'reading' | 'creating' | 'removing', path: string): StoreError {
  if (e instanceof StoreError) return e;
  const code = errno(e);
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new StoreError(`disk full ${action} ${path}`, 1, code);
    case 'EROFS':
      return new StoreError(`read-only file system: cannot write ${path}`, 1, code);
    case 'EACCES':
    case 'EPERM':
      return new StoreError(`permission denied ${action} ${path}`, 1, code);
    case 'ENOTDIR':
      return new StoreError(`not a directory: ${path} (or one of its parents)`, 2, code);
    case 'ENOENT':
      return new StoreError(`${action} ${path}: no such file or directory`, 1, code);
    default: {
      const msg = (e as Error)?.message ?? String(e);
      return new StoreError(`error ${action} ${path}: ${msg}`, 1, code);
    }
  }
}

export function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some file systems cannot fsync a directory; the rename is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes bytes to `final` atomically: a temporary file in `tmpDir` (named `<pid>@<host>+...`, so
 * a later process can remove it if this one dies), fsynced, then renamed into place. On failure the
 * temporary file is removed and the error names `final`.
 */
export function writeAtomic(final: string, bytes: Uint8Array | string, tmpDir: string): void {
  const tmp = join(tmpDir, tempName(randomBytes(6).toString('hex')));
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, Math.min(1 << 24, data.length - off));
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, final);
  } catch (e) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // closing after a failed write
      }
    }
    unlinkQuiet(tmp);
    throw ioError(e, 'writing', final);
  }
  fsyncDir(dirname(final));
}

/** Creates an empty file exclusively; false if it exists. */
export function createEmpty(path: string): boolean {
  try {
    closeSync(openSync(path, 'wx'));
    return true;
  } catch (e) {
    if (errno(e) === 'EEXIST') return false;
    throw ioError(e, 'writing', path);
  }
}

export function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * mkdir -p without Node's recursive mkdir, which loops forever at 100% CPU on a path such as
 * /proc/x (mkdir gives ENOENT while the parent exists). Each missing component is created once;
 * any failure is a StoreError naming the path.
 */
export function mkdirs(dir: string): void {
  const missing: string[] = [];
  let p = resolve(dir);
  for (;;) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(p).isDirectory();
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw ioError(e, 'creating', p);
      missing.push(p);
      const parent = dirname(p);
      if (parent === p) throw new StoreError(`cannot create ${dir}: no such file or directory`, 1, 'ENOENT');
      p = parent;
      continue;
    }
    if (!isDirectory) throw new StoreError(`not a directory: ${p}`, 2, 'ENOTDIR');
    break;
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m);
    } catch (e) {
      if (errno(e) === 'EEXIST' && isDir(m)) continue;
      throw ioError(e, 'creating', m);
    }
  }
}
