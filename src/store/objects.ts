/**
 * Content-addressed payload files beside the database: objects/ab/<address>. Written to a
 * temporary file, fsynced and renamed into place, so a file under objects/ is always complete;
 * reads verify the address (the payload's 128-bit checksum).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { checksumBytes } from '../compiler/hash.js';

export class ObjectDir {
  readonly dir: string;
  readonly tmp: string;

  constructor(root: string) {
    this.dir = join(root, 'objects');
    this.tmp = join(root, 'tmp');
    mkdirSync(this.dir, { recursive: true });
    mkdirSync(this.tmp, { recursive: true });
  }

  path(address: string): string {
    return join(this.dir, address.slice(0, 2), address);
  }

  has(address: string): boolean {
    return existsSync(this.path(address));
  }

  /**
   * Writes bytes under their address: a no-op if a file with that content is already there (a
   * damaged one is replaced). Crash-safe: temp file, fsync, rename.
   */
  write(address: string, bytes: Uint8Array): void {
    const final = this.path(address);
    if (existsSync(final) && this.read(address, true)) return;
    const sub = join(this.dir, address.slice(0, 2));
    mkdirSync(sub, { recursive: true });
    const tmp = join(this.tmp, `${process.pid}-${randomBytes(6).toString('hex')}`);
    const fd = openSync(tmp, 'w');
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, Math.min(1 << 24, bytes.length - off));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, final);
    const dfd = openSync(sub, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  /** Reads and verifies; returns undefined when missing or corrupt. */
  read(address: string, verify = true): Uint8Array | undefined {
    const p = this.path(address);
    if (!existsSync(p)) return undefined;
    const bytes = readFileSync(p);
    if (verify && checksumBytes(bytes) !== address) return undefined;
    return bytes;
  }

  remove(address: string): void {
    rmSync(this.path(address), { force: true });
  }

  /** Every stored address with its size. */
  *list(): Generator<{ address: string; bytes: number }> {
    for (const sub of readdirSync(this.dir)) {
      for (const f of readdirSync(join(this.dir, sub))) yield { address: f, bytes: statSync(join(this.dir, sub, f)).size };
    }
  }

  /** Removes temporary files left by processes that are no longer running. */
  cleanTemp(): number {
    let n = 0;
    for (const f of readdirSync(this.tmp)) {
      const pid = Number(f.split('-')[0]);
      if (!Number.isFinite(pid) || !alive(pid)) {
        try {
          unlinkSync(join(this.tmp, f));
          n++;
        } catch {
          // raced with its owner
        }
      }
    }
    return n;
  }
}

export function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
