// The project's own start script for the local Slurm (scripts/slurm/start-local-slurm.sh): it can
// be called again and again (each Slurm test file may call it; .ci/run calls it first), and no
// daemon it starts keeps its start lock. A munged started with the lock's descriptor once held it
// for its whole life, so every later start waited forever.
import { readdirSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ensureSlurm, START_SCRIPT } from '../helpers/slurm.js';

const LOCK = '/run/trend-start-local-slurm.lock';

/** Processes (pid and name) that hold a descriptor on `file`. */
function holders(file: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === file) out.push(pid);
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

describe('the local Slurm start script', () => {
  it('returns at once when Slurm runs, as often as it is called, and leaves its lock to nobody', async () => {
    await ensureSlurm();
    for (let i = 0; i < 2; i++) {
      const r = spawnSync('bash', [START_SCRIPT], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/ready: node \S+ \(\d+ CPUs\) is idle|ready/);
    }
    expect(holders(LOCK)).toEqual([]);
  }, 180_000);
});
