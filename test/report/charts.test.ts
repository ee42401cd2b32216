import { describe, expect, it } from 'vitest';
import { barSpec, heatmapSpec, lineSpec, renderSvg, type Cell } from '../../src/report/charts.js';

/** The fills of the rects of each rect-mark layer of a rendered SVG. */
const rectFills = (svg: string) =>
  (svg.match(/<g class="mark-rect role-mark[\s\S]*?<\/g>/g) ?? []).map((g) => (g.match(/fill="[^"]+"/g) ?? []).map((f) => f.slice(6, -1)));
/** The text of every <text> element, in order. */
const texts = (svg: string) => (svg.match(/<text[^>]*>[^<]*<\/text>/g) ?? []).map((t) => t.replace(/<[^>]+>/g, ''));
/** The labels of the axis whose aria-label starts with `which` ("X-axis", "Y-axis"). */
function axisLabels(svg: string, which: string): string[] {
  const at = svg.indexOf(`aria-label="${which}`);
  expect(at).toBeGreaterThan(0);
  const group = svg.slice(at).match(/<g class="mark-text role-axis-label[\s\S]*?<\/g>/)![0];
  return texts(group);
}

describe('heatmap', () => {
  const names = ['a', 'b', 'c'];
  // The diagonal is far above every other cell (a model's attack transfers to itself).
  const cells: Cell[] = names.flatMap((r, i) =>
    names.map((c, j) => ({ row: r, col: c, value: i === j ? 1 : 0.1 * (i + j), diagonal: i === j, n: i === 0 ? 12 : 400 })),
  );
  const margins: Cell[] = names.map((r) => ({ row: r, col: 'avg', value: 0.2, margin: true }));

  it('draws the diagonal and the margins grey, outside the colour scale, and colours the other cells', async () => {
    const svg = await renderSvg(heatmapSpec('TM', [...cells, ...margins], names, [...names, 'avg'], 'target', 'source'));
    const [coloured, grey] = rectFills(svg);
    expect(coloured).toHaveLength(6);
    expect(grey).toEqual(Array(6).fill('#d9d9d9'));
    for (const f of coloured!) expect(f).toMatch(/^rgb\(/);
    // The diagonal's value is still written, once per diagonal cell.
    expect(texts(svg).filter((t) => t.startsWith('1.00'))).toHaveLength(3);
  });

  it('writes n under each value and a dagger where n < 30', async () => {
    const svg = await renderSvg(heatmapSpec('TM', cells, names, names, 'target', 'source'));
    const t = texts(svg);
    expect(t.filter((x) => x === 'n=12')).toHaveLength(3);
    expect(t.filter((x) => x === 'n=400')).toHaveLength(6);
    // Row a (n = 12) carries daggers; the others do not.
    expect(t.filter((x) => /^\d\.\d\d†$/.test(x))).toHaveLength(3);
    expect(t.filter((x) => /^\d\.\d\d$/.test(x))).toHaveLength(6);
  });
});

describe('line charts', () => {
  const pts = [1, 2].map((e) => ({ series: 's', x: e, y: 0.5 }));

  it('epoch axes have whole-number ticks only', async () => {
    // Without the option Vega ticks 1.0, 1.1, ... 2.0 over two epochs (the premise).
    expect(axisLabels(await renderSvg(lineSpec('t', pts, 'epoch', 'acc')), 'X-axis')).toContain('1.5');
    const labels = axisLabels(await renderSvg(lineSpec('t', pts, 'epoch', 'acc', { integerX: true })), 'X-axis');
    expect(labels).toEqual(['1', '2']);
  });

  it('draws an error bar per point that has an interval', async () => {
    const rules = (svg: string) => (svg.match(/<g class="mark-rule role-mark[\s\S]*?<\/g>/)?.[0].match(/<line/g) ?? []).length;
    const withCi = pts.map((p) => ({ ...p, lo: 0.4, hi: 0.6, n: 50 }));
    expect(rules(await renderSvg(lineSpec('t', withCi, 'eps', 'acc')))).toBe(2);
    expect(rules(await renderSvg(lineSpec('t', pts, 'eps', 'acc')))).toBe(0);
    // Training curves keep the intervals in the points' tooltips only.
    const tooltipOnly = await renderSvg(lineSpec('t', withCi, 'epoch', 'acc', { errorBars: false }));
    expect(rules(tooltipOnly)).toBe(0);
    const points = tooltipOnly.match(/<g class="mark-symbol role-mark[\s\S]*?<\/g>/)![0];
    expect(points.match(/aria-label="[^"]*95% low: 0\.400; 95% high: 0\.600; n: 50"/g)).toHaveLength(2);
  });

  it('bar charts draw error bars where an interval is given', async () => {
    const svg = await renderSvg(
      barSpec(
        't',
        [
          { group: 'g', series: 'ensemble', value: 0.5, lo: 0.4, hi: 0.6, n: 60 },
          { group: 'g', series: 'a', value: 0.3 },
        ],
        'acc',
      ),
    );
    expect((svg.match(/<g class="mark-rule role-mark[\s\S]*?<\/g>/)?.[0].match(/<line/g) ?? []).length).toBe(1);
  });
});
