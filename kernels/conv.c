/*
 * trend's convolution kernels (NHWC input, HWIO filters), for the TF.js wasm backend.
 *
 * A convolution is a GEMM over an im2col view of its input: rows are output pixels, K is
 * KH*KW*Cin, N is Cout, the filter packed once into 8-column panels, a 5x8 register-blocked
 * microkernel (10 accumulators plus operands fit x86's 16 SIMD registers; 6x8 spilled and ran 10%
 * slower, 4x8 is load-bound and ran 10% slower) and 10x4 blocks for panels of at most 4 columns.
 * Narrow layers (few input or output channels) run as an implicit GEMM: the input is copied once
 * into a zero-padded buffer (pad_input) and the GEMM reads each row's window from it in place
 * (conv_fwd_padded, conv_dw_padded), since gathering im2col rows cost about half their time; a
 * block of rows within one output row, evenly spaced, reads them from one base pointer. Wide
 * layers gather im2col rows into a per-thread scratch in chunks (conv_fwd), where the explicit
 * rows' GEMM measured faster. The filter gradient is the transposed product im2col(x)^T * dy,
 * accumulated over row chunks with 4x8 blocking (5x8 measured no faster there). Both forms give
 * the same bits (test/runtime/conv-implicit.test.ts compares them word for word).
 *
 * Every function takes a row range [m0, m1) so threads can split the work; results never
 * depend on how rows are split (no cross-row reductions), except the filter gradients (conv_dw,
 * conv_dw_padded), whose callers always use the same fixed partition of rows into partial sums.
 *
 * FMA(a, b, c) = a*b + c. Built with clang's prototype f32x4.fma, rewritten to the final
 * relaxed-SIMD f32x4.relaxed_madd by scripts/build-kernels.sh; with -DNO_FMA it is mul + add.
 */
#include <wasm_simd128.h>
#include "flush.h"

#define EXPORT(name) __attribute__((export_name(#name)))

#ifdef NO_FMA
#define FMA(a, b, c) wasm_f32x4_add(wasm_f32x4_mul((a), (b)), (c))
#else
#define FMA(a, b, c) __builtin_wasm_fma_f32x4((a), (b), (c))
#endif

#define PANEL 8

static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* Stores the first n (< 8) lanes of (v0, v1): no stack buffers in this module. */
static inline void store_partial(float *o, v128_t v0, v128_t v1, int n) {
  if (n > 0) o[0] = wasm_f32x4_extract_lane(v0, 0);
  if (n > 1) o[1] = wasm_f32x4_extract_lane(v0, 1);
  if (n > 2) o[2] = wasm_f32x4_extract_lane(v0, 2);
  if (n > 3) o[3] = wasm_f32x4_extract_lane(v0, 3);
  if (n > 4) o[4] = wasm_f32x4_extract_lane(v1, 0);
  if (n > 5) o[5] = wasm_f32x4_extract_lane(v1, 1);
  if (n > 6) o[6] = wasm_f32x4_extract_lane(v1, 2);
}

static inline float at_or_zero(const float *p, int i, int n) { return i < n ? p[i] : 0.0f; }

/* Lanes j .. j+3 of a panel's bias (columns n0 + j ..), zero past its nv live columns or without bias. */
static inline v128_t panel_bias(const float *bias, int n0, int nv, int j) {
  if (!bias) return wasm_f32x4_splat(0.0f);
  const float *bb = bias + n0;
  return wasm_f32x4_make(at_or_zero(bb, j, nv), at_or_zero(bb, j + 1, nv), at_or_zero(bb, j + 2, nv), at_or_zero(bb, j + 3, nv));
}

/*
 * Packs a K x N matrix (row-major, row stride ldb) into panels of 8 columns: Bp[p][k][0..7],
 * zero-padded past N. With `flip`, B is read as the transposed, spatially flipped filter used for
 * input gradients: B[k=(kh,kw,co)][n=ci] = W[KH-1-kh][KW-1-kw][ci][co] for W of shape
 * [KH, KW, CI, CO] (then K = KH*KW*CO and N = CI).
 */
EXPORT(pack_filter)
void pack_filter(const float *w, float *bp, int KH, int KW, int CI, int CO, int flip) {
  const int K = flip ? KH * KW * CO : KH * KW * CI;
  const int N = flip ? CI : CO;
  const int P = round_up(N, PANEL) / PANEL;
  for (int p = 0; p < P; p++)
    for (int k = 0; k < K; k++)
      for (int j = 0; j < PANEL; j++) {
        const int n = p * PANEL + j;
        float v = 0.0f;
        if (n < N) {
          if (!flip) v = w[(long)k * N + n];
          else {
            const int kh = k / (KW * CO), kw = (k / CO) % KW, co = k % CO;
            v = w[(((long)(KH - 1 - kh) * KW + (KW - 1 - kw)) * CI + n) * CO + co];
          }
        }
        bp[((long)p * K + k) * PANEL + j] = v;
      }
}

/*
 * im2col rows [r0, r1) of the output grid into a (row stride ldk) zero-padded scratch. Within one
 * filter row the KW taps are contiguous in x (KW*C floats) unless the window crosses the image's
 * left or right edge, so interior windows are copied as one run, four floats at a time; the run's
 * last partial vector may be copied whole (reading up to 3 floats past it, writing up to 3 into
 * the next run or the row's padding, both rewritten later) when that stays inside x and the row.
 */
static void im2col(const float *x, float *a, int ldk, int r0, int r1, int N, int H, int W, int C, int KH, int KW, int sh, int sw, int pt,
                   int pl, int OH, int OW) {
  const int K = KH * KW * C;
  const int L = KW * C;
  const float *xend = x + (long)N * H * W * C;
  for (int r = r0; r < r1; r++) {
    float *row = a + (long)(r - r0) * ldk;
    const int n = r / (OH * OW), oh = (r / OW) % OH, ow = r % OW;
    const float *xn = x + (long)n * H * W * C;
    const int w0 = ow * sw - pl;
    const int inside = w0 >= 0 && w0 + KW <= W;
    int k = 0;
    for (int kh = 0; kh < KH; kh++) {
      const int h = oh * sh - pt + kh;
      if (h < 0 || h >= H) {
        for (int c = 0; c < L; c++) row[k + c] = 0.0f;
        k += L;
        continue;
      }
      if (inside) {
        const float *src = xn + ((long)h * W + w0) * C;
        int c = 0;
        for (; c + 4 <= L; c += 4) wasm_v128_store(row + k + c, flush4(wasm_v128_load(src + c)));
        if (c < L) {
          if (k + c + 4 <= ldk && src + c + 4 <= xend) wasm_v128_store(row + k + c, flush4(wasm_v128_load(src + c)));
          else
            for (; c < L; c++) row[k + c] = flush1(src[c]);
        }
        k += L;
        continue;
      }
      for (int kw = 0; kw < KW; kw++) {
        const int w = w0 + kw;
        if (w < 0 || w >= W) {
          for (int c = 0; c < C; c++) row[k + c] = 0.0f;
        } else {
          const float *src = xn + ((long)h * W + w) * C;
          int c = 0;
          for (; c + 4 <= C; c += 4) wasm_v128_store(row + k + c, flush4(wasm_v128_load(src + c)));
          for (; c < C; c++) row[k + c] = flush1(src[c]);
        }
        k += C;
      }
    }
    for (; k < ldk; k++) row[k] = 0.0f;
  }
}

/*
 * C[rows, n0 .. n0+nv) for one panel with at most 4 live columns (N = 4, or the last columns of
 * N = 12, 20, ...), in blocks of 10 rows x 4 columns, so no FMA is spent on the panel's zero
 * padding. Row i of A is KH segments of L floats, segment kh at rp[i] + kh*seg: the window of an
 * output pixel in a padded input (pad_input). The explicit-row form is gemm_rows_narrow.
 */
/*
 * One block of 10 rows of igemm_narrow: row q's window starts at aq. Inlined at each call, so when
 * the rows are evenly spaced by a constant (the pixels of one output row: sw*C floats apart) the
 * ten pointers fold into one base and immediate load offsets; otherwise x86 runs out of registers
 * for ten pointers, ten accumulators and the filter, and spills. Same arithmetic, same order.
 */
static inline __attribute__((always_inline)) void narrow_block(const float *a0, const float *a1, const float *a2, const float *a3,
                                                              const float *a4, const float *a5, const float *a6, const float *a7,
                                                              const float *a8, const float *a9, const float *b, int KH, int L, int seg,
                                                              int N, int nv, v128_t bias0, int relu, float *o) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  v128_t c0 = bias0, c1 = bias0, c2 = bias0, c3 = bias0, c4 = bias0, c5 = bias0, c6 = bias0, c7 = bias0, c8 = bias0, c9 = bias0;
  const float *bk = b;
  for (int kh = 0; kh < KH; kh++, a0 += seg, a1 += seg, a2 += seg, a3 += seg, a4 += seg, a5 += seg, a6 += seg, a7 += seg, a8 += seg, a9 += seg) {
    for (int j = 0; j < L; j++, bk += PANEL) {
      const v128_t b0 = wasm_v128_load(bk);
      c0 = FMA(wasm_v128_load32_splat(a0 + j), b0, c0);
      c1 = FMA(wasm_v128_load32_splat(a1 + j), b0, c1);
      c2 = FMA(wasm_v128_load32_splat(a2 + j), b0, c2);
      c3 = FMA(wasm_v128_load32_splat(a3 + j), b0, c3);
      c4 = FMA(wasm_v128_load32_splat(a4 + j), b0, c4);
      c5 = FMA(wasm_v128_load32_splat(a5 + j), b0, c5);
      c6 = FMA(wasm_v128_load32_splat(a6 + j), b0, c6);
      c7 = FMA(wasm_v128_load32_splat(a7 + j), b0, c7);
      c8 = FMA(wasm_v128_load32_splat(a8 + j), b0, c8);
      c9 = FMA(wasm_v128_load32_splat(a9 + j), b0, c9);
    }
  }
  const v128_t acc[10] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9};
  for (int q = 0; q < 10; q++) {
    const v128_t v = relu ? wasm_f32x4_max(acc[q], zero) : acc[q];
    if (nv == 4) wasm_v128_store(o + (long)q * N, v);
    else store_partial(o + (long)q * N, v, zero, nv);
  }
}

/* The spacing of rows rp[0..n): d when every two neighbours are d floats apart, else 0. */
static inline long even_step(const float *const *rp, int n) {
  const long d = rp[1] - rp[0];
  for (int q = 2; q < n; q++)
    if (rp[q] - rp[q - 1] != d) return 0;
  return d;
}

#define NARROW_EVEN(D) \
  narrow_block(a, a + (D), a + 2 * (D), a + 3 * (D), a + 4 * (D), a + 5 * (D), a + 6 * (D), a + 7 * (D), a + 8 * (D), a + 9 * (D), b, KH, L, seg, N, nv, bias0, relu, o)

/*
 * C[rows, n0 .. n0+nv) for one panel with at most 4 live columns (N = 4, or the last columns of
 * N = 12, 20, ...), in blocks of 10 rows x 4 columns, so no FMA is spent on the panel's zero
 * padding. Row i of A is KH segments of L floats, segment kh at rp[i] + kh*seg: the window of an
 * output pixel in a padded input (pad_input). The explicit-row form is gemm_rows_narrow.
 */
__attribute__((noinline)) static void igemm_narrow(const float *const *rp, int rows, const float *b, int KH, int L, int seg, int N, int n0, int nv,
                                                   v128_t bias0, int relu, float *c) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 10 <= rows; i += 10) {
    const float *a = rp[i];
    float *o = c + (long)i * N + n0;
    switch (even_step(rp + i, 10)) {
      case 4: NARROW_EVEN(4); break;
      case 8: NARROW_EVEN(8); break;
      case 16: NARROW_EVEN(16); break;
      default:
        narrow_block(rp[i], rp[i + 1], rp[i + 2], rp[i + 3], rp[i + 4], rp[i + 5], rp[i + 6], rp[i + 7], rp[i + 8], rp[i + 9], b, KH, L, seg, N, nv,
                     bias0, relu, o);
    }
  }
  for (; i < rows; i++) {
    v128_t c0 = bias0;
    const float *bk = b;
    for (int kh = 0; kh < KH; kh++) {
      const float *a0 = rp[i] + (long)kh * seg;
      for (int j = 0; j < L; j++, bk += PANEL) c0 = FMA(wasm_v128_load32_splat(a0 + j), wasm_v128_load(bk), c0);
    }
    if (relu) c0 = wasm_f32x4_max(c0, zero);
    float *o = c + (long)i * N + n0;
    if (nv == 4) wasm_v128_store(o, c0);
    else store_partial(o, c0, zero, nv);
  }
}

/* One block of 5 rows of igemm_wide, inlined as narrow_block (which says why). */
static inline __attribute__((always_inline)) void wide_block(const float *a0, const float *a1, const float *a2, const float *a3, const float *a4,
                                                            const float *b, int KH, int L, int seg, int N, int nv, v128_t bias0, v128_t bias1,
                                                            int relu, float *o) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  v128_t c00 = bias0, c01 = bias1, c10 = bias0, c11 = bias1, c20 = bias0, c21 = bias1, c30 = bias0, c31 = bias1;
  v128_t c40 = bias0, c41 = bias1;
  const float *bk = b;
  for (int kh = 0; kh < KH; kh++, a0 += seg, a1 += seg, a2 += seg, a3 += seg, a4 += seg) {
    for (int j = 0; j < L; j++, bk += PANEL) {
      const v128_t b0 = wasm_v128_load(bk), b1 = wasm_v128_load(bk + 4);
      v128_t x;
      x = wasm_v128_load32_splat(a0 + j); c00 = FMA(x, b0, c00); c01 = FMA(x, b1, c01);
      x = wasm_v128_load32_splat(a1 + j); c10 = FMA(x, b0, c10); c11 = FMA(x, b1, c11);
      x = wasm_v128_load32_splat(a2 + j); c20 = FMA(x, b0, c20); c21 = FMA(x, b1, c21);
      x = wasm_v128_load32_splat(a3 + j); c30 = FMA(x, b0, c30); c31 = FMA(x, b1, c31);
      x = wasm_v128_load32_splat(a4 + j); c40 = FMA(x, b0, c40); c41 = FMA(x, b1, c41);
    }
  }
  if (relu) {
    c00 = wasm_f32x4_max(c00, zero); c01 = wasm_f32x4_max(c01, zero); c10 = wasm_f32x4_max(c10, zero); c11 = wasm_f32x4_max(c11, zero);
    c20 = wasm_f32x4_max(c20, zero); c21 = wasm_f32x4_max(c21, zero); c30 = wasm_f32x4_max(c30, zero); c31 = wasm_f32x4_max(c31, zero);
    c40 = wasm_f32x4_max(c40, zero); c41 = wasm_f32x4_max(c41, zero);
  }
  if (nv == PANEL) {
    wasm_v128_store(o, c00); wasm_v128_store(o + 4, c01);
    wasm_v128_store(o + N, c10); wasm_v128_store(o + N + 4, c11);
    wasm_v128_store(o + 2 * N, c20); wasm_v128_store(o + 2 * N + 4, c21);
    wasm_v128_store(o + 3 * N, c30); wasm_v128_store(o + 3 * N + 4, c31);
    wasm_v128_store(o + 4 * N, c40); wasm_v128_store(o + 4 * N + 4, c41);
  } else {
    store_partial(o, c00, c01, nv);
    store_partial(o + N, c10, c11, nv);
    store_partial(o + 2 * N, c20, c21, nv);
    store_partial(o + 3 * N, c30, c31, nv);
    store_partial(o + 4 * N, c40, c41, nv);
  }
}

#define WIDE_EVEN(D) wide_block(a, a + (D), a + 2 * (D), a + 3 * (D), a + 4 * (D), b, KH, L, seg, N, nv, bias0, bias1, relu, o)

/* The same for one panel of 8 columns (nv of them live), in blocks of 5 rows x 8 columns. */
__attribute__((noinline)) static void igemm_wide(const float *const *rp, int rows, const float *b, int KH, int L, int seg, int N, int n0, int nv,
                                                 v128_t bias0, v128_t bias1, int relu, float *c) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 5 <= rows; i += 5) {
    const float *a = rp[i];
    float *o = c + (long)i * N + n0;
    switch (even_step(rp + i, 5)) {
      case 4: WIDE_EVEN(4); break;
      case 8: WIDE_EVEN(8); break;
      case 16: WIDE_EVEN(16); break;
      default: wide_block(rp[i], rp[i + 1], rp[i + 2], rp[i + 3], rp[i + 4], b, KH, L, seg, N, nv, bias0, bias1, relu, o);
    }
  }
  for (; i < rows; i++) {
    v128_t c00 = bias0, c01 = bias1;
    const float *bk = b;
    for (int kh = 0; kh < KH; kh++) {
      const float *a0 = rp[i] + (long)kh * seg;
      for (int j = 0; j < L; j++, bk += PANEL) {
        const v128_t x = wasm_v128_load32_splat(a0 + j);
        c00 = FMA(x, wasm_v128_load(bk), c00);
        c01 = FMA(x, wasm_v128_load(bk + 4), c01);
      }
    }
    if (relu) {
      c00 = wasm_f32x4_max(c00, zero);
      c01 = wasm_f32x4_max(c01, zero);
    }
    float *o = c + (long)i * N + n0;
    if (nv == PANEL) {
      wasm_v128_store(o, c00);
      wasm_v128_store(o + 4, c01);
    } else store_partial(o, c00, c01, nv);
  }
}

/*
 * C[rows, N] = A * Bp (+ bias, then ReLU if relu), C row stride N, A's rows as igemm_* read them;
 * one call per panel, as gemm_rows (which says why).
 */
static void gemm_panels(const float *const *rp, int rows, const float *bp, int KH, int L, int seg, int N, const float *bias, int relu, float *c) {
  const int K = KH * L;
  const int P = round_up(N, PANEL) / PANEL;
  for (int p = 0; p < P; p++) {
    const float *b = bp + (long)p * K * PANEL;
    const int n0 = p * PANEL;
    const int nv = N - n0 < PANEL ? N - n0 : PANEL;
    const v128_t bias0 = panel_bias(bias, n0, nv, 0), bias1 = panel_bias(bias, n0, nv, 4);
    if (nv <= 4) igemm_narrow(rp, rows, b, KH, L, seg, N, n0, nv, bias0, relu, c);
    else igemm_wide(rp, rows, b, KH, L, seg, N, n0, nv, bias0, bias1, relu, c);
  }
}

/*
 * One panel with at most 4 live columns (N = 4, or the last columns of N = 12, 20, ...): blocks of
 * 10 rows x 4 columns, so no FMA is spent on the panel's zero padding.
 */
__attribute__((noinline)) static void gemm_rows_narrow(const float *a, int lda, int rows, const float *b, int K, int N, int n0, int nv, v128_t bias0, int relu,
                             float *c) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 10 <= rows; i += 10) {
    const float *a0 = a + (long)i * lda;
    v128_t c0 = bias0, c1 = bias0, c2 = bias0, c3 = bias0, c4 = bias0, c5 = bias0, c6 = bias0, c7 = bias0, c8 = bias0, c9 = bias0;
    for (int k = 0; k < K; k++) {
      const v128_t b0 = wasm_v128_load(b + k * PANEL);
      const float *ak = a0 + k;
      c0 = FMA(wasm_v128_load32_splat(ak), b0, c0);
      c1 = FMA(wasm_v128_load32_splat(ak + lda), b0, c1);
      c2 = FMA(wasm_v128_load32_splat(ak + 2 * lda), b0, c2);
      c3 = FMA(wasm_v128_load32_splat(ak + 3 * lda), b0, c3);
      c4 = FMA(wasm_v128_load32_splat(ak + 4 * lda), b0, c4);
      c5 = FMA(wasm_v128_load32_splat(ak + 5 * lda), b0, c5);
      c6 = FMA(wasm_v128_load32_splat(ak + 6 * lda), b0, c6);
      c7 = FMA(wasm_v128_load32_splat(ak + 7 * lda), b0, c7);
      c8 = FMA(wasm_v128_load32_splat(ak + 8 * lda), b0, c8);
      c9 = FMA(wasm_v128_load32_splat(ak + 9 * lda), b0, c9);
    }
    const v128_t acc[10] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9};
    for (int q = 0; q < 10; q++) {
      const v128_t v = relu ? wasm_f32x4_max(acc[q], zero) : acc[q];
      float *o = c + (long)(i + q) * N + n0;
      if (nv == 4) wasm_v128_store(o, v);
      else store_partial(o, v, zero, nv);
    }
  }
  for (; i < rows; i++) {
    const float *ai = a + (long)i * lda;
    v128_t c0 = bias0;
    for (int k = 0; k < K; k++) c0 = FMA(wasm_v128_load32_splat(ai + k), wasm_v128_load(b + k * PANEL), c0);
    if (relu) c0 = wasm_f32x4_max(c0, zero);
    float *o = c + (long)i * N + n0;
    if (nv == 4) wasm_v128_store(o, c0);
    else store_partial(o, c0, zero, nv);
  }
}

/* One panel of 8 columns (nv of them live) in blocks of 5 rows x 8 columns. */
__attribute__((noinline)) static void gemm_rows_wide(const float *a, int lda, int rows, const float *b, int K, int N, int n0, int nv,
                                                     v128_t bias0, v128_t bias1, int relu, float *c) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 5 <= rows; i += 5) {
    const float *a0 = a + (long)i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda, *a4 = a3 + lda;
    v128_t c00 = bias0, c01 = bias1, c10 = bias0, c11 = bias1, c20 = bias0, c21 = bias1, c30 = bias0, c31 = bias1;
    v128_t c40 = bias0, c41 = bias1;
    for (int k = 0; k < K; k++) {
      const v128_t b0 = wasm_v128_load(b + k * PANEL), b1 = wasm_v128_load(b + k * PANEL + 4);
      v128_t x;
      x = wasm_v128_load32_splat(a0 + k); c00 = FMA(x, b0, c00); c01 = FMA(x, b1, c01);
      x = wasm_v128_load32_splat(a1 + k); c10 = FMA(x, b0, c10); c11 = FMA(x, b1, c11);
      x = wasm_v128_load32_splat(a2 + k); c20 = FMA(x, b0, c20); c21 = FMA(x, b1, c21);
      x = wasm_v128_load32_splat(a3 + k); c30 = FMA(x, b0, c30); c31 = FMA(x, b1, c31);
      x = wasm_v128_load32_splat(a4 + k); c40 = FMA(x, b0, c40); c41 = FMA(x, b1, c41);
    }
    if (relu) {
      c00 = wasm_f32x4_max(c00, zero); c01 = wasm_f32x4_max(c01, zero); c10 = wasm_f32x4_max(c10, zero); c11 = wasm_f32x4_max(c11, zero);
      c20 = wasm_f32x4_max(c20, zero); c21 = wasm_f32x4_max(c21, zero); c30 = wasm_f32x4_max(c30, zero); c31 = wasm_f32x4_max(c31, zero);
      c40 = wasm_f32x4_max(c40, zero); c41 = wasm_f32x4_max(c41, zero);
    }
    float *o = c + (long)i * N + n0;
    if (nv == PANEL) {
      wasm_v128_store(o, c00); wasm_v128_store(o + 4, c01);
      wasm_v128_store(o + N, c10); wasm_v128_store(o + N + 4, c11);
      wasm_v128_store(o + 2 * N, c20); wasm_v128_store(o + 2 * N + 4, c21);
      wasm_v128_store(o + 3 * N, c30); wasm_v128_store(o + 3 * N + 4, c31);
      wasm_v128_store(o + 4 * N, c40); wasm_v128_store(o + 4 * N + 4, c41);
    } else {
      store_partial(o, c00, c01, nv);
      store_partial(o + N, c10, c11, nv);
      store_partial(o + 2 * N, c20, c21, nv);
      store_partial(o + 3 * N, c30, c31, nv);
      store_partial(o + 4 * N, c40, c41, nv);
    }
  }
  for (; i < rows; i++) {
    const float *a0 = a + (long)i * lda;
    v128_t c00 = bias0, c01 = bias1;
    for (int k = 0; k < K; k++) {
      const v128_t x = wasm_v128_load32_splat(a0 + k);
      c00 = FMA(x, wasm_v128_load(b + k * PANEL), c00);
      c01 = FMA(x, wasm_v128_load(b + k * PANEL + 4), c01);
    }
    if (relu) {
      c00 = wasm_f32x4_max(c00, zero);
      c01 = wasm_f32x4_max(c01, zero);
    }
    float *o = c + (long)i * N + n0;
    if (nv == PANEL) {
      wasm_v128_store(o, c00);
      wasm_v128_store(o + 4, c01);
    } else store_partial(o, c00, c01, nv);
  }
}

/*
 * C[rows, N] = A[rows, K] * Bp (+ bias, then ReLU if relu), A row-major with row stride lda, C row
 * stride N: the GEMM of im2col rows, col2im and 1x1 convolutions. The same FMAs per element as
 * gemm_panels. Each panel is its own call: one loop nest per function keeps V8's register
 * allocation of the 5x8 block free of spills (a narrow-panel branch in the same function cost 6% of
 * training). The block stores are written out in each microkernel: moving them into a shared inline
 * helper made a 14x14 32->64 convolution 25% slower (V8's code for the block changed).
 */
static void gemm_rows(const float *a, int lda, int rows, const float *bp, int K, int N, const float *bias, int relu, float *c) {
  const int P = round_up(N, PANEL) / PANEL;
  for (int p = 0; p < P; p++) {
    const float *b = bp + (long)p * K * PANEL;
    const int n0 = p * PANEL;
    const int nv = N - n0 < PANEL ? N - n0 : PANEL;
    const v128_t bias0 = panel_bias(bias, n0, nv, 0), bias1 = panel_bias(bias, n0, nv, 4);
    if (nv <= 4) gemm_rows_narrow(a, lda, rows, b, K, N, n0, nv, bias0, relu, c);
    else gemm_rows_wide(a, lda, rows, b, K, N, n0, nv, bias0, bias1, relu, c);
  }
}

#define CHUNK 60 /* a multiple of the GEMM's 5-row blocks */

/*
 * Packs W [KH, KW, CI, CO] transposed, as a CO x (KH*KW*CI) matrix in 8-column panels: the
 * right-hand side of dP = dY W^T for input gradients by col2im.
 */
EXPORT(pack_filter_t)
void pack_filter_t(const float *w, float *bp, int KH, int KW, int CI, int CO) {
  const int K = CO, N = KH * KW * CI;
  const int P = round_up(N, PANEL) / PANEL;
  for (int p = 0; p < P; p++)
    for (int k = 0; k < K; k++)
      for (int j = 0; j < PANEL; j++) {
        const int n = p * PANEL + j;
        bp[((long)p * K + k) * PANEL + j] = n < N ? w[(long)n * CO + k] : 0.0f;
      }
}

/*
 * Input gradient by GEMM and col2im, for the images [n0, n1): per chunk of output-gradient
 * rows, dP = dY W^T (rows x KH*KW*CI), then each row's patch is added into dx. dx must be zeroed;
 * scratch: CHUNK*KH*KW*CI floats.
 * Threads split by image, so no two write the same dx element.
 */
EXPORT(conv_dx_col2im)
void conv_dx_col2im(const float *dy, const float *bp, float *dx, float *scratch, int H, int W, int C, int KH, int KW, int sh, int sw,
                    int pt, int pl, int OH, int OW, int CO, int n0, int n1) {
  const int N = KH * KW * C;
  const int m0 = n0 * OH * OW, m1 = n1 * OH * OW;
  for (int r = m0; r < m1; r += CHUNK) {
    const int r1 = r + CHUNK < m1 ? r + CHUNK : m1;
    gemm_rows(dy + (long)r * CO, CO, r1 - r, bp, CO, N, 0, 0, scratch);
    for (int i = r; i < r1; i++) {
      const int n = i / (OH * OW), oh = (i / OW) % OH, ow = i % OW;
      const float *row = scratch + (long)(i - r) * N;
      float *dxn = dx + (long)n * H * W * C;
      for (int kh = 0; kh < KH; kh++) {
        const int h = oh * sh - pt + kh;
        if (h < 0 || h >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
          const int w = ow * sw - pl + kw;
          if (w < 0 || w >= W) continue;
          float *dst = dxn + ((long)h * W + w) * C;
          const float *src = row + (kh * KW + kw) * C;
          int c = 0;
          for (; c + 4 <= C; c += 4) wasm_v128_store(dst + c, wasm_f32x4_add(wasm_v128_load(dst + c), wasm_v128_load(src + c)));
          for (; c < C; c++) dst[c] += src[c];
        }
      }
    }
  }
}

/* Repacks Bp (8-column panels, K rows) of an N < 8 matrix as column-major rows of stride ldk. */
EXPORT(narrow_from_panels)
void narrow_from_panels(const float *bp, float *bt, int K, int N, int ldk) {
  for (int n = 0; n < N; n++) {
    for (int k = 0; k < K; k++) bt[(long)n * ldk + k] = bp[(long)k * PANEL + n];
    for (int k = K; k < ldk; k++) bt[(long)n * ldk + k] = 0.0f;
  }
}

/* One output of conv_narrow_direct from its sums: the vector sums' lanes, then bias and ReLU. */
static inline float narrow_finish(v128_t acc0, v128_t acc1, float s, const float *bias, int co, int relu) {
  acc0 = wasm_f32x4_add(acc0, acc1);
  s += wasm_f32x4_extract_lane(acc0, 0) + wasm_f32x4_extract_lane(acc0, 1) + wasm_f32x4_extract_lane(acc0, 2) + wasm_f32x4_extract_lane(acc0, 3);
  if (bias) s += bias[co];
  if (relu && s < 0.0f) s = 0.0f;
  return s;
}

/*
 * Four pixels of one output row whose windows lie inside x (no tap in the padding), p apart in x:
 * the same sums as conv_narrow_direct's one-pixel loop, in the same order, with the four pixels'
 * sums interleaved so that the adds do not wait on each other (one pixel's two vector sums alone
 * left the loop bound by the add latency: 4.7 GFLOP/s on the input gradient of a 1-channel layer).
 */
static inline __attribute__((always_inline)) void narrow_direct4(const float *x0, long p, const float *bt, int ldk, const float *bias,
                                                                float *y, long W, int C, int KH, int KW, int CO, int relu) {
  for (int co = 0; co < CO; co++) {
    const float *b = bt + (long)co * ldk;
    v128_t a00 = wasm_f32x4_splat(0.0f), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (int kh = 0; kh < KH; kh++) {
      for (int kw = 0; kw < KW; kw++) {
        const float *src = x0 + ((long)kh * W + kw) * C;
        const float *f = b + (kh * KW + kw) * C;
        int c = 0;
        for (; c + 8 <= C; c += 8) {
          const v128_t f0 = wasm_v128_load(f + c), f1 = wasm_v128_load(f + c + 4);
          a00 = FMA(wasm_v128_load(src + c), f0, a00);
          a01 = FMA(wasm_v128_load(src + c + 4), f1, a01);
          a10 = FMA(wasm_v128_load(src + p + c), f0, a10);
          a11 = FMA(wasm_v128_load(src + p + c + 4), f1, a11);
          a20 = FMA(wasm_v128_load(src + 2 * p + c), f0, a20);
          a21 = FMA(wasm_v128_load(src + 2 * p + c + 4), f1, a21);
          a30 = FMA(wasm_v128_load(src + 3 * p + c), f0, a30);
          a31 = FMA(wasm_v128_load(src + 3 * p + c + 4), f1, a31);
        }
        for (; c + 4 <= C; c += 4) {
          const v128_t f0 = wasm_v128_load(f + c);
          a00 = FMA(wasm_v128_load(src + c), f0, a00);
          a10 = FMA(wasm_v128_load(src + p + c), f0, a10);
          a20 = FMA(wasm_v128_load(src + 2 * p + c), f0, a20);
          a30 = FMA(wasm_v128_load(src + 3 * p + c), f0, a30);
        }
        for (; c < C; c++) {
          s0 += src[c] * f[c];
          s1 += src[p + c] * f[c];
          s2 += src[2 * p + c] * f[c];
          s3 += src[3 * p + c] * f[c];
        }
      }
    }
    y[co] = narrow_finish(a00, a01, s0, bias, co, relu);
    y[CO + co] = narrow_finish(a10, a11, s1, bias, co, relu);
    y[2 * CO + co] = narrow_finish(a20, a21, s2, bias, co, relu);
    y[3 * CO + co] = narrow_finish(a30, a31, s3, bias, co, relu);
  }
}

/*
 * Direct convolution for few output channels over many input channels (CO < 8 <= C, e.g. the
 * input gradient of a first layer with one channel): no im2col; for each output pixel, each tap's
 * C input channels are dotted with the filter column, eight then four channels at a time (two
 * vector sums), then one at a time (a scalar sum). Pixels whose windows lie inside x go four at a
 * time (narrow_direct4, the same sums); edge pixels skip their taps in the padding.
 * bt: column-major filter rows bt[n][k] (stride ldk).
 */
static void conv_narrow_direct(const float *x, const float *bt, int ldk, const float *bias, float *y, int H, int W, int C, int KH,
                               int KW, int sh, int sw, int pt, int pl, int OH, int OW, int CO, int relu, int m0, int m1) {
  for (int r = m0; r < m1;) {
    const int n = r / (OH * OW), oh = (r / OW) % OH, ow = r % OW;
    const float *xn = x + (long)n * H * W * C;
    const int h0 = oh * sh - pt, w0 = ow * sw - pl;
    if (r + 4 <= m1 && ow + 4 <= OW && h0 >= 0 && h0 + KH <= H && w0 >= 0 && w0 + 3 * sw + KW <= W) {
      narrow_direct4(xn + ((long)h0 * W + w0) * C, (long)sw * C, bt, ldk, bias, y + (long)r * CO, W, C, KH, KW, CO, relu);
      r += 4;
      continue;
    }
    for (int co = 0; co < CO; co++) {
      const float *b = bt + (long)co * ldk;
      v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0;
      float s = 0.0f;
      for (int kh = 0; kh < KH; kh++) {
        const int h = h0 + kh;
        if (h < 0 || h >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
          const int w = w0 + kw;
          if (w < 0 || w >= W) continue;
          const float *src = xn + ((long)h * W + w) * C;
          const float *f = b + (kh * KW + kw) * C;
          int c = 0;
          for (; c + 8 <= C; c += 8) {
            acc0 = FMA(wasm_v128_load(src + c), wasm_v128_load(f + c), acc0);
            acc1 = FMA(wasm_v128_load(src + c + 4), wasm_v128_load(f + c + 4), acc1);
          }
          for (; c + 4 <= C; c += 4) acc0 = FMA(wasm_v128_load(src + c), wasm_v128_load(f + c), acc0);
          for (; c < C; c++) s += src[c] * f[c];
        }
      }
      y[(long)r * CO + co] = narrow_finish(acc0, acc1, s, bias, co, relu);
    }
    r++;
  }
}

/*
 * Whether conv_fwd takes the direct kernel (few outputs over many inputs), and so wants its filter
 * as column-major rows (narrow_from_panels) instead of panels: exported so that the caller packing
 * the filter asks this rule instead of restating it.
 */
static inline int narrow_conv(int C, int CO) { return CO < PANEL && C >= PANEL; }

EXPORT(conv_is_narrow)
int conv_is_narrow(int C, int CO) { return narrow_conv(C, CO); }

/*
 * Forward convolution of output rows [m0, m1) (rows are flattened (n, oh, ow)):
 * y = conv(x, w) + bias, optional ReLU. scratch: CHUNK*ldk floats.
 * bp: pack_filter(flip=0)'s panels, or, when conv_is_narrow(C, CO), those panels as column-major
 * rows (narrow_from_panels).
 */
EXPORT(conv_fwd)
void conv_fwd(const float *x, const float *bp, const float *bias, float *y, float *scratch, int N, int H, int W, int C, int KH, int KW,
              int sh, int sw, int pt, int pl, int OH, int OW, int CO, int relu, int m0, int m1) {
  const int K = KH * KW * C;
  const int ldk = round_up(K, 4);
  if (narrow_conv(C, CO)) {
    conv_narrow_direct(x, bp, ldk, bias, y, H, W, C, KH, KW, sh, sw, pt, pl, OH, OW, CO, relu, m0, m1);
    return;
  }
  for (int r = m0; r < m1; r += CHUNK) {
    const int r1 = r + CHUNK < m1 ? r + CHUNK : m1;
    const float *a = x + (long)r * C;
    int lda = C;
    if (!(KH == 1 && KW == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && OH == H && OW == W)) {
      im2col(x, scratch, ldk, r, r1, N, H, W, C, KH, KW, sh, sw, pt, pl, OH, OW);
      a = scratch;
      lda = ldk;
    }
    gemm_rows(a, lda, r1 - r, bp, K, CO, bias, relu, y + (long)r * CO);
  }
}

/* y[i] = a[i] + b[i] (partial sums of conv_dw, added in a fixed order). */
EXPORT(add_into)
void add_into(float *y, const float *a, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(y + i), wasm_v128_load(a + i)));
  for (; i < n; i++) y[i] += a[i];
}

/*
 * Implicit GEMM. The input is copied once into a zero-padded buffer xp [N][Hp][Wp][C] (flushed as
 * im2col flushes), so that every output pixel's window lies inside it: output row r's im2col row is
 * KH segments of L = KW*C contiguous floats, segment kh starting at rp[r] + kh*seg (seg = Wp*C).
 * The GEMMs below read those segments in place instead of copying them into a scratch first; each
 * output element is the same FMAs in the same order as im2col + gemm_rows (or conv_dw), so the
 * results are bit-identical to theirs.
 */
EXPORT(pad_input)
void pad_input(const float *x, float *xp, int H, int W, int C, int Hp, int Wp, int pt, int pl, int n0, int n1) {
  const long rowp = (long)Wp * C;
  /* a convolution may not read the last columns (valid padding), or, with explicit padding and a
     stride past the image, any column at all: then the row is all left padding */
  const int wleft = pl < Wp ? pl : Wp;
  const int wcopy = W < Wp - wleft ? W : Wp - wleft;
  const int left = wleft * C, len = wcopy * C;
  for (int n = n0; n < n1; n++) {
    float *dst = xp + (long)n * Hp * rowp;
    const float *src = x + (long)n * H * W * C;
    for (int h = 0; h < Hp; h++) {
      float *d = dst + h * rowp;
      const int hs = h - pt;
      if (hs < 0 || hs >= H) {
        for (long i = 0; i < rowp; i++) d[i] = 0.0f;
        continue;
      }
      for (int i = 0; i < left; i++) d[i] = 0.0f;
      const float *s = src + (long)hs * W * C;
      int i = 0;
      for (; i + 4 <= len; i += 4) wasm_v128_store(d + left + i, flush4(wasm_v128_load(s + i)));
      for (; i < len; i++) d[left + i] = flush1(s[i]);
      for (long j = left + len; j < rowp; j++) d[j] = 0.0f;
    }
  }
}

/* rp[i] = where output row r0 + i's window starts in xp, for the rows [r0, r1). */
static void row_ptrs(const float *xp, const float **rp, int r0, int r1, int Hp, int Wp, int C, int sh, int sw, int OH, int OW) {
  int n = r0 / (OH * OW), oh = (r0 / OW) % OH, ow = r0 % OW;
  for (int r = r0; r < r1; r++) {
    rp[r - r0] = xp + (((long)n * Hp + (long)oh * sh) * Wp + (long)ow * sw) * C;
    if (++ow == OW) {
      ow = 0;
      if (++oh == OH) {
        oh = 0;
        n++;
      }
    }
  }
}

/*
 * Forward convolution of output rows [m0, m1) from the padded input xp (pad_input), as conv_fwd
 * computes it: y = conv(x, w) + bias, optional ReLU; bp: pack_filter(flip=0)'s panels. scratch
 * holds one chunk's row pointers.
 */
EXPORT(conv_fwd_padded)
void conv_fwd_padded(const float *xp, const float *bp, const float *bias, float *y, float *scratch, int Hp, int Wp, int C, int KH, int KW, int sh,
                     int sw, int OH, int OW, int CO, int relu, int m0, int m1) {
  const float **rp = (const float **)scratch;
  for (int r = m0; r < m1; r += CHUNK) {
    const int r1 = r + CHUNK < m1 ? r + CHUNK : m1;
    row_ptrs(xp, rp, r, r1, Hp, Wp, C, sh, sw, OH, OW);
    gemm_panels(rp, r1 - r, bp, KH, KW * C, Wp * C, CO, bias, relu, y + (long)r * CO);
  }
}

/* Where column k of the implicit im2col row lies, relative to the row's window start. */
static inline long col_off(int k, int L, int seg) { return (long)(k / L) * seg + k % L; }

/*
 * dw[K, CO] += A^T g over `rows` rows: row i of A is read at rp[i] + col_off(k, L, seg) (an im2col
 * scratch row when L = K, a window of the padded input otherwise), g's rows have CO floats. For
 * each dw element the sum runs over the rows in order.
 */
static void dw_rows(const float *const *rp, int rows, const float *g, float *dw, int K, int L, int seg, int CO) {
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    const long o0 = col_off(k, L, seg), o1 = col_off(k + 1, L, seg), o2 = col_off(k + 2, L, seg), o3 = col_off(k + 3, L, seg);
    int j = 0;
    for (; j + 8 <= CO; j += 8) {
      v128_t c00 = wasm_v128_load(dw + (long)k * CO + j), c01 = wasm_v128_load(dw + (long)k * CO + j + 4);
      v128_t c10 = wasm_v128_load(dw + (long)(k + 1) * CO + j), c11 = wasm_v128_load(dw + (long)(k + 1) * CO + j + 4);
      v128_t c20 = wasm_v128_load(dw + (long)(k + 2) * CO + j), c21 = wasm_v128_load(dw + (long)(k + 2) * CO + j + 4);
      v128_t c30 = wasm_v128_load(dw + (long)(k + 3) * CO + j), c31 = wasm_v128_load(dw + (long)(k + 3) * CO + j + 4);
      for (int i = 0; i < rows; i++) {
        const float *ai = rp[i];
        const v128_t b0 = wasm_v128_load(g + (long)i * CO + j), b1 = wasm_v128_load(g + (long)i * CO + j + 4);
        v128_t x0 = wasm_v128_load32_splat(ai + o0);
        c00 = FMA(x0, b0, c00); c01 = FMA(x0, b1, c01);
        x0 = wasm_v128_load32_splat(ai + o1);
        c10 = FMA(x0, b0, c10); c11 = FMA(x0, b1, c11);
        x0 = wasm_v128_load32_splat(ai + o2);
        c20 = FMA(x0, b0, c20); c21 = FMA(x0, b1, c21);
        x0 = wasm_v128_load32_splat(ai + o3);
        c30 = FMA(x0, b0, c30); c31 = FMA(x0, b1, c31);
      }
      wasm_v128_store(dw + (long)k * CO + j, c00); wasm_v128_store(dw + (long)k * CO + j + 4, c01);
      wasm_v128_store(dw + (long)(k + 1) * CO + j, c10); wasm_v128_store(dw + (long)(k + 1) * CO + j + 4, c11);
      wasm_v128_store(dw + (long)(k + 2) * CO + j, c20); wasm_v128_store(dw + (long)(k + 2) * CO + j + 4, c21);
      wasm_v128_store(dw + (long)(k + 3) * CO + j, c30); wasm_v128_store(dw + (long)(k + 3) * CO + j + 4, c31);
    }
    for (; j + 4 <= CO; j += 4) {
      float *d = dw + (long)k * CO + j;
      v128_t c0 = wasm_v128_load(d), c1 = wasm_v128_load(d + CO), c2 = wasm_v128_load(d + 2 * CO), c3 = wasm_v128_load(d + 3 * CO);
      for (int i = 0; i < rows; i++) {
        const float *ai = rp[i];
        const v128_t b0 = wasm_v128_load(g + (long)i * CO + j);
        c0 = FMA(wasm_v128_load32_splat(ai + o0), b0, c0);
        c1 = FMA(wasm_v128_load32_splat(ai + o1), b0, c1);
        c2 = FMA(wasm_v128_load32_splat(ai + o2), b0, c2);
        c3 = FMA(wasm_v128_load32_splat(ai + o3), b0, c3);
      }
      wasm_v128_store(d, c0); wasm_v128_store(d + CO, c1); wasm_v128_store(d + 2 * CO, c2); wasm_v128_store(d + 3 * CO, c3);
    }
    for (; j < CO; j++) {
      const long oq[4] = {o0, o1, o2, o3};
      for (int q = 0; q < 4; q++) {
        float s = dw[(long)(k + q) * CO + j];
        for (int i = 0; i < rows; i++) s += rp[i][oq[q]] * g[(long)i * CO + j];
        dw[(long)(k + q) * CO + j] = s;
      }
    }
  }
  for (; k < K; k++) {
    const long o = col_off(k, L, seg);
    int j = 0;
    for (; j + 8 <= CO; j += 8) {
      v128_t c0 = wasm_v128_load(dw + (long)k * CO + j), c1 = wasm_v128_load(dw + (long)k * CO + j + 4);
      for (int i = 0; i < rows; i++) {
        const v128_t a = wasm_v128_load32_splat(rp[i] + o);
        c0 = FMA(a, wasm_v128_load(g + (long)i * CO + j), c0);
        c1 = FMA(a, wasm_v128_load(g + (long)i * CO + j + 4), c1);
      }
      wasm_v128_store(dw + (long)k * CO + j, c0);
      wasm_v128_store(dw + (long)k * CO + j + 4, c1);
    }
    for (; j + 4 <= CO; j += 4) {
      v128_t c0 = wasm_v128_load(dw + (long)k * CO + j);
      for (int i = 0; i < rows; i++) c0 = FMA(wasm_v128_load32_splat(rp[i] + o), wasm_v128_load(g + (long)i * CO + j), c0);
      wasm_v128_store(dw + (long)k * CO + j, c0);
    }
    for (; j < CO; j++) {
      float s = dw[(long)k * CO + j];
      for (int i = 0; i < rows; i++) s += rp[i][o] * g[(long)i * CO + j];
      dw[(long)k * CO + j] = s;
    }
  }
}

/*
 * conv_dw over implicit rows: the filter-gradient partial sum over output rows [m0, m1),
 * dw[K, CO] += im2col(x)^T dy, reading the windows in place from the padded input xp (pad_input).
 * Same loop order as conv_dw, so the same bits. dw must be zeroed by the caller.
 */
EXPORT(conv_dw_padded)
void conv_dw_padded(const float *xp, const float *dy, float *dw, float *scratch, int Hp, int Wp, int C, int KH, int KW, int sh, int sw, int OH,
                    int OW, int CO, int m0, int m1) {
  const int K = KH * KW * C, L = KW * C, seg = Wp * C;
  const float **rp = (const float **)scratch;
  for (int r = m0; r < m1; r += CHUNK) {
    const int r1 = r + CHUNK < m1 ? r + CHUNK : m1;
    const int rows = r1 - r;
    row_ptrs(xp, rp, r, r1, Hp, Wp, C, sh, sw, OH, OW);
    dw_rows(rp, rows, dy + (long)r * CO, dw, K, L, seg, CO);
  }
}

/*
 * Filter gradient partial sum over output rows [m0, m1): dw[K, CO] += im2col(x)^T dy, gathering
 * im2col rows into scratch (CHUNK*ldk floats, then CHUNK row pointers). trend runs conv_dw_padded;
 * this form is kept as the reference it is tested against bit for bit. dw must be zeroed by the
 * caller (it accumulates).
 */
EXPORT(conv_dw)
void conv_dw(const float *x, const float *dy, float *dw, float *scratch, int N, int H, int W, int C, int KH, int KW, int sh, int sw, int pt,
             int pl, int OH, int OW, int CO, int m0, int m1) {
  const int K = KH * KW * C;
  const int ldk = round_up(K, 4);
  const float **rp = (const float **)(scratch + (long)CHUNK * ldk);
  for (int r = m0; r < m1; r += CHUNK) {
    const int r1 = r + CHUNK < m1 ? r + CHUNK : m1;
    im2col(x, scratch, ldk, r, r1, N, H, W, C, KH, KW, sh, sw, pt, pl, OH, OW);
    for (int i = 0; i < r1 - r; i++) rp[i] = scratch + (long)i * ldk;
    dw_rows(rp, r1 - r, dy + (long)r * CO, dw, K, K, 0, CO);
  }
}
