import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trendc, workdir } from '../helpers/cli.js';

// The real runtime (wasm backend) on a tiny pipeline: two runs from empty caches give
// byte-identical artifacts (the same payload checksum for every node).
const PIPELINE = `dataset toy subset train=300 test=60
train epochs=2 batch=30 lr=0.05
model a = cnn width=0.25
model b = mlp width=0.25 quant input 2bit
transfer pgd eps=0.2 steps=3 step=0.1 from * to *
ensemble e = a, b
evaluate e against agd eps=0.2 steps=3 step=0.1
evaluate a against linf, l2, l1 union
smooth s = a sd=[0, 0.5] m=4 vote soft
smooth s2 = a sd=0.5 m=4 vote soft
evaluate s
evaluate s2 against pgd eps=0.2 steps=2 step=0.1
`;

function checksums(dir: string): Map<string, string> {
  const ls = JSON.parse(trendc(['cache', 'ls', '--json'], { cwd: dir }).stdout) as Array<{ id: string; checksum: string; backend: string }>;
  for (const m of ls) expect(m.backend).toMatch(/^wasm/);
  return new Map(ls.map((m) => [m.id, m.checksum]));
}

describe('determinism with the real runtime', () => {
  it('two runs from empty caches produce byte-identical artifacts', () => {
    const a = workdir({ 'p.trend': PIPELINE });
    const b = workdir({ 'p.trend': PIPELINE });
    for (const dir of [a, b]) expect(trendc(['run', 'p.trend', '--quiet', '--backend', 'wasm'], { cwd: dir }).code).toBe(0);
    const ca = checksums(a);
    const cb = checksums(b);
    expect(ca.size).toBeGreaterThan(15);
    expect([...ca.entries()].sort()).toEqual([...cb.entries()].sort());
  });

  it('the report renders every section from real artifacts', () => {
    const dir = workdir({ 'p.trend': PIPELINE });
    expect(trendc(['run', 'p.trend', '--quiet', '--backend', 'wasm'], { cwd: dir }).code).toBe(0);
    const out = join(dir, 'reports', 'p');
    const md = readFileSync(join(out, 'index.md'), 'utf8');
    expect(md).not.toContain('could not be rendered');
    // s2 is the sweep's second point under another name: computed once, reported under both.
    expect(md).toMatch(/^\| s\.2 = s2 \| soft \| 0\.5 \| 4 \| \d+\.\d% \|/m);
    expect(md).toMatch(/^\| s2 \| \d+\.\d% \| \d+\.\d% \|/m);
    for (const h of ['## Models', '## Ensembles', '## Transferability', '## Robustness', '## Union', '## Smooth', '## Adversarial batches']) expect(md).toContain(h);
    // The TM table: a header with both sources and an avg column, and a row per target.
    expect(md).toMatch(/\| target \\ source \| a \| b \| avg \|/);
    expect(md).toMatch(/^\| a \| (–|\d\.\d\d) \| (–|\d\.\d\d) \| /m);
    for (const f of [...md.matchAll(/\]\(([^)]+\.(?:svg|csv))\)/g)].map((m) => m[1]!)) {
      expect(existsSync(join(out, f)), f).toBe(true);
      if (f.endsWith('.svg')) expect(readFileSync(join(out, f), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
    }
  });
});
