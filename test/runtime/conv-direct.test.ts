import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { free, heapF32, k, malloc } from '../../src/runtime/backends/wasm-kernels/memory.js';

// conv_fwd's direct kernel (few output channels over many input channels, e.g. the input gradient
// of a 1-channel first layer) takes four pixels of one output row at once when their windows lie
// inside the input, interleaving their sums; edge pixels take the one-pixel loop. Both must give
// the same bits: a one-row range never forms a block of four, so computing every row on its own
// is the one-pixel path for all of them. Random geometries with channel counts that leave 4-wide
// and scalar tails, strides, paddings and row ranges that start mid-row.

const geom = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    H: fc.integer({ min: 1, max: 9 }),
    W: fc.integer({ min: 1, max: 24 }),
    C: fc.integer({ min: 8, max: 21 }),
    CO: fc.integer({ min: 1, max: 7 }),
    KH: fc.integer({ min: 1, max: 3 }),
    KW: fc.integer({ min: 1, max: 4 }),
    sh: fc.integer({ min: 1, max: 2 }),
    sw: fc.integer({ min: 1, max: 3 }),
    pt: fc.integer({ min: 0, max: 2 }),
    pl: fc.integer({ min: 0, max: 2 }),
  })
  .map((g) => ({ ...g, OH: Math.floor((g.H + 2 * g.pt - g.KH) / g.sh) + 1, OW: Math.floor((g.W + 2 * g.pl - g.KW) / g.sw) + 1 }))
  .filter((g) => g.OH >= 1 && g.OW >= 1 && g.pt < g.KH && g.pl < g.KW);

function fill(at: number, n: number, seed: number): void {
  const h = heapF32();
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    h[(at >> 2) + i] = u < 0.05 ? 0 : u - 0.5;
  }
}

const bits = (at: number, n: number) => Array.from(new Uint32Array(heapF32().buffer, at, n));

describe('the direct convolution kernel', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('gives the same bits four pixels at a time as one at a time', () => {
    fc.assert(
      fc.property(geom, fc.boolean(), fc.boolean(), fc.integer(), fc.nat(), (g, withBias, relu, seed, start) => {
        expect(k().conv_is_narrow(g.C, g.CO)).toBe(1);
        const K = g.KH * g.KW * g.C;
        const ldk = Math.ceil(K / 4) * 4;
        const M = g.N * g.OH * g.OW;
        const m0 = start % M;
        const x = malloc(g.N * g.H * g.W * g.C * 4);
        const w = malloc(K * g.CO * 4);
        const bias = malloc(g.CO * 4);
        const bp = malloc(K * 8 * 4);
        const bt = malloc(ldk * g.CO * 4);
        const y0 = malloc(M * g.CO * 4);
        const y1 = malloc(M * g.CO * 4);
        fill(x, g.N * g.H * g.W * g.C, seed);
        fill(w, K * g.CO, seed + 1);
        fill(bias, g.CO, seed + 2);
        fill(y0, M * g.CO, seed + 3); // rows before m0 stay as they were, in both
        heapF32().copyWithin(y1 >> 2, y0 >> 2, (y0 >> 2) + M * g.CO);
        k().pack_filter(w, bp, g.KH, g.KW, g.C, g.CO, 0);
        k().narrow_from_panels(bp, bt, K, g.CO, ldk);
        const b = withBias ? bias : 0;
        const args = [g.N, g.H, g.W, g.C, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.OH, g.OW, g.CO, relu ? 1 : 0] as const;
        k().conv_fwd(x, bt, b, y0, 0, ...args, m0, M);
        for (let r = m0; r < M; r++) k().conv_fwd(x, bt, b, y1, 0, ...args, r, r + 1);
        expect(bits(y0, M * g.CO)).toEqual(bits(y1, M * g.CO));
        [x, w, bias, bp, bt, y0, y1].forEach(free);
      }),
      { numRuns: 400, seed: 20261201 },
    );
  });
});
