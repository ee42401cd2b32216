/**
 * Figures as Vega-Lite specs rendered to SVG in Node (vega + vega-lite, headless 'none'
 * renderer), the way DVC renders its plots: declarative specs, no browser.
 */
import { compile, type TopLevelSpec } from 'vega-lite';
import { parse, View } from 'vega';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export interface Cell {
  row: string;
  col: string;
  value: number | null;
  label?: string;
  /** Margin cells (averages) are drawn in grey. */
  margin?: boolean;
}

/**
 * A heatmap with labelled cells, like the TREND paper's figure 1: rows targets, columns sources,
 * averages on the margins.
 */
export function heatmapSpec(title: string, cells: Cell[], rows: string[], cols: string[], rowTitle: string, colTitle: string): TopLevelSpec {
  const values = cells.map((c) => ({
    ...c,
    text: c.value === null ? '–' : (c.label ?? c.value.toFixed(2)),
    shade: c.margin ? null : c.value,
    grey: c.margin ? c.value : null,
  }));
  const size = Math.max(28, Math.min(60, 420 / Math.max(rows.length, cols.length)));
  const x = { field: 'col', type: 'ordinal' as const, sort: cols, title: colTitle, axis: { labelAngle: -40, orient: 'top' as const } };
  const y = { field: 'row', type: 'ordinal' as const, sort: rows, title: rowTitle };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values },
    width: size * cols.length,
    height: size * rows.length,
    layer: [
      {
        mark: { type: 'rect', stroke: 'white' },
        encoding: { x, y, color: { field: 'shade', type: 'quantitative', scale: { scheme: 'blues', domain: [0, 1] }, title: 'TM' } },
      },
      { transform: [{ filter: 'datum.grey !== null' }], mark: { type: 'rect', stroke: 'white' }, encoding: { x, y, color: { value: '#d9d9d9' } } },
      {
        mark: { type: 'text', fontSize: Math.max(8, Math.min(12, size / 3.6)) },
        encoding: { x, y, text: { field: 'text', type: 'nominal' }, color: { condition: { test: 'datum.shade > 0.55', value: 'white' }, value: 'black' } },
      },
    ],
    config: { view: { stroke: null }, axis: { grid: false } },
  } as TopLevelSpec;
}

export interface Point {
  series: string;
  x: number;
  y: number;
  /** Fitted curves are drawn dashed. */
  kind?: 'measured' | 'fit';
}

export function lineSpec(
  title: string,
  points: Point[],
  xTitle: string,
  yTitle: string,
  opts: { logX?: boolean; yDomain?: [number, number] } = {},
): TopLevelSpec {
  const x = { field: 'x', type: 'quantitative' as const, title: xTitle, ...(opts.logX ? { scale: { type: 'log' as const } } : {}) };
  const y = { field: 'y', type: 'quantitative' as const, title: yTitle, ...(opts.yDomain ? { scale: { domain: opts.yDomain } } : {}) };
  const color = { field: 'series', type: 'nominal' as const, title: null };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values: points.map((p) => ({ ...p, kind: p.kind ?? 'measured' })) },
    width: 420,
    height: 260,
    layer: [
      { transform: [{ filter: "datum.kind === 'measured'" }], mark: { type: 'line', point: true }, encoding: { x, y, color } },
      { transform: [{ filter: "datum.kind === 'fit'" }], mark: { type: 'line', strokeDash: [4, 3], opacity: 0.8 }, encoding: { x, y, color } },
    ],
  } as TopLevelSpec;
}

export function barSpec(title: string, bars: Array<{ group: string; series: string; value: number }>, yTitle: string): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values: bars },
    width: Math.max(200, 60 * new Set(bars.map((b) => b.group)).size),
    height: 240,
    mark: 'bar',
    encoding: {
      x: { field: 'group', type: 'nominal', title: null, axis: { labelAngle: -20 } },
      xOffset: { field: 'series' },
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: { domain: [0, 1] } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  } as TopLevelSpec;
}
