/*
 * trend's auxiliary kernels for the TF.js wasm backend.
 *
 * Compiled to a freestanding wasm module that imports the backend's own memory, so every
 * pointer below is an offset into the TF.js heap and the kernels read and write tensors in place.
 * No static data and no libc: the module must never write outside the buffers it is given.
 * Build: scripts/build-kernels.sh (clang --target=wasm32 -msimd128).
 */
#include <wasm_simd128.h>
#include "flush.h"

#define EXPORT(name) __attribute__((export_name(#name)))

/* y = transpose(x, perm) for a 4-D tensor of shape d[0..3]. */
EXPORT(transpose4)
void transpose4(const float *x, float *y, int d0, int d1, int d2, int d3, int p0, int p1, int p2, int p3) {
  const int dims[4] = {d0, d1, d2, d3};
  const int in_stride[4] = {d1 * d2 * d3, d2 * d3, d3, 1};
  const int perm[4] = {p0, p1, p2, p3};
  const int o0 = dims[perm[0]], o1 = dims[perm[1]], o2 = dims[perm[2]], o3 = dims[perm[3]];
  const int s0 = in_stride[perm[0]], s1 = in_stride[perm[1]], s2 = in_stride[perm[2]], s3 = in_stride[perm[3]];
  float *out = y;
  for (int a = 0; a < o0; a++)
    for (int b = 0; b < o1; b++)
      for (int c = 0; c < o2; c++) {
        const float *src = x + a * s0 + b * s1 + c * s2;
        if (s3 == 1) {
          int i = 0;
          for (; i + 4 <= o3; i += 4) wasm_v128_store(out + i, wasm_v128_load(src + i));
          for (; i < o3; i++) out[i] = src[i];
        } else {
          for (int i = 0; i < o3; i++) out[i] = src[i * s3];
        }
        out += o3;
      }
}

/* dx = x > 0 ? dy : 0 */
EXPORT(relu_backward)
void relu_backward(const float *x, const float *dy, float *dx, int n) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t m = wasm_f32x4_gt(wasm_v128_load(x + i), zero);
    wasm_v128_store(dx + i, wasm_v128_and(wasm_v128_load(dy + i), m));
  }
  for (; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

/*
 * Float32 Add (op 0) and Multiply (op 1), each element one IEEE operation as the shipped kernels
 * compute it (so the same bits), without their general broadcasting loop:
 *   binary_same      y[i] = a[i] op b[i] for the elements [e0, e1)
 *   binary_channels  y[r][c] = a[r][c] op v[c] for the rows [r0, r1) of C channels (v: C floats)
 */
static inline v128_t binop4(v128_t a, v128_t b, int op) { return op ? wasm_f32x4_mul(a, b) : wasm_f32x4_add(a, b); }
static inline float binop1(float a, float b, int op) { return op ? a * b : a + b; }

EXPORT(binary_same)
void binary_same(const float *a, const float *b, float *y, int op, int e0, int e1) {
  int i = e0;
  for (; i + 4 <= e1; i += 4) wasm_v128_store(y + i, binop4(wasm_v128_load(a + i), wasm_v128_load(b + i), op));
  for (; i < e1; i++) y[i] = binop1(a[i], b[i], op);
}

EXPORT(binary_channels)
void binary_channels(const float *a, const float *v, float *y, int C, int op, int r0, int r1) {
  if (C == 4) {
    const v128_t w = wasm_v128_load(v);
    for (long i = (long)r0 * 4; i < (long)r1 * 4; i += 4) wasm_v128_store(y + i, binop4(wasm_v128_load(a + i), w, op));
    return;
  }
  for (int r = r0; r < r1; r++) {
    const float *ar = a + (long)r * C;
    float *yr = y + (long)r * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) wasm_v128_store(yr + c, binop4(wasm_v128_load(ar + c), wasm_v128_load(v + c), op));
    for (; c < C; c++) yr[c] = binop1(ar[c], v[c], op);
  }
}

/*
 * DoReFa activation quantisation y = round(clip(x, 0, 1) * levels) / levels (round half to even,
 * as tf.round), and its straight-through gradient dx = dy where 0 <= x <= 1, else 0.
 */
EXPORT(act_quant)
void act_quant(const float *x, float *y, int n, float levels) {
  const v128_t zero = wasm_f32x4_splat(0.0f), one = wasm_f32x4_splat(1.0f), l = wasm_f32x4_splat(levels);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t c = wasm_f32x4_min(wasm_f32x4_max(wasm_v128_load(x + i), zero), one);
    wasm_v128_store(y + i, wasm_f32x4_div(wasm_f32x4_nearest(wasm_f32x4_mul(c, l)), l));
  }
  for (; i < n; i++) {
    float c = x[i] < 0.0f ? 0.0f : (x[i] > 1.0f ? 1.0f : x[i]);
    y[i] = __builtin_nearbyintf(c * levels) / levels;
  }
}

EXPORT(act_quant_backward)
void act_quant_backward(const float *x, const float *dy, float *dx, int n) {
  const v128_t zero = wasm_f32x4_splat(0.0f), one = wasm_f32x4_splat(1.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t xi = wasm_v128_load(x + i);
    v128_t m = wasm_v128_and(wasm_f32x4_ge(xi, zero), wasm_f32x4_le(xi, one));
    wasm_v128_store(dx + i, wasm_v128_and(wasm_v128_load(dy + i), m));
  }
  for (; i < n; i++) dx[i] = (x[i] >= 0.0f && x[i] <= 1.0f) ? dy[i] : 0.0f;
}

/*
 * Max-pool gradient (NHWC): each output's gradient goes to the first maximum of its window in
 * row-major order (TensorFlow's choice). Four channels are searched at once.
 */
EXPORT(maxpool_backward)
void maxpool_backward(const float *x, const float *dy, float *dx, int N, int H, int W, int C, int OH, int OW, int kh, int kw,
                      int sh, int sw, int pt, int pl) {
  __builtin_memset(dx, 0, (unsigned long)N * H * W * C * sizeof(float));
  for (int n = 0; n < N; n++) {
    const float *xn = x + (long)n * H * W * C;
    float *dxn = dx + (long)n * H * W * C;
    for (int oh = 0; oh < OH; oh++) {
      int h0 = oh * sh - pt, h1 = h0 + kh;
      if (h0 < 0) h0 = 0;
      if (h1 > H) h1 = H;
      for (int ow = 0; ow < OW; ow++) {
        int w0 = ow * sw - pl, w1 = w0 + kw;
        if (w0 < 0) w0 = 0;
        if (w1 > W) w1 = W;
        const float *g = dy + (((long)n * OH + oh) * OW + ow) * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          v128_t best = wasm_f32x4_splat(-__builtin_inff());
          v128_t where = wasm_i32x4_splat(0);
          for (int h = h0; h < h1; h++)
            for (int w = w0; w < w1; w++) {
              int off = (h * W + w) * C + c;
              v128_t v = wasm_v128_load(xn + off);
              v128_t gt = wasm_f32x4_gt(v, best);
              best = wasm_v128_bitselect(v, best, gt);
              where = wasm_v128_bitselect(wasm_i32x4_splat(off), where, gt);
            }
          v128_t gv = flush4(wasm_v128_load(g + c));
          dxn[wasm_i32x4_extract_lane(where, 0)] += wasm_f32x4_extract_lane(gv, 0);
          dxn[wasm_i32x4_extract_lane(where, 1) + 1] += wasm_f32x4_extract_lane(gv, 1);
          dxn[wasm_i32x4_extract_lane(where, 2) + 2] += wasm_f32x4_extract_lane(gv, 2);
          dxn[wasm_i32x4_extract_lane(where, 3) + 3] += wasm_f32x4_extract_lane(gv, 3);
        }
        for (; c < C; c++) {
          float best = -__builtin_inff();
          int where = 0;
          for (int h = h0; h < h1; h++)
            for (int w = w0; w < w1; w++) {
              int off = (h * W + w) * C + c;
              if (xn[off] > best) {
                best = xn[off];
                where = off;
              }
            }
          dxn[where] += flush1(g[c]);
        }
      }
    }
  }
}

/*
 * 2x2 stride-2 max-pool gradient without padding and with even H, W (every input position lies
 * in exactly one window): each gradient goes to the first maximum of its window in row-major
 * order, as TensorFlow does.
 */
EXPORT(maxpool2x2_backward)
void maxpool2x2_backward(const float *x, const float *dy, float *dx, int N, int H, int W, int C) {
  const int OH = H / 2, OW = W / 2;
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const long p = (((long)n * H + oh * 2) * W + ow * 2) * C, q = p + (long)W * C;
        const float *g = dy + (((long)n * OH + oh) * OW + ow) * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          const v128_t a = wasm_v128_load(x + p + c), b = wasm_v128_load(x + p + C + c);
          const v128_t d = wasm_v128_load(x + q + c), e = wasm_v128_load(x + q + C + c);
          const v128_t m = wasm_f32x4_max(wasm_f32x4_max(a, b), wasm_f32x4_max(d, e));
          const v128_t gv = flush4(wasm_v128_load(g + c));
          const v128_t ea = wasm_f32x4_eq(a, m);
          const v128_t eb = wasm_v128_andnot(wasm_f32x4_eq(b, m), ea);
          const v128_t taken = wasm_v128_or(ea, eb);
          const v128_t ed = wasm_v128_andnot(wasm_f32x4_eq(d, m), taken);
          const v128_t ee = wasm_v128_andnot(wasm_v128_not(wasm_v128_or(taken, ed)), wasm_v128_not(wasm_f32x4_eq(e, m)));
          wasm_v128_store(dx + p + c, wasm_v128_and(gv, ea));
          wasm_v128_store(dx + p + C + c, wasm_v128_and(gv, eb));
          wasm_v128_store(dx + q + c, wasm_v128_and(gv, ed));
          wasm_v128_store(dx + q + C + c, wasm_v128_and(gv, ee));
        }
        for (; c < C; c++) {
          const float a = x[p + c], b = x[p + C + c], d = x[q + c], e = x[q + C + c];
          float m = a;
          if (b > m) m = b;
          if (d > m) m = d;
          if (e > m) m = e;
          const int wa = a == m, wb = !wa && b == m, wd = !wa && !wb && d == m, we = !wa && !wb && !wd;
          const float gc = flush1(g[c]);
          dx[p + c] = wa ? gc : 0.0f;
          dx[p + C + c] = wb ? gc : 0.0f;
          dx[q + c] = wd ? gc : 0.0f;
          dx[q + C + c] = we ? gc : 0.0f;
        }
      }
}

/* y[c] = sum over rows of x[m, c] (bias gradients). */
EXPORT(sum_rows)
void sum_rows(const float *x, float *y, int m, int c) {
  __builtin_memset(y, 0, (unsigned long)c * sizeof(float));
  for (int r = 0; r < m; r++) {
    const float *row = x + (long)r * c;
    int j = 0;
    for (; j + 4 <= c; j += 4) wasm_v128_store(y + j, wasm_f32x4_add(wasm_v128_load(y + j), wasm_v128_load(row + j)));
    for (; j < c; j++) y[j] += row[j];
  }
}

/*
 * PyTorch-style SGD step into new buffers: g' = g + wd*w; vo = mu*v + g'; wo = w - lr*vo.
 * (Not in place: XNNPACK caches packed weights by tensor, so weights must change identity.)
 */
EXPORT(sgd_step)
void sgd_step(const float *w, const float *g, const float *v, float *wo, float *vo, int n, float lr, float mu, float wd) {
  const v128_t vlr = wasm_f32x4_splat(lr), vmu = wasm_f32x4_splat(mu), vwd = wasm_f32x4_splat(wd);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t wi = wasm_v128_load(w + i);
    v128_t gi = wasm_f32x4_add(wasm_v128_load(g + i), wasm_f32x4_mul(vwd, wi));
    v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(vmu, wasm_v128_load(v + i)), gi);
    wasm_v128_store(vo + i, vi);
    wasm_v128_store(wo + i, wasm_f32x4_sub(wi, wasm_f32x4_mul(vlr, vi)));
  }
  for (; i < n; i++) {
    float gi = g[i] + wd * w[i];
    vo[i] = mu * v[i] + gi;
    wo[i] = w[i] - lr * vo[i];
  }
}

/*
 * C[M,N] = op(A) op(B) for row-major A and B (op = optional transpose). Small dense-layer shapes:
 * vectorised over N (or K when B is transposed), single-threaded.
 */
EXPORT(matmul)
void matmul(const float *a, const float *b, float *c, int M, int K, int N, int ta, int tb) {
  __builtin_memset(c, 0, (unsigned long)M * N * sizeof(float));
  if (!tb) {
    for (int i = 0; i < M; i++) {
      float *ci = c + (long)i * N;
      for (int k = 0; k < K; k++) {
        float av = ta ? a[(long)k * M + i] : a[(long)i * K + k];
        if (av == 0.0f) continue;
        const float *bk = b + (long)k * N;
        v128_t va = wasm_f32x4_splat(av);
        int j = 0;
        for (; j + 4 <= N; j += 4) wasm_v128_store(ci + j, wasm_f32x4_add(wasm_v128_load(ci + j), wasm_f32x4_mul(va, wasm_v128_load(bk + j))));
        for (; j < N; j++) ci[j] += av * bk[j];
      }
    }
    return;
  }
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < N; j++) {
      const float *bj = b + (long)j * K;
      float s = 0.0f;
      if (!ta) {
        const float *ai = a + (long)i * K;
        v128_t acc = wasm_f32x4_splat(0.0f);
        int k = 0;
        for (; k + 4 <= K; k += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(ai + k), wasm_v128_load(bj + k)));
        s = wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1) + wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3);
        for (; k < K; k++) s += ai[k] * bj[k];
      } else {
        for (int k = 0; k < K; k++) s += a[(long)k * M + i] * bj[k];
      }
      c[(long)i * N + j] = s;
    }
  }
}

/* 2x2 stride-2 max pool (valid padding), NHWC; vectorised over channels. */
EXPORT(maxpool2x2)
void maxpool2x2(const float *x, float *y, int N, int H, int W, int C) {
  const int OH = H / 2, OW = W / 2;
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const float *p = x + (((long)n * H + oh * 2) * W + ow * 2) * C;
        const float *q = p + (long)W * C;
        float *o = y + (((long)n * OH + oh) * OW + ow) * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          v128_t m = wasm_f32x4_max(wasm_v128_load(p + c), wasm_v128_load(p + C + c));
          m = wasm_f32x4_max(m, wasm_f32x4_max(wasm_v128_load(q + c), wasm_v128_load(q + C + c)));
          wasm_v128_store(o + c, m);
        }
        for (; c < C; c++) {
          float m = p[c];
          if (p[C + c] > m) m = p[C + c];
          if (q[c] > m) m = q[c];
          if (q[C + c] > m) m = q[C + c];
          o[c] = m;
        }
      }
}

/*
 * Batch norm over the rows of x[M, C] (training mode): per-channel batch mean and (biased)
 * variance, y = gamma (x - mean) / sqrt(var + eps) + beta. Sums are taken in blocks of 256 rows
 * in float32 and the block sums added in float64 (acc: C doubles of scratch). Rows are visited
 * block by block (a block stays in cache while each group of four channels is summed over it),
 * four channels at a time when C is a multiple of 4; each channel's arithmetic is the same in
 * either path, so results do not depend on C's divisibility.
 */
#define BN_BLOCK 256

static inline void add_promoted(double *acc, v128_t b) {
  wasm_v128_store(acc, wasm_f64x2_add(wasm_v128_load(acc), wasm_f64x2_promote_low_f32x4(b)));
  wasm_v128_store(acc + 2, wasm_f64x2_add(wasm_v128_load(acc + 2), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(b, b, 2, 3, 0, 1))));
}

/* acc[c] += per-block float sums over rows of f(x[r][c]); f = (x - center)^2 if center, else x. */
static void bn_col_sums(const float *x, const float *center, double *acc, int M, int C) {
  for (int c = 0; c < C; c++) acc[c] = 0.0;
  for (int r0 = 0; r0 < M; r0 += BN_BLOCK) {
    const int r1 = r0 + BN_BLOCK < M ? r0 + BN_BLOCK : M;
    int c = 0;
    if (C % 4 == 0)
      for (; c < C; c += 4) {
        v128_t b = wasm_f32x4_splat(0.0f);
        const v128_t m = center ? wasm_v128_load(center + c) : b;
        for (int r = r0; r < r1; r++) {
          v128_t v = wasm_v128_load(x + (long)r * C + c);
          if (center) {
            v = wasm_f32x4_sub(v, m);
            v = wasm_f32x4_mul(v, v);
          }
          b = wasm_f32x4_add(b, v);
        }
        add_promoted(acc + c, b);
      }
    for (; c < C; c++) {
      float b = 0.0f;
      for (int r = r0; r < r1; r++) {
        float v = x[(long)r * C + c];
        if (center) {
          v = v - center[c];
          v = v * v;
        }
        b += v;
      }
      acc[c] += b;
    }
  }
}

/* y[r][c] = a[c] * x[r][c] + b[c] with a = gamma / sqrt(var + eps), b = beta - a * mean. */
static void bn_affine(const float *x, const float *a, const float *b, float *y, int M, int C) {
  for (int r = 0; r < M; r++) {
    const float *xr = x + (long)r * C;
    float *yr = y + (long)r * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) wasm_v128_store(yr + c, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a + c), wasm_v128_load(xr + c)), wasm_v128_load(b + c)));
    for (; c < C; c++) yr[c] = a[c] * xr[c] + b[c];
  }
}

EXPORT(bn_train_forward)
void bn_train_forward(const float *x, const float *gamma, const float *beta, float *y, float *mean, float *var, double *acc, int M, int C,
                      float eps) {
  bn_col_sums(x, 0, acc, M, C);
  for (int c = 0; c < C; c++) mean[c] = (float)(acc[c] / M);
  bn_col_sums(x, mean, acc, M, C);
  for (int c = 0; c < C; c++) var[c] = (float)(acc[c] / M);
  /* the per-channel scale and shift, kept in acc's memory as floats */
  float *a = (float *)acc, *b = a + C;
  for (int c = 0; c < C; c++) {
    const float inv = 1.0f / __builtin_sqrtf(var[c] + eps);
    a[c] = gamma[c] * inv;
    b[c] = beta[c] - a[c] * mean[c];
  }
  bn_affine(x, a, b, y, M, C);
}

/*
 * Batch-norm backward (training mode), with xhat = (x - mean)/sqrt(var + eps):
 *   dbeta = sum dy, dgamma = sum dy*xhat, dx = gamma/sqrt(var+eps) * (dy - dbeta/M - xhat*dgamma/M).
 * acc: 4C doubles of scratch. The sums are blocked as in the forward kernel.
 */
EXPORT(bn_train_backward)
void bn_train_backward(const float *x, const float *dy, const float *gamma, const float *mean, const float *var, float *dx, float *dgamma,
                       float *dbeta, double *acc, int M, int C, float eps) {
  double *sb = acc, *sg = acc + C;
  float *inv = (float *)(acc + 2 * C), *kc = inv + C, *mb = kc + C, *mg = mb + C;
  for (int c = 0; c < C; c++) {
    inv[c] = 1.0f / __builtin_sqrtf(var[c] + eps);
    sb[c] = 0.0;
    sg[c] = 0.0;
  }
  for (int r0 = 0; r0 < M; r0 += BN_BLOCK) {
    const int r1 = r0 + BN_BLOCK < M ? r0 + BN_BLOCK : M;
    int c = 0;
    if (C % 4 == 0)
      for (; c < C; c += 4) {
        v128_t bb = wasm_f32x4_splat(0.0f), bg = bb;
        const v128_t m = wasm_v128_load(mean + c), iv = wasm_v128_load(inv + c);
        for (int r = r0; r < r1; r++) {
          const v128_t g = wasm_v128_load(dy + (long)r * C + c);
          bb = wasm_f32x4_add(bb, g);
          bg = wasm_f32x4_add(bg, wasm_f32x4_mul(wasm_f32x4_mul(g, wasm_f32x4_sub(wasm_v128_load(x + (long)r * C + c), m)), iv));
        }
        add_promoted(sb + c, bb);
        add_promoted(sg + c, bg);
      }
    for (; c < C; c++) {
      float bb = 0.0f, bg = 0.0f;
      for (int r = r0; r < r1; r++) {
        const float g = dy[(long)r * C + c];
        bb += g;
        bg += g * (x[(long)r * C + c] - mean[c]) * inv[c];
      }
      sb[c] += bb;
      sg[c] += bg;
    }
  }
  for (int c = 0; c < C; c++) {
    dbeta[c] = (float)sb[c];
    dgamma[c] = (float)sg[c];
    kc[c] = gamma[c] * inv[c];
    mb[c] = (float)(sb[c] / M);
    mg[c] = (float)(sg[c] / M);
  }
  for (int r = 0; r < M; r++) {
    const float *xr = x + (long)r * C, *gr = dy + (long)r * C;
    float *o = dx + (long)r * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      const v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + c), wasm_v128_load(mean + c)), wasm_v128_load(inv + c));
      const v128_t t = wasm_f32x4_sub(wasm_f32x4_sub(wasm_v128_load(gr + c), wasm_v128_load(mb + c)), wasm_f32x4_mul(xh, wasm_v128_load(mg + c)));
      wasm_v128_store(o + c, flush4(wasm_f32x4_mul(wasm_v128_load(kc + c), t)));
    }
    for (; c < C; c++) o[c] = flush1(kc[c] * (gr[c] - mb[c] - (xr[c] - mean[c]) * inv[c] * mg[c]));
  }
}
