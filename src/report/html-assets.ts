/**
 * What index.html carries besides the report and the Vega runtime: its style sheet and the script
 * that turns each chart's static SVG into a live Vega view with tooltips (plain ES5, no library
 * but the inlined vega.min.js).
 */

export const STYLE = `
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222; background: #fff; margin: 0 }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 4rem }
h1 { font-size: 1.6rem }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, monospace; background: #f4f4f4; padding: 0 .2em; border-radius: 3px }
.table { overflow-x: auto; margin: 1rem 0 }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; white-space: nowrap }
thead th { background: #f6f8fa }
tbody tr:nth-child(even) { background: #fafafa }
blockquote { margin: 1rem 0; padding: .2rem 1rem; border-left: 4px solid #e0a800; background: #fffbe6 }
.chart { display: block; margin: 1rem 0; overflow-x: auto }
.vega-chart { display: inline-block }
#trend-tooltip { position: fixed; z-index: 10; pointer-events: none; background: #fff; border: 1px solid #aaa;
  border-radius: 4px; box-shadow: 0 2px 6px rgba(0, 0, 0, .2); padding: .3rem .5rem; font-size: .8rem }
#trend-tooltip th, #trend-tooltip td { border: none; background: none; padding: 0 .5rem 0 0 }
#trend-tooltip[hidden] { display: none }
`;

/**
 * Draws every .vega-chart from its compiled Vega spec (the JSON in #trend-charts, by index), then
 * drops the static SVG it started with. Tooltips: Vega calls \`tooltip\` with the hovered item's
 * tooltip value (an object of field: formatted value); fields without a value are left out. When
 * every view has rendered, body gets data-charts="ready" ("failed", and a console error, if one
 * could not be drawn).
 */
export const CHARTS_JS = `
(function () {
  'use strict';
  var tip = document.getElementById('trend-tooltip');
  function missing(v) {
    return v === undefined || v === null || v === '' || v === 'undefined' || v === 'null' || v === 'NaN' || (typeof v === 'number' && !isFinite(v));
  }
  function tooltip(handler, event, item, value) {
    if (missing(value) || !event) { tip.hidden = true; return; }
    tip.textContent = '';
    if (typeof value === 'object') {
      var table = document.createElement('table');
      Object.keys(value).forEach(function (k) {
        if (missing(value[k])) return;
        var row = table.insertRow();
        var th = document.createElement('th');
        th.textContent = k;
        row.appendChild(th);
        row.insertCell().textContent = String(value[k]);
      });
      tip.appendChild(table);
    } else tip.textContent = String(value);
    tip.hidden = false;
    var x = event.clientX + 14, y = event.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth - 4) x = Math.max(4, event.clientX - tip.offsetWidth - 14);
    if (y + tip.offsetHeight > window.innerHeight - 4) y = Math.max(4, event.clientY - tip.offsetHeight - 14);
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }
  function draw(el, specs) {
    try {
      var live = document.createElement('span');
      live.className = 'vega-view';
      el.appendChild(live);
      var view = new vega.View(vega.parse(specs[Number(el.getAttribute('data-chart'))]), { renderer: 'svg', container: live });
      view.tooltip(tooltip);
      return view.runAsync().then(function () {
        Array.prototype.slice.call(el.children).forEach(function (c) { if (c !== live) el.removeChild(c); });
        el.setAttribute('data-rendered', 'vega');
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }
  var specs = JSON.parse(document.getElementById('trend-charts').textContent);
  var all = Array.prototype.map.call(document.querySelectorAll('.vega-chart'), function (el) { return draw(el, specs); });
  Promise.all(all).then(
    function () { document.body.setAttribute('data-charts', 'ready'); },
    function (e) {
      console.error('trend report: a chart could not be drawn: ' + (e && e.message));
      document.body.setAttribute('data-charts', 'failed');
    }
  );
})();
`;
