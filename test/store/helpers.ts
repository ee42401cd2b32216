/** Helpers for the store fault tests: CLI runs that report signals, tmpfs mounts, store copies. */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, FAKE_OPS } from '../helpers/cli.js';

export const fake = (extra: Record<string, string> = {}) => ({ TREND_OPS_MODULE: FAKE_OPS, ...extra });

export interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs trendc and keeps the signal (a SIGBUS death is code null, signal SIGBUS). Asynchronous, so
 * a test that runs many commands does not block vitest's worker.
 */
export function cli(args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<Outcome> {
  // TREND_RUN_AS=user runs the command as that user (runuser, as root), for permission tests.
  const as = opts.env?.TREND_RUN_AS;
  const argv = as ? ['runuser', '-u', as, '--', process.execPath, BIN, ...args] : [process.execPath, BIN, ...args];
  const p = spawn(argv[0]!, argv.slice(1), {
    cwd: opts.cwd,
    env: { ...process.env, TREND_CACHE: '', FORCE_COLOR: '0', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => {
    timedOut = true;
    p.kill('SIGKILL');
  }, opts.timeoutMs ?? 120_000);
  return new Promise((resolve) =>
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    }),
  );
}

/** The outcome in one line, for assertion messages. */
export function show(args: string[], r: Outcome): string {
  return `trendc ${args.join(' ')} -> code ${r.code} signal ${r.signal}\n${r.stdout.slice(-800)}\n${r.stderr.slice(-800)}`;
}

/** A command ended with an exit code (no signal, no timeout) and, if it failed, a message and no stack trace. */
export function expectClean(args: string[], r: Outcome, codes: number[] = [0, 1, 2]): void {
  const what = show(args, r);
  if (r.signal !== null || r.timedOut || r.code === null) throw new Error(`died: ${what}`);
  if (!codes.includes(r.code)) throw new Error(`exit ${r.code} not in ${codes.join('/')}: ${what}`);
  if (r.code !== 0 && !/^trendc: |^error: /m.test(r.stderr) && !/DAMAGED|broken/.test(r.stdout)) throw new Error(`failed without a message: ${what}`);
  if (/^\s+at .*\(.*:\d+:\d+\)$/m.test(r.stderr) || /internal error/.test(r.stderr)) throw new Error(`internal error or stack trace: ${what}`);
}

/** Mounts a tmpfs of `size` (e.g. '1m') for the duration of `f`; needs root (as CI has). */
export async function withTmpfs<T>(size: string, f: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'trend-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`this test mounts a tmpfs and needs root (mount -t tmpfs failed: ${(e as Error).message})`);
  }
  try {
    return await f(dir);
  } finally {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export function remount(dir: string, mode: 'ro' | 'rw'): void {
  execFileSync('mount', ['-o', `remount,${mode}`, dir], { stdio: 'pipe' });
}

export function copyStore(from: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'trend-copy-'));
  cpSync(from, join(dir, 'cache'), { recursive: true });
  return dir;
}

/** Files under a directory, recursively, relative to it. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), join(rel, e.name));
      else out.push(join(rel, e.name));
    }
  };
  try {
    walk(dir, '');
  } catch {
    // no such directory
  }
  return out;
}

/** key -> payload checksum, from `cache ls --json`. */
export async function checksums(cwd: string, cache = 'cache'): Promise<Record<string, string>> {
  const r = await cli(['cache', 'ls', '--json', '--cache', cache], { cwd });
  if (r.code !== 0) throw new Error(show(['cache', 'ls', '--json'], r));
  const rows = JSON.parse(r.stdout) as Array<{ id: string; key: string; checksum: string }>;
  return Object.fromEntries(rows.map((m) => [m.key, m.checksum]));
}

/**
 * The root page of the `nodes` database in an LMDB data file, read from the newest meta page
 * (independent of the store's own checker): a page certainly in use.
 */
export function nodesRootPage(bytes: Buffer): { page: number; pageSize: number } {
  const ps = bytes.readUInt32LE(40);
  const meta = bytes.readBigUInt64LE(144) < bytes.readBigUInt64LE(ps + 144) ? ps : 0;
  const mainRoot = Number(bytes.readBigUInt64LE(meta + 88 + 40));
  const p = bytes.subarray(mainRoot * ps, (mainRoot + 1) * ps);
  if (p.readUInt16LE(10) !== 0x02) throw new Error('expected the main database to be one leaf page');
  const n = (p.readUInt16LE(12) - 16) / 2;
  for (let i = 0; i < n; i++) {
    const off = p.readUInt16LE(16 + 2 * i);
    const ksize = p.readUInt16LE(off + 6);
    if (p.toString('latin1', off + 8, off + 8 + ksize) === 'nodes') return { page: Number(p.readBigUInt64LE(off + 8 + ksize + 40)), pageSize: ps };
  }
  throw new Error('no nodes database');
}
