/** The 95% Wilson score interval, written out here independently of src/report/stats.ts. */
export function wilson95(k: number, n: number): [number, number] {
  const z = 1.959963984540054;
  const p = k / n;
  const c = p + (z * z) / (2 * n);
  const r = z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [(c - r) / (1 + (z * z) / n), (c + r) / (1 + (z * z) / n)];
}
