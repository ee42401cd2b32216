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
  /** A classifier against itself (source = target): grey, its value as text, outside the colour scale. */
  diagonal?: boolean;
  /** The images the value is a fraction of, written under it; a dagger marks fewer than `smallN`. */
  n?: number;
  /** The 95% interval, for tooltips. */
  lo?: number;
  hi?: number;
}

const GREY = '#d9d9d9';

/** A heatmap's grid: cell size, and the column (source) and row (target) encodings. */
function grid(rows: string[], cols: string[], rowTitle: string, colTitle: string) {
  const size = Math.max(28, Math.min(60, 420 / Math.max(rows.length, cols.length)));
  const x = { field: 'col', type: 'ordinal' as const, sort: cols, title: colTitle, axis: { labelAngle: -40, orient: 'top' as const } };
  const y = { field: 'row', type: 'ordinal' as const, sort: rows, title: rowTitle };
  return { size, x, y };
}

/** The spec around a heatmap's layers: one cell of `size` per row and column, no grid lines. */
function gridSpec(title: string, values: object[], size: number, rows: string[], cols: string[], layer: object[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values },
    width: size * cols.length,
    height: size * rows.length,
    layer,
    config: { view: { stroke: null }, axis: { grid: false } },
  } as TopLevelSpec;
}

/**
 * A heatmap with labelled cells, like the TREND paper's figure 1: rows targets, columns sources,
 * averages on the margins. Only off-diagonal, non-margin cells take the colour scale; the
 * diagonal (a model's transfer to itself) and the averages are grey with their value as text.
 * Cells with a count show "n=…" under the value, with a dagger below `smallN`.
 */
export function heatmapSpec(title: string, cells: Cell[], rows: string[], cols: string[], rowTitle: string, colTitle: string, smallN = 30): TopLevelSpec {
  const values = cells.map((c) => {
    const grey = c.margin || c.diagonal;
    const dagger = c.n !== undefined && c.n < smallN ? '†' : '';
    return {
      ...c,
      text: c.value === null ? '–' : `${c.label ?? c.value.toFixed(2)}${dagger}`,
      count: c.n === undefined ? '' : `n=${c.n}`,
      shade: grey ? null : c.value,
      grey: grey ? (c.value ?? -1) : null,
    };
  });
  const { size, x, y } = grid(rows, cols, rowTitle, colTitle);
  const font = Math.max(8, Math.min(12, size / 3.6));
  const withCount = values.some((v) => v.count) && size >= 36;
  const ink = { condition: { test: 'datum.shade > 0.55', value: 'white' }, value: 'black' };
  const tooltip = [
    { field: 'row', title: rowTitle },
    { field: 'col', title: colTitle },
    { field: 'value', format: '.3f' },
    { field: 'lo', format: '.3f', title: '95% low' },
    { field: 'hi', format: '.3f', title: '95% high' },
    { field: 'n' },
  ];
  return gridSpec(title, values, size, rows, cols, [
    {
      transform: [{ filter: 'datum.shade !== null' }],
      mark: { type: 'rect', stroke: 'white' },
      encoding: { x, y, tooltip, color: { field: 'shade', type: 'quantitative', scale: { scheme: 'blues', domain: [0, 1] }, title: 'TM' } },
    },
    { transform: [{ filter: 'datum.grey !== null' }], mark: { type: 'rect', stroke: 'white' }, encoding: { x, y, tooltip, color: { value: GREY } } },
    {
      mark: { type: 'text', fontSize: font, ...(withCount ? { dy: -font * 0.45 } : {}) },
      encoding: { x, y, tooltip, text: { field: 'text', type: 'nominal' }, color: ink },
    },
    ...(withCount
      ? [
          {
            transform: [{ filter: "datum.count !== ''" }],
            mark: { type: 'text' as const, fontSize: Math.max(7, font - 3), dy: font * 0.75 },
            encoding: { x, y, tooltip, text: { field: 'count', type: 'nominal' as const }, color: ink },
          },
        ]
      : []),
  ]);
}

export interface Point {
  series: string;
  x: number;
  y: number;
  /** Fitted curves are drawn dashed. */
  kind?: 'measured' | 'fit';
  /** A measured proportion's 95% interval, drawn as an error bar, and its n (tooltips). */
  lo?: number;
  hi?: number;
  n?: number;
}

export function lineSpec(
  title: string,
  points: Point[],
  xTitle: string,
  yTitle: string,
  /** errorBars: false keeps the intervals in the tooltips only (training curves). */
  opts: { logX?: boolean; yDomain?: [number, number]; integerX?: boolean; errorBars?: boolean } = {},
): TopLevelSpec {
  // Integer axes (epochs) get ticks at whole numbers only, written without decimals.
  const axis = opts.integerX ? { axis: { tickMinStep: 1, format: 'd' } } : {};
  const x = { field: 'x', type: 'quantitative' as const, title: xTitle, ...(opts.logX ? { scale: { type: 'log' as const } } : {}), ...axis };
  const y = { field: 'y', type: 'quantitative' as const, title: yTitle, ...(opts.yDomain ? { scale: { domain: opts.yDomain } } : {}) };
  const color = { field: 'series', type: 'nominal' as const, title: null };
  const tooltip = [
    { field: 'series' },
    { field: 'x', title: xTitle },
    { field: 'y', title: yTitle, format: '.3f' },
    { field: 'lo', format: '.3f', title: '95% low' },
    { field: 'hi', format: '.3f', title: '95% high' },
    { field: 'n' },
  ];
  const bars = opts.errorBars !== false && points.some((p) => p.lo !== undefined && p.hi !== undefined);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values: points.map((p) => ({ ...p, kind: p.kind ?? 'measured' })) },
    width: 420,
    height: 260,
    layer: [
      { transform: [{ filter: "datum.kind === 'measured'" }], mark: { type: 'line', point: true }, encoding: { x, y, color, tooltip } },
      { transform: [{ filter: "datum.kind === 'fit'" }], mark: { type: 'line', strokeDash: [4, 3], opacity: 0.8 }, encoding: { x, y, color } },
      ...(bars
        ? [
            {
              transform: [{ filter: "datum.kind === 'measured' && isValid(datum.lo) && isValid(datum.hi)" }],
              mark: { type: 'rule' as const, opacity: 0.6 },
              encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color, tooltip },
            },
          ]
        : []),
    ],
  } as TopLevelSpec;
}

export interface Bar {
  group: string;
  series: string;
  value: number;
  /** The value's 95% interval (an error bar) and its n (tooltips). */
  lo?: number;
  hi?: number;
  n?: number;
}

export function barSpec(title: string, bars: Bar[], yTitle: string): TopLevelSpec {
  const x = { field: 'group', type: 'nominal' as const, title: null, axis: { labelAngle: -20 } };
  const y = { field: 'value', type: 'quantitative' as const, title: yTitle, scale: { domain: [0, 1] } };
  const xOffset = { field: 'series', type: 'nominal' as const };
  const tooltip = [
    { field: 'group' },
    { field: 'series' },
    { field: 'value', format: '.3f' },
    { field: 'lo', format: '.3f', title: '95% low' },
    { field: 'hi', format: '.3f', title: '95% high' },
    { field: 'n' },
  ];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values: bars },
    width: Math.max(200, 60 * new Set(bars.map((b) => b.group)).size),
    height: 240,
    layer: [
      { mark: 'bar', encoding: { x, xOffset, y, tooltip, color: { field: 'series', type: 'nominal', title: null } } },
      {
        transform: [{ filter: 'isValid(datum.lo) && isValid(datum.hi)' }],
        mark: { type: 'rule', color: 'black', opacity: 0.7 },
        encoding: { x, xOffset, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, tooltip },
      },
    ],
  } as TopLevelSpec;
}

/** One transfer-matrix cell of a diff: B − A, each run's figure as text, and whether it moved beyond the intervals. */
export interface DeltaCell {
  row: string;
  col: string;
  /** B − A; null when either run has no value (no eligible images, or the cell is in one run only). */
  delta: number | null;
  /** The cell's text: the signed change and, when beyond, ▲ or ▼. */
  text: string;
  beyond: boolean;
  /** A classifier against itself: grey, outside the colour scale. */
  diagonal?: boolean;
  /** Each run's figure as the report writes it ("0.74 [0.70, 0.78] (n=412)"), for tooltips. */
  a: string;
  b: string;
}

/**
 * A heatmap of changes B − A on a diverging scale symmetric about 0 (blue fell, orange rose), the
 * diagonal and cells without a change grey; cells whose change is beyond the two runs' intervals
 * get a thick black border. Tooltips: both runs' figures with intervals and n, and the change.
 */
export function deltaHeatmapSpec(title: string, cells: DeltaCell[], rows: string[], cols: string[], rowTitle: string, colTitle: string): TopLevelSpec {
  const reach = Math.max(0.05, ...cells.filter((c) => !c.diagonal && c.delta !== null).map((c) => Math.abs(c.delta!)));
  const values = cells.map((c) => ({ ...c, shade: c.diagonal || c.delta === null ? null : c.delta, beyondText: c.beyond ? 'yes' : 'no' }));
  const { size, x, y } = grid(rows, cols, rowTitle, colTitle);
  const tooltip = [
    { field: 'row', title: rowTitle },
    { field: 'col', title: colTitle },
    { field: 'a', title: 'A' },
    { field: 'b', title: 'B' },
    { field: 'delta', format: '+.3f', title: 'B − A' },
    { field: 'beyondText', title: 'beyond intervals' },
  ];
  const ink = { condition: { test: 'abs(datum.shade) > 0.6 * ' + reach, value: 'white' }, value: 'black' };
  return gridSpec(title, values, size, rows, cols, [
    {
      transform: [{ filter: 'datum.shade !== null' }],
      mark: { type: 'rect', stroke: 'white' },
      encoding: { x, y, tooltip, color: { field: 'shade', type: 'quantitative', scale: { scheme: 'blueorange', domain: [-reach, reach] }, title: 'ΔTM' } },
    },
    { transform: [{ filter: 'datum.shade === null' }], mark: { type: 'rect', stroke: 'white' }, encoding: { x, y, tooltip, color: { value: GREY } } },
    {
      transform: [{ filter: 'datum.beyond' }],
      mark: { type: 'rect', fill: null, stroke: 'black', strokeWidth: 3 },
      encoding: { x, y, tooltip },
    },
    {
      mark: { type: 'text', fontSize: Math.max(8, Math.min(12, size / 3.6)) },
      encoding: { x, y, tooltip, text: { field: 'text', type: 'nominal' }, color: ink },
    },
  ]);
}

/** One figure of one run in a diff's dumbbell chart. */
export interface RunPoint {
  /** The row: what the figure is of, with its change ("b  +0.050 ▲"). */
  label: string;
  run: 'A' | 'B';
  value: number;
  lo?: number;
  hi?: number;
  n?: number;
  /** B − A and whether it is beyond the intervals (the same on both rows of a label). */
  delta?: number;
  beyond: boolean;
}

/**
 * A dumbbell chart of two runs: per row, run A's and run B's value with its 95% interval (A grey,
 * B blue, each on its own line of the row), so the change B − A and both intervals read at once.
 */
export function dumbbellSpec(title: string, points: RunPoint[], xTitle: string, labels: string[]): TopLevelSpec {
  const values = points.map((p) => ({ ...p, beyondText: p.beyond ? 'yes' : 'no' }));
  const y = { field: 'label', type: 'nominal' as const, sort: labels, title: null };
  const x = { field: 'value', type: 'quantitative' as const, title: xTitle, scale: { domain: [0, 1] } };
  const color = { field: 'run', type: 'nominal' as const, title: 'run', scale: { domain: ['A', 'B'], range: ['#8c8c8c', '#1f77b4'] } };
  const yOffset = { field: 'run', type: 'nominal' as const, sort: ['A', 'B'] };
  const tooltip = [
    { field: 'label', title: 'figure' },
    { field: 'run' },
    { field: 'value', format: '.3f' },
    { field: 'lo', format: '.3f', title: '95% low' },
    { field: 'hi', format: '.3f', title: '95% high' },
    { field: 'n' },
    { field: 'delta', format: '+.3f', title: 'B − A' },
    { field: 'beyondText', title: 'beyond intervals' },
  ];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values },
    width: 420,
    height: { step: 26 },
    layer: [
      {
        transform: [{ filter: 'isValid(datum.lo) && isValid(datum.hi)' }],
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: { y, yOffset, x: { ...x, field: 'lo' }, x2: { field: 'hi' }, color, tooltip },
      },
      { mark: { type: 'point', filled: true, size: 60 }, encoding: { y, yOffset, x, color, tooltip } },
    ],
  } as TopLevelSpec;
}
