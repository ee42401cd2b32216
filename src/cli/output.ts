/** Small helpers for CLI output: diagnostics, tables, JSON lines. */
import { formatDiagnostics, type Diagnostic } from '../compiler/diagnostics.js';
import { jsonSafe } from '../compiler/jsonsafe.js';

export const EXIT = { ok: 0, failed: 1, user: 2, internal: 70 } as const;

export function printDiagnostics(diags: Diagnostic[], sources: Map<string, string>): void {
  if (diags.length) process.stderr.write(formatDiagnostics(diags, sources) + '\n');
}

export function table(rows: string[][], header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  const widths: number[] = [];
  for (const r of all) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const lines = all.map(fmt);
  if (header) lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
}

export function json(v: unknown): string {
  return JSON.stringify(jsonSafe(v));
}

const FS_REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'not a directory: a part of the path is a file',
  EISDIR: 'is a directory',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
  EBUSY: 'resource busy',
  EXDEV: 'on another file system',
};

const FS_VERBS: Record<string, string> = {
  open: 'open',
  mkdir: 'create directory',
  write: 'write',
  read: 'read',
  rename: 'rename',
  unlink: 'remove',
  rmdir: 'remove directory',
  rm: 'remove',
  scandir: 'list directory',
  stat: 'stat',
  lstat: 'stat',
  copyfile: 'copy',
  fsync: 'sync',
  link: 'link',
  symlink: 'link',
};

/**
 * A filesystem error from Node (EACCES, ENOSPC, ENOTDIR, ...) as "cannot <do> '<path>': <reason>
 * (<CODE>)", or undefined for any other error.
 */
export function describeFsError(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException | undefined;
  if (!(err instanceof Error) || typeof err.code !== 'string' || !/^E[A-Z0-9]+$/.test(err.code) || typeof err.syscall !== 'string') return undefined;
  const verb = FS_VERBS[err.syscall] ?? err.syscall;
  const reason =
    err.code === 'EEXIST' && err.syscall === 'mkdir'
      ? 'it exists and is not a directory'
      : (FS_REASONS[err.code] ?? err.message.replace(/^E[A-Z0-9]+:\s*/, '').replace(/,.*$/, ''));
  return `cannot ${verb}${err.path ? ` '${err.path}'` : ''}: ${reason} (${err.code})`;
}

/** Ends a command with an exit code (and a message for stderr, if any). */
export class ExitError extends Error {
  constructor(
    readonly code: number,
    message = '',
  ) {
    super(message);
  }
}
