import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockDir } from '../../src/store/locks.js';
import { formatOwner, self } from '../../src/store/owner.js';

const deadPid = (): number => {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
};

describe('per-node locks', () => {
  it('creates the lock with its owner in it, and releases it', () => {
    const locks = new LockDir(mkdtempSync(join(tmpdir(), 'trend-locks-')));
    expect(locks.tryAcquire('k')).toBe(true);
    expect(readFileSync(join(locks.dir, 'k'), 'utf8')).toBe(formatOwner(self()));
    expect(locks.tryAcquire('k')).toBe(false); // held by a live process (this one)
    locks.release('k');
    expect(readdirSync(locks.dir)).toEqual([]); // no temporary files left behind
    expect(locks.tryAcquire('k')).toBe(true);
  });

  it("does not take over a live owner's lock, nor one whose owner is not yet readable", () => {
    const locks = new LockDir(mkdtempSync(join(tmpdir(), 'trend-locks-')));
    writeFileSync(join(locks.dir, 'live'), String(process.ppid));
    expect(locks.tryAcquire('live')).toBe(false);
    // An empty file is a lock being written by another process, not a stale one.
    writeFileSync(join(locks.dir, 'empty'), '');
    expect(locks.tryAcquire('empty')).toBe(false);
  });

  it('takes over a lock whose owner is dead', () => {
    const locks = new LockDir(mkdtempSync(join(tmpdir(), 'trend-locks-')));
    writeFileSync(join(locks.dir, 'stale'), String(deadPid()));
    expect(locks.tryAcquire('stale')).toBe(true);
    expect(locks.owner('stale')).toBe(process.pid);
    expect(readdirSync(locks.dir)).toEqual(['stale']);
  });
});
