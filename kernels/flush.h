/*
 * Denormal floats make x86 arithmetic ~70x slower and wasm cannot set flush-to-zero, so kernels
 * that produce gradients, and the GEMM input gathering, flush values below FLT_MIN in magnitude
 * to zero. Shared by kernels.c and conv.c.
 */
#ifndef TREND_FLUSH_H
#define TREND_FLUSH_H
#include <wasm_simd128.h>

#define TINY 1.17549435e-38f
static inline v128_t flush4(v128_t v) { return wasm_v128_and(v, wasm_f32x4_ge(wasm_f32x4_abs(v), wasm_f32x4_splat(TINY))); }
static inline float flush1(float v) { return (v < TINY && v > -TINY) ? 0.0f : v; }

#endif
