import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import chevrotainBundle, { CstParser } from '../../grammar/chevrotain.js';
import { ROOT } from '../helpers/cli.js';

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

describe('Chevrotain is loaded once, from its bundle', () => {
  it('no module but grammar/chevrotain.ts imports chevrotain at run time (type imports are fine)', () => {
    const offenders = ['grammar', 'src', 'scripts', 'bench']
      .flatMap(sources)
      .filter((f) => !f.endsWith(join('grammar', 'chevrotain.ts')))
      .filter((f) => /^import\s+(?!type\b)[^;]*from\s+'chevrotain'/m.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('the shim provides the Chevrotain 11 API the parser uses', () => {
    expect(typeof CstParser).toBe('function');
    expect(typeof chevrotainBundle.createToken).toBe('function');
    expect(chevrotainBundle.VERSION).toMatch(/^11\./);
  });
});
