/**
 * Content-addressed payload files: objects/ab/<address>, where the address is the payload's
 * 128-bit checksum. Written to a temporary file, fsynced and renamed into place, so a file under
 * objects/ is always complete; reads verify the address. A failed write leaves nothing behind.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checksumBytes } from '../common/checksum.js';
import { errno, ioError, mkdirs, writeAtomic } from './fsx.js';
import { ownerAlive, parseTempName, registrationName } from './owner.js';

export class ObjectDir {
  readonly dir: string;
  readonly tmp: string;
  readonly locks: string;

  constructor(root: string) {
    this.dir = join(root, 'objects');
    this.tmp = join(root, 'tmp');
    this.locks = join(root, 'locks');
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
    mkdirs(join(this.dir, address.slice(0, 2)));
    writeAtomic(final, bytes, this.tmp);
  }

  /** Reads and verifies; returns undefined when missing or corrupt. */
  read(address: string, verify = true): Uint8Array | undefined {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.path(address));
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'EISDIR') return undefined;
      throw ioError(e, 'reading', this.path(address));
    }
    if (verify && checksumBytes(bytes) !== address) return undefined;
    return bytes;
  }

  remove(address: string): void {
    rmSync(this.path(address), { force: true });
  }

  /** Every stored address with its size. */
  *list(): Generator<{ address: string; bytes: number }> {
    for (const sub of readdirQuiet(this.dir)) {
      for (const f of readdirQuiet(join(this.dir, sub))) {
        try {
          yield { address: f, bytes: statSync(join(this.dir, sub, f)).size };
        } catch {
          // removed meanwhile
        }
      }
    }
  }

  /**
   * Removes temporary files left by processes that are no longer running: this host's by pid,
   * another host's when neither the file nor its owner's registration (locks/proc-<owner>) was
   * refreshed within the lease. Names that name no owner are removed too.
   */
  cleanTemp(): number {
    let n = 0;
    for (const f of readdirQuiet(this.tmp)) {
      const t = parseTempName(f);
      if (t && ownerAlive(t.owner, [join(this.tmp, f), join(this.locks, registrationName(t.owner))])) continue;
      try {
        rmSync(join(this.tmp, f), { recursive: true, force: true });
        n++;
      } catch {
        // raced with its owner
      }
    }
    return n;
  }
}

export function readdirQuiet(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return [];
    throw ioError(e, 'reading', dir);
  }
}
