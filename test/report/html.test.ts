// index.html in a real headless browser (Debian's Chromium): the run report and the diff report
// load nothing from anywhere, log no error, draw every chart as a live Vega view, and show the
// value, n and 95% interval in the tooltips of heatmap cells and chart points.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hover, launchBrowser, openPage, type OpenedPage } from '../helpers/browser.js';
import { trendc } from '../helpers/cli.js';
import { twoRuns } from '../helpers/report-runs.js';

/** Header-keyed rows of a CSV without quoted fields. */
function rowsOf(text: string): Array<Record<string, string>> {
  const [head, ...lines] = text.trim().split('\n');
  const h = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [h[i]!, v])));
}
/** The chart images of an index.md, in order. */
const chartImages = (md: string) => [...md.matchAll(/!\[[^\]]*\]\(([^)]+\.svg)\)/g)].map((m) => m[1]!);

/** Every chart drawn by Vega: one container per chart image of index.md, each a live SVG view. */
async function expectLiveCharts(o: OpenedPage, md: string): Promise<void> {
  const state = await o.page.evaluate(() => ({
    ready: document.body.getAttribute('data-charts'),
    containers: document.querySelectorAll('.vega-chart').length,
    live: document.querySelectorAll('.vega-chart[data-rendered="vega"] > .vega-view > svg.marks').length,
    // The static SVG each container starts with is gone once its view has drawn.
    svgs: document.querySelectorAll('.vega-chart svg').length,
    tooltipMarks: document.querySelectorAll('.vega-view [role="graphics-symbol"][aria-label*="95% low"]').length,
  }));
  expect(state.ready).toBe('ready');
  expect(state.containers).toBe(chartImages(md).length);
  expect(state.live).toBe(state.containers);
  expect(state.svgs).toBe(state.containers);
  expect(state.tooltipMarks).toBeGreaterThan(0);
}

describe('report pages in a headless browser', () => {
  // Launched by the first test, so that a missing Chromium fails each test (with the command that
  // installs it) rather than skipping them as a failed hook would.
  let launched: Promise<Browser> | undefined;
  const browser = () => (launched ??= launchBrowser());
  let runs: ReturnType<typeof twoRuns>;
  beforeAll(() => {
    runs = twoRuns();
  });
  afterAll(async () => {
    await (await launched?.catch(() => undefined))?.close();
  });

  it("a run's index.html: self-contained, no errors, every chart live, tooltips with value, n and interval", async () => {
    const out = join(runs.dir, 'reports', 'p');
    const md = readFileSync(join(out, 'index.md'), 'utf8');
    expect(chartImages(md)).toEqual(['transfer1-pgd.svg', 'evaluate1-members.svg', 'evaluate2-sweep.svg']);
    const o = await openPage(await browser(), join(out, 'index.html'));
    expect(o.problems).toEqual([]);
    expect(o.requests).toEqual([pathToFileURL(join(out, 'index.html')).href]);
    await expectLiveCharts(o, md);
    // Tables are HTML tables: the TM table has a row per target and the average.
    expect(await o.page.evaluate(() => document.querySelectorAll('table').length)).toBeGreaterThan(3);

    // A heatmap cell: its tooltip holds the CSV's figures (this run's matrix of run B).
    const cell = rowsOf(readFileSync(join(out, 'transfer1-pgd.csv'), 'utf8')).find((r) => r.target === 'c' && r.source === 'b')!;
    const tip = await hover(o.page, '.vega-view .mark-rect [aria-label*="source: b; target: c;"]');
    expect(tip).toEqual({
      target: 'c',
      source: 'b',
      value: Number(cell.tm).toFixed(3),
      '95% low': Number(cell['tm lo95']).toFixed(3),
      '95% high': Number(cell['tm hi95']).toFixed(3),
      n: cell['tm n'],
    });
    // A point of the sweep chart: accuracy, n and interval.
    const pt = rowsOf(readFileSync(join(out, 'evaluate2-sweep.csv'), 'utf8')).find((r) => r.series === 'b / pgd' && r.eps === '0.2')!;
    const ptTip = await hover(o.page, '.vega-view .mark-symbol [aria-label*="eps: 0.2;"][aria-label*="series: b / pgd;"]');
    expect(ptTip).toMatchObject({
      series: 'b / pgd',
      eps: '0.2',
      accuracy: Number(pt.accuracy).toFixed(3),
      '95% low': Number(pt['accuracy lo95']).toFixed(3),
      '95% high': Number(pt['accuracy hi95']).toFixed(3),
      n: pt['accuracy n'],
    });
    // A diagonal cell has no interval: its tooltip leaves those fields out rather than print "NaN".
    const diag = await hover(o.page, '.vega-view .mark-rect [aria-label*="source: a; target: a;"]');
    expect(diag).not.toBeNull();
    expect(Object.values(diag!).join(' ')).not.toMatch(/NaN|undefined/);
  });

  it("a diff's index.html: the same, and a marked cell's tooltip says it moved beyond its intervals", async () => {
    const { dir, r1, r2 } = runs;
    expect(trendc(['diff'], { cwd: dir }).code).toBe(0);
    const out = join(dir, 'reports', 'p', `diff-${r1}-${r2}`);
    const md = readFileSync(join(out, 'index.md'), 'utf8');
    expect(chartImages(md)).toEqual(['accuracy-clean.svg', 'accuracy-attacked.svg', 'tm-transfer1-pgd.svg']);
    const o = await openPage(await browser(), join(out, 'index.html'));
    expect(o.problems).toEqual([]);
    expect(o.requests).toHaveLength(1);
    const state = await o.page.evaluate(() => ({
      ready: document.body.getAttribute('data-charts'),
      live: document.querySelectorAll('.vega-chart[data-rendered="vega"] > .vega-view > svg.marks').length,
    }));
    expect(state).toEqual({ ready: 'ready', live: 3 });

    const rows = rowsOf(readFileSync(join(out, 'tm-transfer1-pgd.csv'), 'utf8'));
    const marked = rows.find((r) => r.beyond === '1' && r.self === '0')!;
    const calm = rows.find((r) => r.beyond === '0' && r.self === '0' && Number(r.delta) !== 0)!;
    for (const [r, yes] of [
      [marked, 'yes'],
      [calm, 'no'],
    ] as const) {
      const tip = await hover(o.page, `.vega-view .mark-rect [aria-label*="source: ${r.source}; target: ${r.target};"]`);
      expect(tip).toMatchObject({ target: r.target, source: r.source, 'beyond intervals': yes });
      expect(tip!.A).toMatch(
        new RegExp(`^${Number(r['A value']).toFixed(2)} \\[${Number(r['A lo95']).toFixed(2)}, ${Number(r['A hi95']).toFixed(2)}\\] \\(n=${r['A n']}\\)`),
      );
      expect(tip!.B).toMatch(new RegExp(`^${Number(r['B value']).toFixed(2)} \\[`));
    }
    // A point of the accuracy chart: a run's value, interval and n.
    const acc = rowsOf(readFileSync(join(out, 'accuracy.csv'), 'utf8')).find((r) => r.kind === 'clean' && r.figure === 'b')!;
    const tip = await hover(o.page, '.vega-view .mark-symbol [aria-label*="run: B;"][aria-label*="figure: b "]');
    expect(tip).toMatchObject({ run: 'B', value: Number(acc['B value']).toFixed(3), '95% low': Number(acc['B lo95']).toFixed(3), n: acc['B n'] });
  });
});
