import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';

// The allowed import directions between the project's layers (README, design section):
//   common   <- everything; imports nothing of the project
//   grammar  <- compiler
//   compiler <- runtime, report, cli        (never imports runtime, store, report or cli)
//   store    <- runtime, report, cli        (imports only common: it knows nothing of what it stores)
//   runtime  <- report, cli                 (of the runtime, only the executor and export read or
//                                            write the store: operations get artifacts, not a store)
//   report   <- cli
const LAYERS: Record<string, string[]> = {
  'src/common': [],
  grammar: ['src/common'],
  'src/compiler': ['src/common', 'grammar'],
  'src/store': ['src/common'],
  'src/runtime': ['src/common', 'src/compiler', 'src/store', 'src/version.ts'],
  'src/report': ['src/common', 'src/compiler', 'src/store', 'src/runtime', 'src/version.ts'],
  'src/cli': ['src/common', 'src/compiler', 'src/store', 'src/runtime', 'src/report', 'grammar', 'src/version.ts'],
};

/** The runtime's files that may use the store. */
const STORE_USERS = /^src\/runtime\/(executor\/|export\.ts$)/;

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** The most specific layer a project file belongs to. */
function layerOf(file: string): string | undefined {
  return Object.keys(LAYERS)
    .filter((l) => file === l || file.startsWith(`${l}/`))
    .sort((a, b) => b.length - a.length)[0];
}

/** Project files a source imports (static imports, re-exports and dynamic imports of relative paths). */
function projectImports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)].map((m) => m[1] ?? m[2]!);
  return specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)).replace(/\.js$/, '.ts'));
}

function violations(): string[] {
  const out: string[] = [];
  for (const file of ['src', 'grammar'].flatMap(sources)) {
    const from = layerOf(file);
    if (!from) continue;
    for (const target of projectImports(file)) {
      const to = layerOf(target) ?? target;
      if (to === from) continue;
      if (!LAYERS[from]!.includes(to) || (from === 'src/runtime' && to === 'src/store' && !STORE_USERS.test(file)))
        out.push(`${file} (${from}) imports ${target} (${to})`);
    }
  }
  return out;
}

describe('layering', () => {
  it('every import follows the allowed directions', () => {
    expect(violations()).toEqual([]);
  });

  it('the check sees imports (it would catch a store module importing the compiler)', () => {
    const all = ['src', 'grammar'].flatMap(sources).flatMap(projectImports);
    expect(all.length).toBeGreaterThan(200);
    expect(all).toContain('src/common/checksum.ts');
    expect(layerOf('src/store/store.ts')).toBe('src/store');
    expect(LAYERS['src/store']).not.toContain('src/compiler');
  });
});
