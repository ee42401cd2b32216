/**
 * Per-node locks shared by concurrent `trendc run` processes: a lock is a file created with
 * O_EXCL holding the owner's pid. A process that finds a lock waits until it goes away; a lock
 * whose owner is dead (kill -9) is stale and is taken over.
 */
import { mkdirSync, openSync, closeSync, readFileSync, unlinkSync, writeSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { alive } from './objects.js';

export class LockDir {
  readonly dir: string;
  constructor(root: string) {
    this.dir = join(root, 'locks');
    mkdirSync(this.dir, { recursive: true });
  }

  private path(name: string): string {
    return join(this.dir, name);
  }

  /** Takes the lock if free (or stale); returns false if a live process holds it. */
  tryAcquire(name: string): boolean {
    const p = this.path(name);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(p, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = this.owner(name);
      if (owner !== undefined && alive(owner)) return false;
      // Stale: move it aside atomically (only one taker wins the rename), then retry.
      try {
        renameSync(p, `${p}.stale-${process.pid}`);
        unlinkSync(`${p}.stale-${process.pid}`);
      } catch {
        // someone else took it over first
      }
    }
    return false;
  }

  owner(name: string): number | undefined {
    try {
      const pid = Number(readFileSync(this.path(name), 'utf8'));
      return Number.isFinite(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  release(name: string): void {
    try {
      if (this.owner(name) === process.pid) unlinkSync(this.path(name));
    } catch {
      // already gone
    }
  }

  /** Waits (polling) until the lock is ours; `onWait` is called once if we had to wait. */
  async acquire(name: string, onWait?: (owner: number | undefined) => void, pollMs = 100): Promise<void> {
    let told = false;
    while (!this.tryAcquire(name)) {
      if (!told) {
        onWait?.(this.owner(name));
        told = true;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}
