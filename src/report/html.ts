/**
 * index.html beside index.md: the same Markdown rendered to HTML (marked), with every chart a live
 * Vega view (tooltips with the value, n and 95% interval) instead of an <img>. Self-contained:
 * the Vega runtime is inlined from node_modules and the specs are compiled from Vega-Lite in
 * Node, so the page loads nothing (no network, no other file) and opens from anywhere. Each view
 * starts as the chart's static SVG, which stays if scripts are off.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Marked, type Tokens } from 'marked';
import { compile, type TopLevelSpec } from 'vega-lite';
import { CHARTS_JS, STYLE } from './html-assets.js';

/** A chart of the report: its Vega-Lite spec (the live view) and its rendered SVG (the fallback). */
export interface Chart {
  spec: TopLevelSpec;
  svg: string;
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** JSON that is safe inside <script>: no "<" (so no "</script>" or "<!--"), no line separators. */
const scriptJson = (v: unknown) =>
  JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

let vegaSource: string | undefined;
/** vega.min.js (BSD-3-Clause) of the installed vega, read once. */
function vegaRuntime(): string {
  if (vegaSource !== undefined) return vegaSource;
  const require = createRequire(import.meta.url);
  // The package's exports name only its module build; the browser bundle sits beside it.
  const build = dirname(require.resolve('vega'));
  const version = (JSON.parse(readFileSync(join(build, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const code = readFileSync(join(build, 'vega.min.js'), 'utf8').replace(/<\/(script)/gi, '<\\/$1');
  return (vegaSource = `/*! vega ${version} | BSD-3-Clause | https://github.com/vega/vega */\n${code}`);
}

/**
 * The Markdown as HTML: an image whose target is one of `charts` becomes that chart's view (its
 * index into `specs`), raw HTML in the Markdown is shown as text, tables are wrapped to scroll.
 */
function body(markdown: string, charts: ReadonlyMap<string, Chart>, specs: unknown[]): string {
  const marked = new Marked({ gfm: true, async: false });
  marked.use({
    renderer: {
      html: ({ text }: Tokens.HTML | Tokens.Tag) => escapeHtml(text),
      image: ({ href, text }: Tokens.Image) => {
        const chart = charts.get(href);
        if (!chart) return `<img src="${escapeHtml(href)}" alt="${escapeHtml(text)}">`;
        specs.push(compile(chart.spec).spec);
        const i = specs.length - 1;
        return `<span class="chart" role="figure" aria-label="${escapeHtml(text)}"><span class="vega-chart" data-chart="${i}">${chart.svg}</span></span>`;
      },
    },
  });
  // Wide tables scroll on their own (raw HTML is escaped above, so every <table> is marked's).
  return (marked.parse(markdown) as string).replace(/<table>/g, '<div class="table"><table>').replace(/<\/table>/g, '</table></div>');
}

/** The whole page: the report's Markdown as HTML, its charts' specs, and the Vega runtime. */
export function renderHtml(title: string, markdown: string, charts: ReadonlyMap<string, Chart>): string {
  const specs: unknown[] = [];
  const main = body(markdown, charts, specs);
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<main>\n${main}</main>`,
    '<div id="trend-tooltip" role="tooltip" hidden></div>',
    `<script type="application/json" id="trend-charts">${scriptJson(specs)}</script>`,
    ...(specs.length ? [`<script>${vegaRuntime()}</script>`, `<script>${CHARTS_JS}</script>`] : []),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
