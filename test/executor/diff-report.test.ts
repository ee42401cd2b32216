// `trendc diff` writes a diff report: per attack a heatmap of TM changes B − A with the cells
// whose change is beyond their intervals (the two runs' 95% Wilson intervals do not overlap)
// marked, and the accuracy changes per model. The marks are checked against the cached counts.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { trendc, workdir } from '../helpers/cli.js';
import { twoRuns } from '../helpers/report-runs.js';
import { wilson95 } from '../helpers/wilson.js';

const apart = (a: [number, number], b: [number, number]) => a[1] < b[0] || b[1] < a[0];

/** Transferred and eligible counts per "source->target", read from the cache. */
function cells(dir: string, run: string, l: { sources: string[]; targets: string[] }): Map<string, { k: number; n: number; tm: number | null }> {
  const m = JSON.parse(trendc(['cache', 'show', 'matrix/transfer1', '--run', run], { cwd: dir }).stdout) as {
    summary: { attacks: Array<{ tm: Array<Array<number | null>>; transferred: number[][]; eligible: number[][] }> };
  };
  const a = m.summary.attacks[0]!;
  const out = new Map<string, { k: number; n: number; tm: number | null }>();
  l.targets.forEach((t, ti) =>
    l.sources.forEach((s, si) => out.set(`${s}->${t}`, { k: a.transferred[ti]![si]!, n: a.eligible[ti]![si]!, tm: a.tm[ti]![si]! })),
  );
  return out;
}

/** A CSV without quoted fields (the diff report's names here have no commas) as header-keyed rows. */
function rowsOf(text: string): Array<Record<string, string>> {
  const [head, ...lines] = text.trim().split('\n');
  const h = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [h[i]!, v])));
}

describe('diff report', () => {
  let runs: ReturnType<typeof twoRuns>;
  beforeAll(() => {
    runs = twoRuns();
  });

  it('marks exactly the TM cells and accuracies whose two Wilson intervals do not overlap', () => {
    const { dir, r1, r2, labels } = runs;
    const out = trendc(['diff'], { cwd: dir });
    expect(out.code, out.stderr).toBe(0);
    const rel = `reports/p/diff-${r1}-${r2}`;
    const line = new RegExp(
      `^report: ${rel}/index\\.md and index\\.html \\((\\d+) TM cells? and (\\d+) accurac(?:y|ies) changed beyond their 95% intervals\\)$`,
      'm',
    );
    expect(out.stdout).toMatch(line);
    const [, tmCount, accCount] = line.exec(out.stdout)!;
    const report = join(dir, rel);

    // Independently: each cell's counts in both runs, their Wilson intervals, overlap or not.
    const A = cells(dir, r1, labels.before);
    const B = cells(dir, r2, labels.after);
    const expected = new Set([...B.keys()].filter((k) => apart(wilson95(A.get(k)!.k, A.get(k)!.n), wilson95(B.get(k)!.k, B.get(k)!.n))));
    const changed = [...B.keys()].filter((k) => A.get(k)!.tm !== B.get(k)!.tm);
    // The premise: some cells moved beyond their intervals, some moved within them.
    expect(expected.size).toBeGreaterThan(0);
    expect(changed.filter((k) => !expected.has(k)).length).toBeGreaterThan(0);
    expect(Number(tmCount)).toBe(expected.size);
    // The printed diff gives each side's interval and marks the same cells.
    const text = trendc(['diff', '--min-delta', '0', '--no-report'], { cwd: dir }).stdout;
    const tmLines = text.split('transfer-matrix cells')[1]!.split(/\n\S/)[0]!.split('\n').slice(1);
    expect(tmLines.length).toBe(changed.length);
    expect(tmLines.every((l) => /\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] -> \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]/.test(l))).toBe(true);
    expect(tmLines.filter((l) => l.includes('beyond both 95% intervals')).length).toBe(expected.size);

    const csv = rowsOf(readFileSync(join(report, 'tm-transfer1-pgd.csv'), 'utf8'));
    expect(csv).toHaveLength(16);
    for (const r of csv) {
      const k = `${r.source}->${r.target}`;
      expect(r.beyond, k).toBe(expected.has(k) ? '1' : '0');
      expect([Number(r['A k']), Number(r['A n']), Number(r['B k']), Number(r['B n'])]).toEqual([A.get(k)!.k, A.get(k)!.n, B.get(k)!.k, B.get(k)!.n]);
      expect(Number(r.delta)).toBeCloseTo(B.get(k)!.tm! - A.get(k)!.tm!, 12);
    }
    // index.md lists the marked cells with both runs' figures; the SVG draws a border on each.
    const md = readFileSync(join(report, 'index.md'), 'utf8');
    const listed = [...md.matchAll(/^- (\w+) → (\w+): .* [▲▼]$/gm)].map((m) => `${m[1]}->${m[2]}`);
    expect(listed.sort()).toEqual([...expected].sort());
    const svg = readFileSync(join(report, 'tm-transfer1-pgd.svg'), 'utf8');
    const bordered = [...svg.matchAll(/aria-label="source: (\w+); target: (\w+);[^"]*"[^>]*stroke-width="3"/g)].map((m) => `${m[1]}->${m[2]}`);
    expect(bordered.sort()).toEqual([...expected].sort());

    // Clean accuracies: correct of n images per classifier, from the cache.
    const acc = (run: string, c: string) => {
      const s = JSON.parse(trendc(['cache', 'show', `predict/${c}`, '--run', run], { cwd: dir }).stdout) as { summary: { correct: number; n: number } };
      return wilson95(s.summary.correct, s.summary.n);
    };
    const accRows = rowsOf(readFileSync(join(report, 'accuracy.csv'), 'utf8'));
    const clean = accRows.filter((r) => r.kind === 'clean');
    expect(clean.map((r) => r.figure).sort()).toEqual(['a', 'b', 'c', 'd', 'trend_k2']);
    for (const r of clean) expect(r.beyond, r.figure).toBe(apart(acc(r1, r.figure!), acc(r2, r.figure!)) ? '1' : '0');
    for (const r of accRows) {
      const [a, b] = [wilson95(Number(r['A k']), Number(r['A n'])), wilson95(Number(r['B k']), Number(r['B n']))];
      expect(r.beyond, r.figure).toBe(apart(a, b) ? '1' : '0');
    }
    expect(accRows.filter((r) => r.beyond === '1').length).toBe(Number(accCount));
    expect(accRows.map((r) => r.figure)).toContain('b under pgd[eps=0.2]');
    expect(existsSync(join(report, 'index.html'))).toBe(true);
  });

  it('--report-dir moves it, --no-report skips it, --json names it; a bad directory is exit 1 with the path', () => {
    const { dir, r1, r2 } = runs;
    const j = trendc(['diff', '--json', '--report-dir', 'elsewhere'], { cwd: dir });
    expect(j.code, j.stderr).toBe(0);
    expect((JSON.parse(j.stdout) as { report: string }).report).toBe(join(dir, 'elsewhere'));
    expect(readdirSync(join(dir, 'elsewhere')).sort()).toEqual(
      ['accuracy-attacked.svg', 'accuracy-clean.svg', 'accuracy.csv', 'index.html', 'index.md', 'tm-transfer1-pgd.csv', 'tm-transfer1-pgd.svg'].sort(),
    );
    // Self-contained: no script, style or image is fetched from anywhere.
    const html = readFileSync(join(dir, 'elsewhere', 'index.html'), 'utf8');
    expect(html).not.toMatch(/<(script|img|link)[^>]+(src|href)=/);

    const none = workdir({});
    const quiet = trendc(['diff', r1, r2, '--no-report', '--cache', join(dir, 'cache')], { cwd: none });
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).not.toMatch(/^report:/m);
    expect(existsSync(join(none, 'reports'))).toBe(false);

    // A failing diff writes no report.
    const bad = trendc(['diff', 'nosuchrun', r2, '--cache', join(dir, 'cache')], { cwd: none });
    expect(bad.code).toBe(2);
    expect(existsSync(join(none, 'reports'))).toBe(false);

    writeFileSync(join(none, 'taken'), 'a file');
    const blocked = trendc(['diff', r1, r2, '--report-dir', 'taken/x', '--cache', join(dir, 'cache')], { cwd: none });
    expect(blocked.code).toBe(1);
    expect(blocked.stdout).toMatch(/^diff /);
    expect(blocked.stderr).toContain(join(none, 'taken'));
    expect(blocked.stderr).toMatch(/the diff report could not be written to .*taken\/x: cannot/);
    expect(blocked.stderr).not.toMatch(/\n\s+at /);
  });
});
