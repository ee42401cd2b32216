/**
 * Per-node locks shared by concurrent `trendc run` processes: a lock is a file holding the
 * owner's pid, created atomically with its content (a hard link, which fails if the name exists).
 * A process that finds a lock waits until it goes away; a lock whose owner is dead (kill -9) is
 * stale and is taken over.
 */
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
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

  /**
   * Takes the lock if free (or stale); returns false if a live process holds it. The lock file
   * appears with its owner already written (written aside, then hard-linked into place, which
   * fails if the name exists): a lock created empty and filled afterwards could be read, in
   * between, as ownerless, so stale, and taken over by a second process.
   */
  tryAcquire(name: string): boolean {
    // A waiter polls this: while a live process holds the lock, one read answers it.
    const holder = this.owner(name);
    if (holder !== undefined && alive(holder)) return false;
    const p = this.path(name);
    const mine = `${p}.new-${process.pid}`;
    writeFileSync(mine, String(process.pid));
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(mine, p);
          return true;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        const owner = this.owner(name);
        if (owner === undefined) continue; // released in between: try again
        if (alive(owner)) return false;
        // Stale: move it aside atomically (only one taker wins the rename). If what was moved
        // is not the dead owner's lock (another taker replaced it first), put it back.
        const aside = `${p}.stale-${process.pid}`;
        try {
          renameSync(p, aside);
          const moved = Number(readFileSync(aside, 'utf8'));
          if (moved !== owner) {
            try {
              linkSync(aside, p);
            } catch {
              // the name was taken again meanwhile; that holder keeps it
            }
            unlinkSync(aside);
            return false;
          }
          unlinkSync(aside);
        } catch {
          // someone else took it over first
        }
      }
      return false;
    } finally {
      unlinkSync(mine);
    }
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
