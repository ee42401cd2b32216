// index.html as a string (the browser test, html.test.ts, opens real ones): the Markdown's tables
// become HTML tables, chart images become views with their static SVG inside, other images stay,
// and nothing from the pipeline (a title, a label) can open a tag or end a script.
import { describe, expect, it } from 'vitest';
import { barSpec } from '../../src/report/charts.js';
import { renderHtml, type Chart } from '../../src/report/html.js';

const chart = (title: string): Chart => ({
  spec: barSpec(title, [{ group: 'g', series: 's', value: 0.5, lo: 0.4, hi: 0.6, n: 50 }], 'acc'),
  svg: '<svg class="static"></svg>',
});

describe('index.html', () => {
  it('turns tables into HTML tables and chart images into views with their SVG; other images stay', () => {
    const md = ['# T', '', '| a | b |', '|---|---|', '| 1 | `x` |', '', '![one](one.svg)', '', '![other](photo.png)', ''].join('\n');
    const html = renderHtml('T', md, new Map([['one.svg', chart('Chart one')]]));
    expect(html).toContain('<div class="table"><table>');
    expect(html).toMatch(/<td>1<\/td>\s*<td><code>x<\/code><\/td>/);
    expect(html).toContain('<span class="vega-chart" data-chart="0"><svg class="static"></svg></span>');
    expect(html).toContain('<img src="photo.png" alt="other">');
    // One compiled Vega spec per chart, and the Vega runtime inlined (no src= anywhere).
    const specs = JSON.parse(/<script type="application\/json" id="trend-charts">(.*?)<\/script>/s.exec(html)![1]!) as Array<{ $schema: string }>;
    expect(specs).toHaveLength(1);
    expect(specs[0]!.$schema).toMatch(/vega\/v\d+\.json$/);
    expect(html).toMatch(/<script>\/\*! vega \d+\.\d+\.\d+ \| BSD-3-Clause/);
    expect(html).not.toMatch(/\ssrc="(?:https?:)?\/\//);
  });

  it('escapes markup from the pipeline: in the title, the text and inside the chart specs', () => {
    const evil = '</script><script>alert(1)</script>';
    const md = [`# ${evil}`, '', `<img src=x onerror=alert(2)>`, '', '![c](c.svg)', ''].join('\n');
    const html = renderHtml(evil, md, new Map([['c.svg', chart(evil)]]));
    // The page's own scripts only: the specs' JSON, vega, and the chart script.
    expect(html.match(/<script\b/g)).toHaveLength(3);
    expect(html).not.toContain('alert(1)</script>');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('<title>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>');
    // The spec still carries the title, as JSON escapes.
    const specs = JSON.parse(/id="trend-charts">(.*?)<\/script>/s.exec(html)![1]!) as Array<{ title: { text: string } }>;
    expect(JSON.stringify(specs[0])).toContain('alert(1)');
  });

  it('a report without charts carries no Vega runtime', () => {
    const html = renderHtml('T', '# T\n\nno charts\n', new Map());
    expect(html.length).toBeLessThan(5000);
    expect(html.match(/<script\b/g)).toHaveLength(1);
  });
});
