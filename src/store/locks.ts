/**
 * Per-node locks shared by concurrent `trendc run` processes: a lock is a file holding the
 * owner's pid, created atomically with its content (a hard link, which fails if the name exists).
 * A process that finds a lock waits until it goes away; a lock whose owner is dead (kill -9) is
 * stale and is taken over.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ioError, mkdirs, unlinkQuiet } from './fsx.js';
import { alive, readdirQuiet } from './objects.js';

export class LockDir {
  readonly dir: string;
  constructor(root: string) {
    this.dir = join(root, 'locks');
    mkdirs(this.dir);
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
    try {
      writeFileSync(mine, String(process.pid));
    } catch (e) {
      // A full disk can leave the file created but empty: never leave it behind.
      unlinkQuiet(mine);
      throw ioError(e, 'writing', mine);
    }
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(mine, p);
          return true;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(e, 'creating', p);
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
      unlinkQuiet(mine);
    }
  }

  /**
   * Removes what dead processes left here: their half-made lock files (`.new-<pid>`,
   * `.stale-<pid>`) and locks whose owner is dead (taken over first, so a lock another process
   * takes meanwhile is never removed). Returns how many files went.
   */
  cleanStale(): number {
    let n = 0;
    for (const f of readdirQuiet(this.dir)) {
      const m = /\.(?:new|stale)-(\d+)$/.exec(f);
      if (m) {
        if (!alive(Number(m[1]))) {
          unlinkQuiet(join(this.dir, f));
          n++;
        }
        continue;
      }
      if (f.startsWith('proc-')) continue;
      const owner = this.owner(f);
      if (owner !== undefined && !alive(owner) && this.tryAcquire(f)) {
        this.release(f);
        n++;
      }
    }
    return n;
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
