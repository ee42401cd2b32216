import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backends/select.js';
import type { ConvGeom } from '../../src/runtime/backends/wasm-kernels/conv.js';
import { free, heapF32, k, malloc } from '../../src/runtime/backends/wasm-kernels/memory.js';

// The implicit-GEMM convolutions (conv_fwd_padded, conv_dw_padded) read each window in place from
// a zero-padded copy of the input instead of gathering im2col rows into a scratch. They must give
// the same bits as the explicit im2col kernels (conv_fwd, conv_dw) they replaced, or results cached
// under unchanged keys would no longer be what the code computes. Compared word for word on random
// geometries (strides, paddings that do and do not cover the input, channel counts on both sides
// of the 4- and 8-wide panels), with zeros and subnormals in the data (both paths flush them).

const geom = fc
  .record({
    N: fc.integer({ min: 1, max: 3 }),
    H: fc.integer({ min: 1, max: 11 }),
    W: fc.integer({ min: 1, max: 11 }),
    C: fc.integer({ min: 1, max: 10 }),
    CO: fc.integer({ min: 1, max: 19 }),
    KH: fc.integer({ min: 1, max: 4 }),
    KW: fc.integer({ min: 1, max: 4 }),
    sh: fc.integer({ min: 1, max: 3 }),
    sw: fc.integer({ min: 1, max: 3 }),
    // top/left pads past the filter (explicit padding): whole windows, even rows, in the padding
    pt: fc.integer({ min: 0, max: 5 }),
    pl: fc.integer({ min: 0, max: 5 }),
    pb: fc.integer({ min: -2, max: 3 }),
    pr: fc.integer({ min: -2, max: 3 }),
  })
  .map(({ pb, pr, ...g }) => {
    const { pt, pl } = g;
    const OH = Math.floor((g.H + pt + Math.min(pb, g.KH - 1) - g.KH) / g.sh) + 1;
    const OW = Math.floor((g.W + pl + Math.min(pr, g.KW - 1) - g.KW) / g.sw) + 1;
    return { ...g, pt, pl, OH, OW } as ConvGeom;
  })
  .filter((g) => g.OH >= 1 && g.OW >= 1);

/** Values with exact zeros and subnormals among them (seeded LCG, so a failure replays). */
function fill(at: number, n: number, seed: number): void {
  const h = heapF32();
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    h[(at >> 2) + i] = u < 0.05 ? 0 : u < 0.1 ? (u - 0.075) * 1e-38 : u - 0.5;
  }
}

const bits = (at: number, n: number) => Array.from(new Uint32Array(heapF32().buffer, at, n));

function padded(g: ConvGeom, x: number): { xp: number; Hp: number; Wp: number } {
  const Hp = (g.OH - 1) * g.sh + g.KH;
  const Wp = (g.OW - 1) * g.sw + g.KW;
  const xp = malloc(g.N * Hp * Wp * g.C * 4);
  k().pad_input(x, xp, g.H, g.W, g.C, Hp, Wp, g.pt, g.pl, 0, g.N);
  return { xp, Hp, Wp };
}

/** conv_fwd (im2col) and conv_fwd_padded (implicit) over output rows [m0, M): the same bits. */
function forwardAlike(g: ConvGeom, withBias: boolean, relu: boolean, seed: number, m0: number): void {
  fc.pre(!k().conv_is_narrow(g.C, g.CO)); // conv_fwd takes its direct kernel there, a different sum
  const K = g.KH * g.KW * g.C;
  const M = g.N * g.OH * g.OW;
  const x = malloc(g.N * g.H * g.W * g.C * 4 + 16);
  const w = malloc(K * g.CO * 4);
  const bias = malloc(g.CO * 4);
  const bp = malloc(K * Math.ceil(g.CO / 8) * 8 * 4);
  const y0 = malloc(M * g.CO * 4);
  const y1 = malloc(M * g.CO * 4);
  const sc = malloc(60 * (K + 4) * 4);
  fill(x, g.N * g.H * g.W * g.C, seed);
  fill(w, K * g.CO, seed + 1);
  fill(bias, g.CO, seed + 2);
  fill(y0, M * g.CO, seed + 3); // rows before m0 stay as they were, in both
  heapF32().copyWithin(y1 >> 2, y0 >> 2, (y0 >> 2) + M * g.CO);
  k().pack_filter(w, bp, g.KH, g.KW, g.C, g.CO, 0);
  const b = withBias ? bias : 0;
  k().conv_fwd(x, bp, b, y0, sc, g.N, g.H, g.W, g.C, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.OH, g.OW, g.CO, relu ? 1 : 0, m0, M);
  const { xp, Hp, Wp } = padded(g, x);
  k().conv_fwd_padded(xp, bp, b, y1, sc, Hp, Wp, g.C, g.KH, g.KW, g.sh, g.sw, g.OH, g.OW, g.CO, relu ? 1 : 0, m0, M);
  expect(bits(y1, M * g.CO)).toEqual(bits(y0, M * g.CO));
  [x, w, bias, bp, y0, y1, sc, xp].forEach(free);
}

describe('implicit-GEMM convolutions are bit-identical to the im2col kernels', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('forward, with bias and ReLU', () => {
    fc.assert(
      fc.property(geom, fc.boolean(), fc.boolean(), fc.integer(), (g, withBias, relu, seed) => forwardAlike(g, withBias, relu, seed, 0)),
      { numRuns: 300, seed: 20261130 },
    );
  });

  // Ten (narrow panels) or five (wide panels) output pixels of one output row lie sw*C floats
  // apart in the padded input; the kernels take a faster path for such blocks when that spacing
  // is 4, 8 or 16 floats, and the general one for blocks that cross a row. Long rows, those
  // spacings, and row ranges that start anywhere in a row.
  it('forward, on long output rows (evenly spaced windows)', () => {
    const rows = fc
      .record({
        N: fc.integer({ min: 1, max: 2 }),
        H: fc.integer({ min: 1, max: 4 }),
        W: fc.integer({ min: 10, max: 40 }),
        C: fc.constantFrom(1, 2, 4, 8, 16),
        CO: fc.integer({ min: 1, max: 19 }),
        KH: fc.integer({ min: 1, max: 3 }),
        KW: fc.integer({ min: 1, max: 3 }),
        sh: fc.integer({ min: 1, max: 2 }),
        sw: fc.constantFrom(1, 2, 4),
        pt: fc.integer({ min: 0, max: 2 }),
        pl: fc.integer({ min: 0, max: 2 }),
      })
      .map((g) => ({ ...g, OH: Math.floor((g.H + 2 * g.pt - g.KH) / g.sh) + 1, OW: Math.floor((g.W + 2 * g.pl - g.KW) / g.sw) + 1 }) as ConvGeom)
      .filter((g) => g.OH >= 1 && g.OW >= 1);
    fc.assert(
      fc.property(rows, fc.boolean(), fc.boolean(), fc.integer(), fc.nat(), (g, withBias, relu, seed, start) =>
        forwardAlike(g, withBias, relu, seed, start % (g.N * g.OH * g.OW)),
      ),
      { numRuns: 300, seed: 20261201 },
    );
  });

  it('filter gradient, over a row range that starts mid-image', () => {
    fc.assert(
      fc.property(geom, fc.integer(), fc.nat(), (g, seed, start) => {
        const K = g.KH * g.KW * g.C;
        const M = g.N * g.OH * g.OW;
        const m0 = start % M;
        const x = malloc(g.N * g.H * g.W * g.C * 4 + 16);
        const dy = malloc(M * g.CO * 4);
        const d0 = malloc(K * g.CO * 4);
        const d1 = malloc(K * g.CO * 4);
        const sc = malloc(60 * (K + 4) * 4);
        fill(x, g.N * g.H * g.W * g.C, seed);
        fill(dy, M * g.CO, seed + 1);
        fill(d0, K * g.CO, seed + 2); // both accumulate into the same starting values
        heapF32().copyWithin(d1 >> 2, d0 >> 2, (d0 >> 2) + K * g.CO);
        k().conv_dw(x, dy, d0, sc, g.N, g.H, g.W, g.C, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.OH, g.OW, g.CO, m0, M);
        const { xp, Hp, Wp } = padded(g, x);
        k().conv_dw_padded(xp, dy, d1, sc, Hp, Wp, g.C, g.KH, g.KW, g.sh, g.sw, g.OH, g.OW, g.CO, m0, M);
        expect(bits(d1, K * g.CO)).toEqual(bits(d0, K * g.CO));
        [x, dy, d0, d1, sc, xp].forEach(free);
      }),
      { numRuns: 300, seed: 20261130 },
    );
  });
});
