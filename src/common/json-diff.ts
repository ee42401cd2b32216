/** Leaf-level differences between two JSON values: what `explain` and `diff` show of parameters. */

export interface Change {
  path: string;
  before: unknown;
  after: unknown;
}

/** Leaf-level differences between two JSON values (for parameters: arrays there are positional by meaning). */
export function diffValues(a: unknown, b: unknown, path = ''): Change[] {
  if (a === b) return [];
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: Change[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...diffValues(a[i], b[i], `${path}[${i}]`));
    return out;
  }
  if (isObj(a) && isObj(b) && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Change[] = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) out.push(...diffValues(a[k], b[k], path ? `${path}.${k}` : k));
    return out;
  }
  return [{ path, before: a, after: b }];
}
