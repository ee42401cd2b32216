/**
 * Who owns what in a store shared by several hosts. An owner is a process on a host: {host, pid},
 * written `<pid>@<host>` (the host percent-encoded beyond [A-Za-z0-9.-], so the text is a safe
 * file name and has one '@'). Lock files hold it, and it names proc registrations
 * (locks/proc-<owner>) and temporary files (tmp/<owner>+<rest>). Text written before hosts were
 * recorded (a bare pid; tmp/<pid>-<rest>) is read as an owner on this host.
 *
 * Liveness. An owner on this host is alive while its pid is (process.kill(pid, 0)). A pid from
 * another host means nothing here, so an owner on another host is judged by a lease instead: it
 * is alive while one of the files it keeps fresh (its lock files, its registration) was modified
 * less than the lease ago (`TREND_LEASE_S`, default 120 s). Each process refreshes the mtime of
 * what it owns every lease/4 on an unref'd timer (`keepAlive`). This assumes the hosts' clocks
 * agree to well within the lease (NFS needs synchronised clocks anyway) and that no process stalls
 * its event loop for most of a lease; a holder judged dead loses its locks to other hosts (the
 * work may then be done twice; content addressing makes that harmless).
 *
 * The host is `TREND_HOST_ID` if set (tests simulate a second host with it), else os.hostname().
 */
import { closeSync, fstatSync, openSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface Owner {
  host: string;
  pid: number;
}

export const DEFAULT_LEASE_S = 120;

/** An owner in text: a pid, optionally `@` and an encoded host. For regular expressions. */
export const OWNER_TEXT = String.raw`\d+(?:@[A-Za-z0-9.%-]+)?`;

let osHost: string | undefined;

/** This process's host id: `TREND_HOST_ID`, else the host name. */
export function currentHost(): string {
  return process.env.TREND_HOST_ID || (osHost ??= hostname() || 'localhost');
}

/** This process as an owner. */
export function self(): Owner {
  return { host: currentHost(), pid: process.pid };
}

export function isThisHost(o: Owner): boolean {
  return o.host === currentHost();
}

export function isSelf(o: Owner): boolean {
  return o.pid === process.pid && isThisHost(o);
}

function encodeHost(host: string): string {
  return [...Buffer.from(host, 'utf8')]
    .map((b) => (/[A-Za-z0-9.-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
}

/** `<pid>@<encoded host>`: safe in file names. */
export function formatOwner(o: Owner): string {
  return `${o.pid}@${encodeHost(o.host)}`;
}

/** Parses formatOwner's text, or a bare pid (this host); undefined for anything else. */
export function parseOwner(text: string): Owner | undefined {
  const m = /^(\d+)(?:@([A-Za-z0-9.%-]+))?$/.exec(text.trim());
  if (!m) return undefined;
  const pid = Number(m[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  if (m[2] === undefined) return { host: currentHost(), pid };
  try {
    return { host: decodeURIComponent(m[2]), pid };
  } catch {
    return undefined; // a malformed escape
  }
}

/** For messages: `pid 123`, or `pid 123 on node7` for another host's. */
export function ownerLabel(o: Owner | undefined): string {
  if (!o) return 'pid ?';
  return isThisHost(o) ? `pid ${o.pid}` : `pid ${o.pid} on ${o.host}`;
}

/** The name of an owner's registration as a user of the store, under locks/. */
export function registrationName(o: Owner): string {
  return `proc-${formatOwner(o)}`;
}

/** The owner named by a registration file name (proc-<owner>, or a legacy proc-<pid>). */
export function registrationOwner(name: string): Owner | undefined {
  return name.startsWith('proc-') ? parseOwner(name.slice(5)) : undefined;
}

/** A temporary file name for this process: `<owner>+<rest>`. */
export function tempName(rest: string): string {
  return `${formatOwner(self())}+${rest}`;
}

/** The owner and the rest of a temporary file name (also the legacy `<pid>-<rest>`). */
export function parseTempName(name: string): { owner: Owner; rest: string } | undefined {
  const m = /^(\d+@[A-Za-z0-9.%-]+)\+(.*)$/s.exec(name) ?? /^(\d+)-(.*)$/s.exec(name);
  const owner = m ? parseOwner(m[1]!) : undefined;
  return owner ? { owner, rest: m![2]! } : undefined;
}

/** The lease in milliseconds: `TREND_LEASE_S` seconds (a positive number), else 120 s. */
export function leaseMs(): number {
  const s = Number(process.env.TREND_LEASE_S);
  return Number.isFinite(s) && s > 0 ? s * 1000 : DEFAULT_LEASE_S * 1000;
}

/** The reason `TREND_LEASE_S` is unusable, if it is set and is not a positive number. */
export function leaseSettingError(): string | undefined {
  const v = process.env.TREND_LEASE_S;
  if (v === undefined || v === '') return undefined;
  const s = Number(v);
  return Number.isFinite(s) && s > 0 ? undefined : `TREND_LEASE_S must be a positive number of seconds, not '${v}'`;
}

export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the file was modified less than a lease ago. Its attributes are read through an open
 * descriptor: an NFS client revalidates them on open (close-to-open), not on a plain stat.
 */
export function withinLease(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    return Date.now() - fstatSync(fd).mtimeMs < leaseMs();
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Whether an owner is alive: on this host, its pid; on another host, whether any of `leaseFiles`
 * (what it keeps fresh: the lock it holds, its registration) is within the lease.
 */
export function ownerAlive(o: Owner, leaseFiles: readonly string[]): boolean {
  if (isThisHost(o)) return pidAlive(o.pid);
  return leaseFiles.some(withinLease);
}

// ------------------------------------------------------------------ the heartbeat
interface Beat {
  /** 'lock': refreshed while it holds `content`, dropped otherwise. 'registration': recreated if gone. */
  kind: 'lock' | 'registration';
  content: string;
  refs: number;
}

const beats = new Map<string, Beat>();
let timer: NodeJS.Timeout | undefined;

/** Keeps `path`'s mtime fresh (every lease/4) until letGo; counted, so two holders need two letGo. */
export function keepAlive(path: string, kind: Beat['kind'], content: string): void {
  const b = beats.get(path);
  if (b && b.kind === kind && b.content === content) b.refs++;
  else beats.set(path, { kind, content, refs: 1 });
  schedule();
}

export function letGo(path: string): void {
  const b = beats.get(path);
  if (b && --b.refs <= 0) beats.delete(path);
  if (beats.size === 0 && timer) {
    clearTimeout(timer);
    timer = undefined;
  }
}

/** The files this process keeps fresh (for tests and diagnostics). */
export function keptAlive(): string[] {
  return [...beats.keys()];
}

function schedule(): void {
  if (timer || beats.size === 0) return;
  timer = setTimeout(() => {
    timer = undefined;
    refreshLeases();
    schedule();
  }, leaseMs() / 4);
  timer.unref();
}

/** Refreshes now every file this process keeps alive (the timer calls it every lease/4). */
export function refreshLeases(): void {
  const now = new Date();
  for (const [path, b] of beats) {
    try {
      if (b.kind === 'lock' && readFileSync(path, 'utf8') !== b.content) {
        beats.delete(path); // taken over by another process: no longer ours to refresh
        continue;
      }
      utimesSync(path, now, now);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') continue; // e.g. read-only for now: try again later
      if (b.kind === 'lock') beats.delete(path);
      else recreate(path, b.content);
    }
  }
}

/** A registration removed by a host that judged this process dead: this process is back. */
function recreate(path: string, content: string): void {
  try {
    writeFileSync(path, content, { flag: 'wx' });
  } catch {
    // the directory is gone or not writable: try again at the next beat
  }
}
