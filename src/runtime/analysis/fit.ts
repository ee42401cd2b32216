/**
 * TM versus eps (TREND appendix V): the transferred count and the generated count each fit
 * a (1 - exp(-b eps)); TM(eps) is the ratio of the two fits. Least squares: for a fixed b the
 * best a is closed-form, and b is found by a log-spaced scan refined by golden-section search.
 */
export interface ExpFit {
  a: number;
  b: number;
  rmse: number;
}

function bestA(xs: number[], ys: number[], b: number): { a: number; sse: number } {
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    const u = 1 - Math.exp(-b * xs[i]!);
    num += ys[i]! * u;
    den += u * u;
  }
  const a = den > 0 ? num / den : 0;
  let sse = 0;
  for (let i = 0; i < xs.length; i++) sse += (ys[i]! - a * (1 - Math.exp(-b * xs[i]!))) ** 2;
  return { a, sse };
}

export function fitSaturating(xs: number[], ys: number[]): ExpFit {
  if (xs.length === 0) return { a: 0, b: 0, rmse: 0 };
  const xmax = Math.max(...xs.map(Math.abs), 1e-12);
  // b from 1e-3/xmax to 1e4/xmax on a log grid.
  let best = { b: 1 / xmax, sse: Infinity };
  for (let k = 0; k <= 140; k++) {
    const b = 10 ** (-3 + k * 0.05) / xmax;
    const { sse } = bestA(xs, ys, b);
    if (sse < best.sse) best = { b, sse };
  }
  let lo = Math.log(best.b) - 0.06;
  let hi = Math.log(best.b) + 0.06;
  const g = (Math.sqrt(5) - 1) / 2;
  for (let it = 0; it < 60; it++) {
    const m1 = hi - g * (hi - lo);
    const m2 = lo + g * (hi - lo);
    if (bestA(xs, ys, Math.exp(m1)).sse < bestA(xs, ys, Math.exp(m2)).sse) hi = m2;
    else lo = m1;
  }
  const b = Math.exp((lo + hi) / 2);
  const { a, sse } = bestA(xs, ys, b);
  return { a, b, rmse: Math.sqrt(sse / xs.length) };
}

export function saturating(f: ExpFit, x: number): number {
  return f.a * (1 - Math.exp(-f.b * x));
}

/** TM(eps) as the ratio of the two fits, and its RMSE against the measured TM values. */
export function fitTmVersusEps(
  eps: number[],
  transferred: number[],
  generated: number[],
  tm: Array<number | null>,
): { transferred: ExpFit; generated: ExpFit; rmse: number } {
  const ft = fitSaturating(eps, transferred);
  const fg = fitSaturating(eps, generated);
  let sse = 0;
  let n = 0;
  eps.forEach((e, i) => {
    const measured = tm[i];
    const g = saturating(fg, e);
    if (measured === null || measured === undefined || g <= 0) return;
    sse += (saturating(ft, e) / g - measured) ** 2;
    n++;
  });
  return { transferred: ft, generated: fg, rmse: n ? Math.sqrt(sse / n) : 0 };
}
