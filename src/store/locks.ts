/**
 * Per-node locks shared by concurrent `trendc run` processes, on one host or several: a lock is a
 * file holding its owner (`<pid>@<host>`, owner.ts), created atomically with its content (a hard
 * link, which fails if the name exists). A process that finds a lock waits until it goes away; a
 * lock whose owner is dead is stale and is taken over. An owner on this host is dead when its pid
 * is; an owner on another host when the lock file's lease has run out (the holder refreshes its
 * mtime every lease/4 while it holds it). A bare pid, as older versions wrote, is this host's.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ioError, mkdirs, unlinkQuiet } from './fsx.js';
import { readdirQuiet } from './objects.js';
import { formatOwner, isSelf, keepAlive, letGo, OWNER_TEXT, ownerAlive, parseOwner, registrationName, self, type Owner } from './owner.js';

const TEMP_RE = new RegExp(`\\.(?:new|stale)-(${OWNER_TEXT})$`);

/** The text of a lock file, or undefined if it cannot be read. */
function readLock(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Whether the owner of the lock file `file` is alive: its pid here, the file's lease elsewhere. */
function holds(o: Owner, file: string): boolean {
  return isSelf(o) || ownerAlive(o, [file]);
}

/** The live owner (not this process) of the lock file locks/<name> under `root`, if any. */
export function liveHolder(root: string, name: string): Owner | undefined {
  const file = join(root, 'locks', name);
  const text = readLock(file);
  const o = text === undefined ? undefined : parseOwner(text);
  return o && !isSelf(o) && holds(o, file) ? o : undefined;
}

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
   * between, as ownerless, so stale, and taken over by a second process. A lock taken is kept
   * fresh (its lease) until released.
   */
  tryAcquire(name: string): boolean {
    // A waiter polls this: while a live process holds the lock, one read answers it.
    const holder = this.holder(name);
    if (holder !== undefined && holds(holder, this.path(name))) return false;
    const p = this.path(name);
    const me = formatOwner(self());
    const mine = `${p}.new-${me}`;
    try {
      writeFileSync(mine, me);
    } catch (e) {
      // A full disk can leave the file created but empty: never leave it behind.
      unlinkQuiet(mine);
      throw ioError(e, 'writing', mine);
    }
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(mine, p);
          keepAlive(p, 'lock', me);
          return true;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(e, 'creating', p);
        }
        const text = readLock(p);
        const owner = text === undefined ? undefined : parseOwner(text);
        if (owner === undefined) continue; // released in between (or being written): try again
        if (holds(owner, p)) return false;
        if (!this.moveStale(p, text!, me)) return false;
      }
      return false;
    } finally {
      unlinkQuiet(mine);
    }
  }

  /**
   * Moves a stale lock aside atomically (only one taker wins the rename). If what was moved is
   * not the dead owner's lock (another taker replaced it first), puts it back and returns false.
   */
  private moveStale(p: string, staleText: string, me: string): boolean {
    const aside = `${p}.stale-${me}`;
    try {
      renameSync(p, aside);
      const moved = readFileSync(aside, 'utf8');
      if (moved !== staleText) {
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
    return true;
  }

  /**
   * Removes what dead processes left here: their half-made lock files (`.new-<owner>`,
   * `.stale-<owner>`) and locks whose owner is dead (taken over first, so a lock another process
   * takes meanwhile is never removed). Returns how many files went.
   */
  cleanStale(): number {
    let n = 0;
    for (const f of readdirQuiet(this.dir)) {
      const m = TEMP_RE.exec(f);
      if (m) {
        const o = parseOwner(m[1]!);
        // Another host's: alive while the file itself or its owner's registration is fresh.
        if (!o || !ownerAlive(o, [this.path(f), this.path(registrationName(o))])) {
          unlinkQuiet(this.path(f));
          n++;
        }
        continue;
      }
      if (f.startsWith('proc-')) continue;
      const owner = this.holder(f);
      if (owner !== undefined && !holds(owner, this.path(f)) && this.tryAcquire(f)) {
        this.release(f);
        n++;
      }
    }
    return n;
  }

  /** The owner written in locks/<name>, alive or not; undefined if none can be read. */
  holder(name: string): Owner | undefined {
    const text = readLock(this.path(name));
    return text === undefined ? undefined : parseOwner(text);
  }

  /** The pid of the owner of locks/<name> (on whichever host); see holder(). */
  owner(name: string): number | undefined {
    return this.holder(name)?.pid;
  }

  release(name: string): void {
    const p = this.path(name);
    letGo(p);
    try {
      if (readFileSync(p, 'utf8') === formatOwner(self())) unlinkSync(p);
    } catch {
      // already gone
    }
  }

  /**
   * Waits (polling) until the lock is ours; `onWait` is called once if we had to wait, with the
   * holder's pid and the holder itself (pid and host).
   */
  async acquire(name: string, onWait?: (owner: number | undefined, holder?: Owner) => void, pollMs = 100): Promise<void> {
    let told = false;
    while (!this.tryAcquire(name)) {
      if (!told) {
        const h = this.holder(name);
        onWait?.(h?.pid, h);
        told = true;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}
