/**
 * `mkdir -p` for output folders. Node 20's mkdirSync(dir, { recursive: true }) loops forever at
 * full CPU on some paths (under /proc, say), so each missing folder is made on its own. Failures
 * are Node's own errors (ENOTDIR, EACCES, ENOENT, with the path and the call), which the command
 * line reports with the path and the reason; an existing file at `dir` is EEXIST.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function makeDirs(dir: string): void {
  const missing: string[] = [];
  let p = resolve(dir);
  while (!existsSync(p)) {
    missing.push(p);
    const parent = dirname(p);
    if (parent === p) break;
    p = parent;
  }
  if (!missing.length && !statSync(p).isDirectory()) mkdirSync(p); // throws EEXIST, as mkdir -p does
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(m).isDirectory()) continue;
      throw e;
    }
  }
}
